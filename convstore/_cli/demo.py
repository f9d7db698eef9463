"""`convstore demo`: an agent's LLM calls fail, are retried, crash a session, and it recovers.

Everything runs against a real database through the public API: a scripted stand-in for an LLM
API fails the way real ones do, `RetryExecutor` retries it and records every attempt, each turn is
saved as a snapshot, and a session whose worker crashes inside `Store.running` is marked
interrupted and then recovered. Back-off waits really happen, scaled down `SPEEDUP` times.
"""

from __future__ import annotations

import asyncio
import random
import shlex
import sys
from collections.abc import Callable

from convstore._cli.admin.database import display_url, open_store
from convstore._cli.arguments import DEMO_URL
from convstore._cli.display import history_table, interrupted_table, retry_table, terminal_width
from convstore._retry.classifier import ErrorClassifier
from convstore._retry.executor import RetryExecutor
from convstore._storage.engine import resolve_url
from convstore._storage.store import Store
from convstore._storage.types import utcnow

DEFAULT_URL = DEMO_URL
#: How many times faster than real the back-off waits run in the demo.
SPEEDUP = 100
#: The operation name the demo's calls are recorded under.
OPERATION = "llm.chat"

SUPPORT = "support/refund-1017"
TRAVEL = "travel/itinerary-88"

Message = dict[str, str]


class APIStatusError(Exception):
    """An HTTP error from the pretend LLM API, shaped as the SDKs shape theirs."""

    def __init__(self, message: str, status_code: int, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers or {}


def rate_limited() -> Exception:
    """A 429 whose server asks for an 8 s pause."""
    return APIStatusError(
        "rate_limit_error: 40,000 input tokens per minute exceeded", 429, {"retry-after": "8"}
    )


def overloaded() -> Exception:
    """Anthropic's 529: the API is overloaded for a while."""
    return APIStatusError("overloaded_error: Overloaded", 529)


def timed_out() -> Exception:
    """The model did not answer in time."""
    return TimeoutError("the model did not answer within 60 s")


class PretendModel:
    """An LLM API stand-in: each call raises the next planned failure, or answers."""

    def __init__(self) -> None:
        self.failures: list[Callable[[], Exception]] = []
        self.reply = ""

    def plan(self, reply: str, *failures: Callable[[], Exception]) -> None:
        """Fail with `failures` first (one per attempt), then answer `reply`."""
        self.failures, self.reply = list(failures), reply

    async def chat(self, messages: list[Message]) -> Message:
        """Answer the conversation, after a pretend round trip."""
        await asyncio.sleep(0.002)
        if self.failures:
            raise self.failures.pop(0)()
        return {"role": "assistant", "content": self.reply}


async def scaled_sleep(delay: float) -> None:
    """Wait for real, `SPEEDUP` times shorter than asked."""
    await asyncio.sleep(delay / SPEEDUP)


def what_failed(error: Exception) -> str:
    """What went wrong with a call, in a few words."""
    if isinstance(error, APIStatusError):
        kind = "rate limited" if error.status_code == 429 else "overloaded"
        asked = error.headers.get("retry-after")
        return f"HTTP {error.status_code} {kind}" + (f" (Retry-After: {asked} s)" if asked else "")
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"


class Agent:
    """Runs conversation turns through the retry executor and saves a snapshot after each."""

    def __init__(self, store: Store, model: PretendModel, session_id: str, seed: int) -> None:
        self.store, self.model, self.session_id = store, model, session_id
        self.history: list[Message] = []
        self.executor = RetryExecutor(
            # Seeded jitter: the demo prints the same delays every time.
            ErrorClassifier(rand=random.Random(seed).random),
            store=store,
            session_id=session_id,
            operation=OPERATION,
            sleep=scaled_sleep,
        )
        self.attempts = 0

    def on_retry(self, attempt: int, error: Exception, delay: float) -> None:
        """Print each failed attempt and the wait before the next."""
        self.attempts = attempt + 1
        print(
            f"    attempt {attempt + 1}: {what_failed(error)} -> retry in {delay:.1f} s "
            f"(waits {delay / SPEEDUP:.3f} s here)"
        )

    async def turn(self, text: str) -> None:
        """The user speaks, the snapshot is saved, the model answers (with retries), saved."""
        self.history.append({"role": "user", "content": text})
        print(f"  user: {text}")
        await self.store.save_snapshot(self.session_id, self.history, extra={"model": "pretend"})
        await self.answer()

    async def answer(self) -> None:
        """Ask the model to answer the conversation so far, and save its reply."""
        self.attempts = 0
        try:
            reply: Message = await self.executor.execute_with_retry(
                self.model.chat, self.history, on_retry=self.on_retry
            )
        except TimeoutError as exc:
            print(f"    attempt {self.attempts + 1}: {what_failed(exc)} -> retries used up, raised")
            raise
        self.history.append(reply)
        print(f"  assistant: {reply['content']}")
        await self.store.save_snapshot(self.session_id, self.history, extra={"model": "pretend"})


async def run(url: str, schema: str | None = None) -> None:
    """Run the demo against `url` (in `schema` on PostgreSQL), printing what happens and leaving
    the database behind."""
    started = utcnow()
    width = terminal_width(sys.stdout)
    print(
        "convstore demo: two conversations whose LLM calls fail, are retried, crash and recover.\n"
        f"Back-off waits are {SPEEDUP}x shorter than real so the demo takes seconds; the delays "
        "shown and stored are the real ones.\n"
    )
    model = PretendModel()
    async with open_store(url, migrate=True, schema=schema) as store:
        print(f"{SUPPORT}: rate limits, a timeout and an overloaded API, all retried")
        agent = Agent(store, model, SUPPORT, seed=1017)
        model.plan("I see two charges of $42.00 on 27 November. Refund the second?", rate_limited)
        await agent.turn("I was charged twice for order 1017.")
        model.plan("Done: $42.00 is on its way back to your card.", timed_out)
        await agent.turn("Yes, please refund it.")
        model.plan("Sent to the address on file.", overloaded, overloaded)
        await agent.turn("Thanks! Can I get a receipt?")

        print(f"\n{TRAVEL}: runs inside store.running(); its worker crashes mid-turn")
        agent = Agent(store, model, TRAVEL, seed=88)
        try:
            async with store.running(TRAVEL):
                model.plan("Day 1: Alfama and the castle. Day 2: Belem. Day 3: LX Factory.")
                await agent.turn("Plan three days in Lisbon in March.")
                model.plan("", *[timed_out] * 4)
                await agent.turn("Add a day trip to Sintra.")
        except TimeoutError:
            print("  the worker crashed; store.running() marked the session interrupted")

        print("\nInterrupted sessions (convstore sessions --interrupted):")
        print(interrupted_table(await store.list_interrupted_sessions(), width))

        print("\nRecovery: a new worker restores each interrupted session and carries on")
        for interrupted in await store.list_interrupted_sessions():
            if interrupted.session_id != TRAVEL:
                continue  # not the demo's: leave it alone
            snapshot = await store.restore_snapshot(TRAVEL)
            assert snapshot is not None
            print(
                f"  {TRAVEL}: {snapshot.message_count} messages restored, the last from the "
                f"{snapshot.messages[-1]['role']}"
            )
            agent = Agent(store, model, TRAVEL, seed=89)
            agent.history = list(snapshot.messages)
            async with store.running(TRAVEL):
                model.plan("Add Sintra on day 2: Pena Palace in the morning, Belem after.")
                await agent.answer()
        left = [s.session_id for s in await store.list_interrupted_sessions()]
        print(f"  saving ended the interruption; still interrupted: {left or 'none'}")

        print("\nRetry statistics of this run (convstore stats):")
        print(retry_table(await store.retry_summary(since=started), width))
        history = [h for h in await store.interruptions() if h.interrupted_at >= started]
        print("\nCrash history of this run:")
        print(history_table(history, width))
    print("\n" + try_it(url, schema))


def try_it(url: str, schema: str | None = None) -> str:
    """Where the database is, and two queries to run on it."""
    resolved = resolve_url(url)
    qualified = "" if schema is None else f"{schema}."
    sqlite = resolved.get_backend_name() == "sqlite"
    waited = "round(sum(delay_s), 1)" if sqlite else "round(sum(delay_s)::numeric, 1)"
    queries = [
        "SELECT session_id, reason, interrupted_at, resolved_at FROM "
        f"{qualified}interruptions ORDER BY interrupted_at DESC;",
        f"SELECT outcome, status_code, count(*) AS attempts, {waited} AS waited_s "
        f"FROM {qualified}retry_events GROUP BY outcome, status_code ORDER BY attempts DESC;",
    ]
    if sqlite:
        database = resolved.database or ":memory:"
        head = f"The database is in {database}. Query it with the sqlite3 command:"
        shell = f"sqlite3 -header -column {shlex.quote(database)}"
    else:
        head = "The database is on the server. Query it with psql:"
        shell = f"psql {shlex.quote(display_url(resolved))} -c"
    lines = [head, *(f'  {shell} "{query}"' for query in queries)]
    option = "" if schema is None else f" --schema {schema}"
    lines.append(
        f"or with convstore itself:\n  convstore sessions --url {shlex.quote(url)}{option}"
    )
    return "\n".join(lines)
