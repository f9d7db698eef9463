"""`retry_summary()` against a model of its definition, over random histories, on both backends;
and the rows an older convstore wrote, filled by the migration as a new one fills them."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convstore
from convstore._cli.admin.database import migrate

START = datetime(2026, 6, 1, tzinfo=UTC)
OPERATIONS = ("llm.chat", "llm.embed")
KINDS = tuple(convstore.ErrorType)
_histories = itertools.count()


@dataclass(frozen=True)
class Step:
    """One attempt of a generated call: the error it failed with (None: it succeeded)."""

    error: convstore.ErrorType | None
    delay_s: float | None
    cooldown_wait_s: float | None


def _outcome(step: Step, last: bool) -> convstore.Outcome:
    if step.error is None:
        return convstore.Outcome.SUCCESS
    if not last:
        return convstore.Outcome.RETRY
    return {
        convstore.ErrorType.RETRYABLE: convstore.Outcome.GIVEUP,
        convstore.ErrorType.NON_RETRYABLE: convstore.Outcome.NON_RETRYABLE,
        convstore.ErrorType.DEGRADED: convstore.Outcome.DEGRADED,
        convstore.ErrorType.FATAL: convstore.Outcome.FATAL,
    }[step.error]


_steps = st.builds(
    Step,
    st.sampled_from(KINDS),
    st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.0, 3.5, 8.0, 60.0])),
    st.one_of(st.none(), st.sampled_from([0.25, 1.5])),
)
#: A call: failures (any kinds, so that a call can change kind), then a success or not.
_calls = st.tuples(
    st.sampled_from(OPERATIONS),
    st.lists(_steps, min_size=0, max_size=4),
    st.booleans(),
    st.integers(min_value=0, max_value=40),  # its first attempt's minute
)


def attempts(
    calls: list[tuple[str, list[Step], bool, int]], prefix: str
) -> list[convstore.Attempt]:
    """The rows of `calls`, interleaved by time as concurrent calls write them."""
    rows = []
    for n, (operation, failures, succeeds, minute) in enumerate(calls):
        steps = [*failures, Step(None, None, None)] if succeeds or not failures else failures
        for number, step in enumerate(steps, start=1):
            rows.append(
                convstore.Attempt(
                    call_id=f"{prefix}-{n}",
                    session_id=None,
                    operation=operation,
                    attempt=number,
                    outcome=_outcome(step, last=number == len(steps)),
                    error_type=step.error,
                    error_class=None if step.error is None else "builtins.TimeoutError",
                    error_message=None,
                    status_code=None,
                    delay_s=None if number == len(steps) else step.delay_s,
                    retry_after_s=None,
                    elapsed_s=0.1,
                    created_at=START + timedelta(minutes=minute + number),
                    cooldown_wait_s=step.cooldown_wait_s,
                )
            )
    return sorted(rows, key=lambda row: (row.created_at, row.call_id))


def model(
    rows: list[convstore.Attempt], since: datetime | None, operation: str | None
) -> list[convstore.RetrySummary]:
    """The summary as its documentation defines it, computed in Python."""
    kinds: dict[tuple[str, int], str | None] = {}
    firsts: set[tuple[str, int]] = set()
    for call_id, group in itertools.groupby(
        sorted(rows, key=lambda r: (r.call_id, r.attempt)), key=lambda r: r.call_id
    ):
        previous: str | None = None
        seen: set[str | None] = set()
        for row in group:
            kind = row.error_type.value if row.error_type is not None else previous
            kinds[call_id, row.attempt] = kind
            if kind not in seen:
                seen.add(kind)
                firsts.add((call_id, row.attempt))
            previous = None if row.error_type is None else row.error_type.value
    groups: dict[tuple[str, str | None], list[convstore.Attempt]] = defaultdict(list)
    for row in rows:
        if (since is None or row.created_at >= since) and operation in (None, row.operation):
            groups[row.operation, kinds[row.call_id, row.attempt]].append(row)
    found = []
    for (op, kind), members in groups.items():
        delays = sorted(r.delay_s for r in members if r.delay_s is not None)
        found.append(
            convstore.RetrySummary(
                operation=op,
                error_type=kind,
                calls=sum((r.call_id, r.attempt) in firsts for r in members),
                attempts=len(members),
                retries=sum(r.outcome is convstore.Outcome.RETRY for r in members),
                giveups=sum(r.outcome is convstore.Outcome.GIVEUP for r in members),
                successes_after_retry=sum(
                    r.outcome is convstore.Outcome.SUCCESS and r.attempt > 1 for r in members
                ),
                total_delay_s=sum(delays),
                p95_delay_s=delays[math.ceil(0.95 * len(delays)) - 1] if delays else None,
                total_cooldown_wait_s=sum(r.cooldown_wait_s or 0.0 for r in members),
            )
        )
    return sorted(found, key=lambda s: (s.operation, s.error_type is not None, s.error_type or ""))


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    calls=st.lists(_calls, min_size=1, max_size=12),
    since_minute=st.one_of(st.none(), st.integers(min_value=0, max_value=45)),
    operation=st.one_of(st.none(), st.sampled_from(OPERATIONS)),
)
async def test_the_summary_is_its_definition(
    store: convstore.Store,
    calls: list[tuple[str, list[Step], bool, int]],
    since_minute: int | None,
    operation: str | None,
) -> None:
    """Calls that change kind, succeed late, give up, and straddle `since`: every figure of every
    group equals the model's, whose calls count where their first attempt of a kind falls."""
    await _clear(store)  # the examples share the store
    rows = attempts(calls, f"h{next(_histories)}")
    for row in rows:
        await store.record_attempt(row)
    since = None if since_minute is None else START + timedelta(minutes=since_minute)
    assert await store.retry_summary(since=since, operation=operation) == model(
        rows, since, operation
    )


async def _clear(store: convstore.Store) -> None:
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM retry_events")


async def test_the_upgrade_fills_the_rows_an_older_convstore_wrote(store: convstore.Store) -> None:
    """Rows written before revision 0008 (no kind, no first_of_kind) are filled by the upgrade
    exactly as an insert fills them now: the summary reads the same before and after."""
    calls = [
        ("llm.chat", [Step(KINDS[0], 1.0, None), Step(KINDS[1], 2.0, 0.5)], True, 0),
        ("llm.chat", [Step(KINDS[0], 4.0, None)], False, 3),
        ("llm.chat", [], True, 5),
        ("llm.embed", [Step(KINDS[3], None, None)], False, 7),
    ]
    rows = attempts(calls, "old")
    for row in rows:
        await store.record_attempt(row)
    before = await store.retry_summary()
    assert before == model(rows, None, None)
    await migrate(store.engine, "downgrade", "0007")
    await migrate(store.engine, "upgrade", "head")
    assert await store.retry_summary() == before
