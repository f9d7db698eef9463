"""The `convstore` command line, run as a user runs it, on a real database.

Every subcommand is run at least once as a subprocess (`python -m convstore ...`); variations run
through `main()` in this process, which parses, prints and returns the exit status the same way
but spares a second of interpreter start-up each. Each test checks the output and the exit
status. Tests that take a `database_url` run on every backend under test; the demo and most of
the import of snapshot files are checked on SQLite.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import rate_limited_attempt
from sqlalchemy import update

import convstore
from convstore._cli.display import display_width
from convstore._cli.main import main
from convstore._storage.migrate import head_revision
from convstore._storage.schema import interruptions, retry_events, sessions

HEAD = head_revision()
ERROR = "convstore: error: "


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m convstore ARGS` with warnings as errors, without the caller's URL variable."""
    clean = {k: v for k, v in os.environ.items() if k not in ("CONVSTORE_DATABASE_URL", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "convstore", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class Ran:
    """What an in-process run of the command line printed, and its exit status."""

    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Ran]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`convstore ARGS` through `main()` in this process, without the caller's URL variable."""
    monkeypatch.delenv("CONVSTORE_DATABASE_URL", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)

    def call(*args: str) -> Ran:
        capsys.readouterr()
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse's usage errors, --help and --version
            status = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Ran(status, out, err)

    return call


Result = subprocess.CompletedProcess[str] | Ran


def ok(result: Result) -> str:
    """The output of a command that succeeded and said nothing on standard error."""
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def error(result: Result, status: int = 1) -> str:
    """The one error line of a command that failed as a user should see it fail."""
    assert result.returncode == status, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # never a traceback
    assert lines[0].startswith(ERROR)
    return lines[0]


def attempt(call: str, number: int, outcome: str, **fields: Any) -> convstore.Attempt:
    """A rate-limited attempt of llm.chat ten minutes ago, unless told otherwise."""
    defaults: dict[str, Any] = {
        "session_id": "chat/1",
        "elapsed_s": 0.2,
        "created_at": datetime.now(UTC) - timedelta(minutes=10),
    }
    return rate_limited_attempt(call, number, outcome, **{**defaults, **fields})


def say(role: str, text: str) -> dict[str, str]:
    """One chat message."""
    return {"role": role, "content": text}


async def populate(url: str) -> None:
    """Three conversations (one interrupted, one recovered) and a retry history."""
    async with convstore.connect(url) as store:
        await store.save_snapshot(
            "chat/1",
            [say("user", "hi"), say("assistant", "hello\nthere"), say("user", "export CSV")],
            extra={"model": "claude"},
        )
        await store.save_snapshot("chat/2", [say("user", "plan a trip")])
        await store.mark_interrupted("chat/2", reason="SIGTERM during deploy")
        await store.save_snapshot("chat/3", [say("user", "refund")])
        await store.mark_interrupted("chat/3", reason="OOM")
        await store.append_messages("chat/3", [say("assistant", "done")])
        for row in [
            attempt("a", 1, "retry", delay_s=5.0, retry_after_s=5.0),
            attempt(
                "a",
                2,
                "success",
                error_type=None,
                error_class=None,
                status_code=None,
                cooldown_wait_s=1.5,
            ),
            attempt("b", 1, "retry", delay_s=2.0),
            attempt("b", 2, "giveup"),
            attempt("c", 1, "success", operation="llm.embed", error_type=None, status_code=None),
            attempt("old", 1, "giveup", created_at=datetime.now(UTC) - timedelta(days=3)),
        ]:
            await store.record_attempt(row)


@pytest.fixture
def populated(database_url: str) -> str:
    """The URL of a database holding `populate`'s sessions and retry history."""
    asyncio.run(populate(database_url))
    return database_url


def write_snapshots(directory: Path, records: dict[str, Any]) -> Path:
    """The original module's files: one JSON document per name."""
    directory.mkdir(exist_ok=True)
    for name, record in records.items():
        text = record if isinstance(record, str) else json.dumps(record)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


# -- migrations --------------------------------------------------------------------------------


def test_upgrade_creates_the_schema_and_current_and_check_agree(
    cli: Cli, database_url: str
) -> None:
    """`upgrade` migrates an empty database to head; `current` names head; `check` exits 0."""
    assert f"to {HEAD} (head)" in ok(run("upgrade", "--url", database_url))
    assert ok(run("current", "--url", database_url)).strip() == f"{HEAD} (head)"
    assert "up to date" in ok(run("check", "--url", database_url))
    assert "already at" in ok(cli("upgrade", "--url", database_url))


def test_check_exits_1_when_behind_and_other_commands_refuse(cli: Cli, database_url: str) -> None:
    """After `downgrade 0001`, `check` exits 1 and `sessions` fails naming `convstore upgrade`."""
    ok(cli("upgrade", "--url", database_url))
    assert f"from {HEAD} (head) to 0001" in ok(run("downgrade", "0001", "--url", database_url))
    behind = run("check", "--url", database_url)
    assert behind.returncode == 1
    assert "is at revision '0001'" in behind.stdout
    assert "convstore upgrade" in behind.stdout
    line = error(cli("sessions", "--url", database_url))
    assert "is at revision '0001'" in line
    assert "run `convstore upgrade`" in line
    ok(cli("upgrade", "--url", database_url))
    ok(cli("check", "--url", database_url))


def test_downgrade_to_base_drops_the_tables(cli: Cli, database_url: str) -> None:
    """`downgrade base` leaves a database with no convstore tables, which `check` reports."""
    ok(cli("upgrade", "--url", database_url))
    ok(cli("downgrade", "base", "--url", database_url))
    assert ok(cli("current", "--url", database_url)).startswith("none")
    assert "no convstore tables" in cli("check", "--url", database_url).stdout


def test_an_unknown_revision_is_one_error_line(cli: Cli, database_url: str) -> None:
    """`upgrade` to a revision that does not exist fails with alembic's reason, on one line."""
    assert "'nosuch'" in error(cli("upgrade", "nosuch", "--url", database_url))


def test_a_database_from_a_newer_convstore_is_refused(cli: Cli, tmp_path: Path) -> None:
    """A database at a revision this convstore does not know fails `check` and `upgrade`."""
    url = f"sqlite:///{tmp_path / 'future.db'}"
    ok(cli("upgrade", "--url", url))
    with sqlite3.connect(tmp_path / "future.db") as db:
        db.execute("UPDATE convstore_alembic_version SET version_num = 'from_the_future'")
    assert "newer convstore" in error(cli("check", "--url", url))
    assert "newer convstore" in error(cli("upgrade", "--url", url))


def test_url_comes_from_option_then_environment_then_default(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--url wins over CONVSTORE_DATABASE_URL, which wins over ./convstore.db."""
    ok(run("upgrade", cwd=tmp_path))
    assert (tmp_path / "convstore.db").is_file()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVSTORE_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    ok(cli("upgrade"))
    assert (tmp_path / "env.db").is_file()
    ok(cli("upgrade", "--url", f"sqlite:///{tmp_path / 'option.db'}"))
    assert (tmp_path / "option.db").is_file()
    # The option is accepted before the subcommand too.
    ok(cli("--url", f"sqlite:///{tmp_path / 'first.db'}", "upgrade"))
    assert (tmp_path / "first.db").is_file()


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/app", "unsupported database URL scheme 'mysql'"),
        ("not a url", "cannot parse database URL"),
        ("sqlite:////no/such/directory/app.db", "directory '/no/such/directory' does not exist"),
        (
            "postgresql://nobody@127.0.0.1:1/app",
            "connect failed on postgresql://nobody@127.0.0.1:1",
        ),
    ],
    ids=["scheme", "unparseable", "no-directory", "unreachable"],
)
def test_bad_urls_fail_with_one_line(cli: Cli, url: str, message: str) -> None:
    """A URL convstore cannot use, or a server that cannot be reached, is one clear error line."""
    assert message in error(cli("check", "--url", url))


def test_reading_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    """`sessions` on a file that does not exist says how to create it, and creates nothing."""
    line = error(run("sessions", cwd=tmp_path))
    assert "no SQLite database at 'convstore.db'" in line
    assert "convstore upgrade" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["stats", "--since", "yesterday"], "expected an age such as 24h or 7d"),
        (["purge"], "the following arguments are required: --older-than"),
        (["sessions", "--limit", "-1"], "expected a whole number >= 0"),
    ],
    ids=["no-command", "bad-since", "purge-without-age", "negative-limit"],
)
def test_usage_errors_exit_2(cli: Cli, args: list[str], message: str) -> None:
    """Arguments argparse rejects exit with status 2, a usage line and the reason."""
    result = cli(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: convstore")
    assert message in result.stderr


def test_a_usage_error_in_a_subprocess_is_not_a_traceback() -> None:
    """A mistyped command line exits 2 with argparse's usage, and nothing else."""
    result = run("sessions", "--limit", "many")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "convstore sessions: error: argument --limit: expected a whole number >= 0, not 'many'"
    )


# -- looking around ----------------------------------------------------------------------------


def test_sessions_lists_every_session_most_recently_saved_first(populated: str) -> None:
    """`sessions` shows each session with its message count, status and interruption count."""
    lines = ok(run("sessions", "--url", populated)).splitlines()
    assert lines[1].split() == [
        "SESSION",
        "MESSAGES",
        "SAVED",
        "(UTC)",
        "STATUS",
        "INTERRUPTED",
        "REASON",
    ]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["chat/3", "chat/2", "chat/1"]
    assert rows[0][1] == "2"
    assert rows[0][4:] == ["idle", "1", "-"]
    assert rows[1][4:] == ["interrupted", "1", "SIGTERM", "during", "deploy"]
    assert rows[2][1] == "3"


def test_sessions_interrupted_as_json(cli: Cli, populated: str) -> None:
    """`sessions --interrupted --json` prints one JSON document of the interrupted sessions."""
    document = json.loads(ok(cli("sessions", "--interrupted", "--json", "--url", populated)))
    assert document["total"] == 1
    [only] = document["sessions"]
    assert only["session_id"] == "chat/2"
    assert only["reason"] == "SIGTERM during deploy"
    assert datetime.fromisoformat(only["interrupted_at"]).tzinfo is not None


def test_sessions_limit_says_how_many_are_not_shown(cli: Cli, populated: str) -> None:
    """`--limit 1` shows the newest session and says how many there are in all."""
    output = ok(cli("sessions", "--limit", "1", "--url", populated))
    assert "chat/3" in output
    assert "chat/1" not in output
    assert "(1 of 3 sessions shown; --limit 0 shows all)" in output


def test_tables_fit_the_terminal_width(
    cli: Cli, populated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a 50-column terminal every line fits, long reasons are cut with an ellipsis."""
    monkeypatch.setenv("COLUMNS", "50")
    output = ok(cli("sessions", "--url", populated))
    assert all(display_width(line) <= 50 for line in output.splitlines())
    assert "…" in output
    monkeypatch.delenv("COLUMNS")
    wide = ok(cli("sessions", "--url", populated))  # a pipe: nothing is cut
    assert "SIGTERM during deploy" in wide


def test_show_prints_state_history_and_the_last_messages(cli: Cli, populated: str) -> None:
    """`show` prints the session's state, its crash history and its newest messages by seq."""
    output = ok(run("show", "chat/3", "--messages", "1", "--url", populated))
    assert re.search(r"^status\s+idle$", output, re.MULTILINE)
    assert re.search(r"^messages\s+2 in the conversation, 2 kept$", output, re.MULTILINE)
    assert "Crash history (1):" in output
    assert "OOM" in output
    assert re.search(r"^\s*1\s+assistant\s+done$", output, re.MULTILINE)
    assert "refund" not in output  # only the last message was asked for
    output = ok(cli("show", "chat/1", "--url", populated))
    assert "hello there" in output  # a newline in a message never breaks the table
    assert '{"model": "claude"}' in output


def test_show_json_has_messages_with_their_positions(cli: Cli, populated: str) -> None:
    """`show --json` gives the session, its history and its messages with their seq."""
    document = json.loads(ok(cli("show", "chat/2", "--json", "--url", populated)))
    assert document["status"] == "interrupted"
    assert document["interrupt_reason"] == "SIGTERM during deploy"
    assert [h["reason"] for h in document["history"]] == ["SIGTERM during deploy"]
    assert document["messages"] == [{"seq": 0, "message": say("user", "plan a trip")}]


def test_show_an_unknown_session_fails(cli: Cli, populated: str) -> None:
    """`show` of a session that is not stored is one error line naming it, exit status 1."""
    assert "no session 'chat/404'" in error(cli("show", "chat/404", "--url", populated))


def test_stats_summarises_retries_and_interruptions(populated: str) -> None:
    """`stats` prints the retry summary per operation and error type and interruptions by reason."""
    output = ok(run("stats", "--url", populated))
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in output.splitlines()}
    # calls, attempts, retries, gave up, ok after retry, waited, p95, waited for cooldowns
    assert rows[("llm.chat", "retryable")] == ["3", "5", "2", "2", "1", "7.0", "5.0", "1.5"]
    assert rows[("llm.embed", "none")] == ["1", "1", "0", "0", "0", "0.0", "-", "0.0"]
    assert re.search(r"^SIGTERM during deploy\s+1\s+0\s", output, re.MULTILINE)
    assert re.search(r"^OOM\s+1\s+1\s", output, re.MULTILINE)


def test_stats_json_since_and_operation(cli: Cli, populated: str) -> None:
    """`stats --since 1h --operation llm.chat --json` leaves out older and other calls."""
    document = json.loads(
        ok(cli("stats", "--since", "1h", "--operation", "llm.chat", "--json", "--url", populated))
    )
    assert {r["operation"] for r in document["retries"]} == {"llm.chat"}
    retryable = next(r for r in document["retries"] if r["error_type"] == "retryable")
    assert retryable["calls"] == 2  # the call of three days ago is left out
    assert retryable["giveups"] == 1
    assert sorted(r["reason"] for r in document["interruptions"]) == [
        "OOM",
        "SIGTERM during deploy",
    ]
    future = json.loads(ok(cli("stats", "--since", "2999-01-01", "--json", "--url", populated)))
    assert future["retries"] == []
    assert future["interruptions"] == []


def test_cooldowns_lists_the_keys_cooling_down_now(cli: Cli, database_url: str) -> None:
    """`cooldowns` shows the key, the time left, the pace and why; `--json` the records; a
    database without one says so."""
    ok(cli("upgrade", "--url", database_url))
    assert "no rate limit is cooling down" in ok(cli("cooldowns", "--url", database_url))

    async def cool_down() -> None:
        async with convstore.connect(database_url) as store:
            row = attempt("c", 1, "retry", status_code=429, retry_after_s=0.25)
            await store.extend_cooldown("anthropic:claude", 600, row)

    asyncio.run(cool_down())
    text = ok(cli("cooldowns", "--url", database_url))
    assert re.search(r"^anthropic:claude\s.*\s250 ms\s+llm\.chat\s+HTTP 429 on", text, re.M)
    (cooldown,) = json.loads(ok(cli("cooldowns", "--json", "--url", database_url)))["cooldowns"]
    assert cooldown["limit_key"] == "anthropic:claude"
    assert 590 < cooldown["remaining_s"] <= 600
    assert cooldown["status_code"] == 429


# -- purge -------------------------------------------------------------------------------------


async def age_history(url: str) -> None:
    """Make chat/1 and chat/2 look last saved 40 days ago, chat/2 running under a live lease,
    and every retry event and interruption 40 days old."""
    old = datetime.now(UTC) - timedelta(days=40)
    async with convstore.connect(url) as store, store.engine.begin() as conn:
        await conn.execute(
            update(sessions)
            .where(sessions.c.session_id.in_(["chat/1", "chat/2"]))
            .values(saved_at=old)
        )
        await conn.execute(
            update(sessions)
            .where(sessions.c.session_id == "chat/2")
            .values(owner="worker-7", lease_expires_at=datetime.now(UTC) + timedelta(hours=1))
        )
        await conn.execute(update(retry_events).values(created_at=old))
        await conn.execute(
            update(interruptions)
            .where(interruptions.c.resolved_at.is_not(None))
            .values(interrupted_at=old, resolved_at=old + timedelta(minutes=5))
        )


def test_purge_dry_run_counts_and_deletes_nothing(cli: Cli, populated: str) -> None:
    """`purge --dry-run` says what it would delete and leaves the database as it was."""
    asyncio.run(age_history(populated))
    before = ok(cli("sessions", "--json", "--url", populated))
    output = ok(run("purge", "--older-than", "30d", "--dry-run", "--url", populated))
    assert "would delete 1 session not saved since" in output
    assert "(3 messages), 6 retry events and 1 resolved interruption" in output
    assert "dry run: nothing was deleted" in output
    assert ok(cli("sessions", "--json", "--url", populated)) == before


def test_purge_deletes_old_sessions_events_and_resolved_interruptions(
    cli: Cli, populated: str
) -> None:
    """`purge` deletes stale sessions (not running ones), old retry events and old resolved
    interruptions, says so, and a second run finds nothing."""
    asyncio.run(age_history(populated))
    output = ok(cli("purge", "--older-than", "30d", "--url", populated))
    assert output.startswith("deleted 1 session not saved since")
    assert "(3 messages), 6 retry events and 1 resolved interruption" in output
    listed = json.loads(ok(cli("sessions", "--json", "--url", populated)))
    assert sorted(s["session_id"] for s in listed["sessions"]) == ["chat/2", "chat/3"]
    stats = json.loads(ok(cli("stats", "--json", "--url", populated)))
    assert stats["retries"] == []
    assert [r["reason"] for r in stats["interruptions"]] == ["SIGTERM during deploy"]
    again = ok(cli("purge", "--older-than", "30d", "--url", populated))
    assert "deleted 0 sessions" in again
    assert "0 retry events" in again


async def test_purge_fits_its_batches_to_short_transactions(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each purge transaction deletes at most a batch, which halves after a transaction that
    took too long and doubles after a quick one; the purge then rests as long as the
    transaction took (on SQLite, the lock is free meanwhile). Everything old goes, nothing new
    does."""
    import time

    from convstore._cli.admin import purge as purging

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    checkpoints: list[int] = []

    async def checkpoint() -> None:
        checkpoints.append(len(slept))

    pace = purging._Pace("sqlite", batch=8, sleep=sleep, checkpoint=checkpoint)
    await pace.after(time.monotonic() - 1.0)  # a second: far too long
    assert pace.batch == 4
    assert slept[0] == pytest.approx(1.0, abs=0.05)  # as long as it held the lock
    assert checkpoints == [0]  # the WAL checkpointed while the lock is free, before the rest
    await pace.after(time.monotonic())  # at once
    assert pace.batch == 8
    quick = purging._Pace("postgresql", sleep=sleep)
    await quick.after(time.monotonic() - 0.5)
    assert quick.batch == purging.FIRST_BATCH // 2
    assert slept[-1] == pytest.approx(0.5, abs=0.05)

    monkeypatch.setattr(purging, "FIRST_BATCH", 1)
    monkeypatch.setattr(purging, "MAX_BATCH", 3)
    batches: list[int] = []
    purge_sessions = purging._purge_sessions

    async def counted(*args: Any) -> Any:
        deleted = await purge_sessions(*args)
        batches.append(0 if deleted is None else deleted[1]["sessions"])
        return deleted

    monkeypatch.setattr(purging, "_purge_sessions", counted)
    async with convstore.connect(database_url) as store:
        for n in range(20):
            await store.save_snapshot(f"old-{n}", [{"role": "user", "content": str(n)}])
        cutoff = datetime.now(UTC)
        for n in range(5):
            await store.save_snapshot(f"new-{n}", [])
        report = await purging.purge(store.engine, cutoff, dry_run=False)
        assert (report.sessions, report.messages) == (20, 20)
        wal = purging._checkpoint(store.engine)
        assert (wal is None) == (store.engine.dialect.name == "postgresql")
        if wal is not None:
            await wal()  # a passive checkpoint beside an open store
        assert sum(batches) == 20
        assert max(batches) <= 3
        assert len(batches) >= 8
        left = await store.list_interrupted_sessions()
        assert left == []
        async with store.engine.connect() as conn:
            ids = (await conn.exec_driver_sql("SELECT session_id FROM sessions")).scalars().all()
        assert sorted(ids) == [f"new-{n}" for n in range(5)]


def test_purge_resolves_the_open_interruptions_of_deleted_sessions(
    cli: Cli, tmp_path: Path
) -> None:
    """A purged session that was interrupted leaves its history behind, marked resolved."""
    url = f"sqlite:///{tmp_path / 'purge.db'}"
    day = 86400
    now = datetime.now(UTC).timestamp()
    write_snapshots(
        tmp_path / "old",
        {"s.json": {"session_id": "s", "saved_at": now - 40 * day, "messages": []}},
    )
    write_snapshots(
        tmp_path / "old",
        {"s.json": {"session_id": "s", "interrupted": True, "interrupted_at": now - 39 * day}},
    )
    ok(cli("import-json", str(tmp_path / "old"), "--url", url))
    output = ok(cli("purge", "--older-than", "30d", "--url", url))
    assert "1 open interruption of those sessions was marked resolved" in output
    show = error(cli("show", "s", "--url", url))
    assert show.endswith("no session 's' in " + url + "; its crash history holds 1 interruption")


# -- import ------------------------------------------------------------------------------------


def original_files(tmp_path: Path) -> tuple[Path, float]:
    """A folder as the original module left it: saved, interrupted, marked-only and bad files."""
    saved = datetime(2026, 10, 1, 12, 0, 0, 250000, tzinfo=UTC).timestamp()
    folder = write_snapshots(
        tmp_path / "snapshots",
        {
            "plain.json": {
                "session_id": "plain",
                "saved_at": saved,
                "message_count": 2,
                "messages": [say("user", "hi"), say("assistant", "hello")],
                "extra": {"model": "old"},
            },
            "long.json": {
                "session_id": "support/long",
                "saved_at": saved,
                "message_count": 250,
                "messages": [say("user", f"m{i}") for i in range(150, 250)],
                "extra": {},
                "interrupted": True,
                "interrupted_at": saved + 60,
            },
            "marked.json": {"session_id": "marked", "interrupted": True, "interrupted_at": saved},
            "broken.json": "{not json",
            "anonymous.json": {"saved_at": saved, "messages": []},
            "wrong.json": {"session_id": "w", "saved_at": "yesterday"},
            "notes.txt": "not a snapshot",
        },
    )
    return folder, saved


def test_import_json_keeps_times_marks_and_reports_malformed_files(
    cli: Cli, tmp_path: Path
) -> None:
    """`import-json` stores each session with its own times and marks, names each malformed
    file on stderr, goes on, and exits 1 because some files were skipped."""
    folder, saved = original_files(tmp_path)
    url = f"sqlite:///{tmp_path / 'imported.db'}"
    result = run("import-json", str(folder), "--url", url)
    assert result.returncode == 1
    assert "read 6 files" in result.stdout
    assert "3 new sessions, 3 malformed files skipped" in result.stdout
    skipped = sorted(result.stderr.splitlines())
    assert [line.split(":")[1].strip() for line in skipped] == [
        "skipped anonymous.json",
        "skipped broken.json",
        "skipped wrong.json",
    ]
    assert "no 'session_id'" in skipped[0]
    assert "not valid JSON" in skipped[1]
    plain = json.loads(ok(cli("show", "plain", "--json", "--url", url)))
    assert datetime.fromisoformat(plain["saved_at"]).timestamp() == saved
    assert plain["extra"] == {"model": "old"}
    assert plain["status"] == "idle"
    long = json.loads(ok(cli("show", "support/long", "--messages", "100", "--json", "--url", url)))
    assert long["message_count"] == 250
    assert long["stored_messages"] == 100
    assert long["messages"][0] == {"seq": 150, "message": say("user", "m150")}
    assert long["messages"][-1]["seq"] == 249
    assert long["status"] == "interrupted"
    assert datetime.fromisoformat(long["interrupted_at"]).timestamp() == saved + 60
    listed = json.loads(ok(cli("sessions", "--interrupted", "--json", "--url", url)))
    assert [s["session_id"] for s in listed["sessions"]] == ["support/long", "marked"]


def test_import_json_twice_duplicates_nothing(cli: Cli, tmp_path: Path) -> None:
    """A second `import-json` of the same folder changes nothing and says so."""
    folder, _ = original_files(tmp_path)
    url = f"sqlite:///{tmp_path / 'imported.db'}"
    cli("import-json", str(folder), "--url", url)
    first = ok(cli("show", "support/long", "--json", "--url", url))
    again = cli("import-json", str(folder), "--url", url)
    assert "3 files already imported, 3 malformed files skipped" in again.stdout
    assert ok(cli("show", "support/long", "--json", "--url", url)) == first
    with sqlite3.connect(tmp_path / "imported.db") as db:
        assert db.execute("SELECT count(*) FROM interruptions").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (102,)


async def test_concurrent_imports_of_one_session_store_it_once(database_url: str) -> None:
    """Two imports of the same files at once (two deploy hooks racing) store each session and
    each interruption once, and neither fails."""
    from convstore._cli.admin.importing import SnapshotFile, import_snapshot

    saved = datetime(2026, 1, 1, tzinfo=UTC)
    records = [
        SnapshotFile(f"raced-{n}", saved, 1, [say("user", "hi")], {}, saved + timedelta(seconds=1))
        for n in range(20)
    ]
    async with convstore.connect(database_url) as store:
        for record in records:
            outcomes = await asyncio.gather(
                import_snapshot(store.engine, record, 100),
                import_snapshot(store.engine, record, 100),
            )
            assert sorted(outcomes) == ["new", "unchanged"]
        history = await store.interruptions()
        assert sorted(h.session_id for h in history) == sorted(r.session_id for r in records)


async def test_concurrent_batched_imports_overlap_without_deadlock(database_url: str) -> None:
    """Imports of overlapping batches in opposite orders at once (each a transaction of many
    files) finish, storing each session and each interruption once."""
    from convstore._cli.admin.importing import SnapshotFile, import_batch

    saved = datetime(2026, 1, 1, tzinfo=UTC)
    records = [
        SnapshotFile(f"batch-{n}", saved, 1, [say("user", "hi")], {}, saved + timedelta(seconds=1))
        for n in range(60)
    ]
    async with convstore.connect(database_url) as store:
        outcomes = await asyncio.gather(
            import_batch(store.engine, records[:40], 100),
            import_batch(store.engine, records[20:][::-1], 100),
            import_batch(store.engine, records[::-1], 100),
        )
        flat = [o for batch in outcomes for o in batch]
        assert flat.count("new") == 60
        assert len(await store.interruptions()) == 60


def test_import_json_skips_only_the_file_the_codec_refuses(cli: Cli, tmp_path: Path) -> None:
    """A message nested deeper than convstore stores, in a file among others of its
    transaction, is reported and skipped; the files beside it are imported."""
    deep: object = "bottom"
    for _ in range(400):
        deep = [deep]
    files = {f"s{n:03d}.json": {"session_id": f"s{n:03d}", "saved_at": 1.7e9} for n in range(30)}
    files["s015.json"]["messages"] = [{"role": "user", "content": deep}]
    folder = write_snapshots(tmp_path / "deep", files)
    url = f"sqlite:///{tmp_path / 'imported.db'}"
    result = run("import-json", str(folder), "--url", url)
    assert result.returncode == 1
    assert "29 new sessions, 1 malformed file skipped" in result.stdout
    assert "skipped s015.json: value is nested more than" in result.stderr
    listed = json.loads(ok(cli("sessions", "--json", "--limit", "100", "--url", url)))
    assert len(listed["sessions"]) == 29


def test_import_json_takes_a_newer_file_and_keeps_a_newer_session(
    cli: Cli, database_url: str, tmp_path: Path
) -> None:
    """A newer file replaces an older stored snapshot and ends its interruption; an older file
    leaves a newer stored session alone but adds the interruption it records."""
    base = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
    first = {
        "session_id": "s",
        "saved_at": base,
        "messages": [say("user", "v1")],
        "interrupted": True,
        "interrupted_at": base + 10,
    }
    write_snapshots(tmp_path / "one", {"s.json": first})
    ok(cli("import-json", str(tmp_path / "one"), "--url", database_url))
    newer = {"session_id": "s", "saved_at": base + 20, "messages": [say("user", "v2")]}
    write_snapshots(tmp_path / "two", {"s.json": newer})
    assert "1 session updated" in ok(
        cli("import-json", str(tmp_path / "two"), "--url", database_url)
    )
    shown = json.loads(ok(cli("show", "s", "--json", "--url", database_url)))
    assert shown["messages"] == [{"seq": 0, "message": say("user", "v2")}]
    assert shown["status"] == "idle"
    [history] = shown["history"]
    assert datetime.fromisoformat(history["resolved_at"]).timestamp() == base + 20
    stale = {**first, "interrupted_at": base + 5}
    write_snapshots(tmp_path / "three", {"s.json": stale})
    assert "1 interruption added" in ok(
        cli("import-json", str(tmp_path / "three"), "--url", database_url)
    )
    shown = json.loads(ok(cli("show", "s", "--json", "--url", database_url)))
    assert shown["messages"] == [{"seq": 0, "message": say("user", "v2")}]
    assert shown["status"] == "idle"  # the newer save had already ended that interruption
    assert all(h["resolved_at"] is not None for h in shown["history"])


def test_import_json_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    """With standard error on a terminal and many files, `import-json` redraws a progress line."""
    now = datetime.now(UTC).timestamp()
    folder = write_snapshots(
        tmp_path / "many",
        {f"{n:03}.json": {"session_id": f"s{n}", "saved_at": now} for n in range(60)},
    )
    controller, terminal = pty.openpty()
    received: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal was closed
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        clean = {k: v for k, v in os.environ.items() if k != "CONVSTORE_DATABASE_URL"}
        result = subprocess.run(
            [sys.executable, "-m", "convstore", "import-json", str(folder)],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            cwd=tmp_path,
            env=clean,
            timeout=120,
            check=False,
        )
    finally:
        os.close(terminal)
        reader.join(timeout=10)
        os.close(controller)
    assert result.returncode == 0
    assert "60 new sessions" in result.stdout
    assert "importing 60/60 files" in b"".join(received).decode()


def test_import_json_of_a_missing_folder_fails(cli: Cli, tmp_path: Path) -> None:
    """`import-json` of a folder that does not exist is one error line."""
    assert "is not a directory" in error(cli("import-json", str(tmp_path / "nowhere")))


# -- demo --------------------------------------------------------------------------------------


def test_demo_retries_crashes_recovers_and_leaves_its_database(tmp_path: Path) -> None:
    """`demo` on a fresh directory prints the retries, the interrupted session, the statistics
    and two queries that run on the convstore-demo.db it leaves behind."""
    env = {"CONVSTORE_DATABASE_URL": f"sqlite:///{tmp_path / 'production.db'}"}
    output = ok(run("demo", cwd=tmp_path, env=env))
    assert "100x shorter than real" in output
    assert "HTTP 429 rate limited (Retry-After: 8 s) -> retry in 8.0 s" in output
    assert "timed out -> retry in" in output
    assert "HTTP 529 overloaded" in output
    assert "retries used up" in output
    interrupted = output.split("Interrupted sessions")[1].split("Recovery")[0]
    assert "travel/itinerary-88" in interrupted
    assert "builtins.TimeoutError: the model did not answer within 60 s" in interrupted
    assert "still interrupted: none" in output
    assert re.search(r"^llm\.chat\s+retryable\s+4\s+11\s+7\s+1\s+3\s", output, re.MULTILINE)
    assert (tmp_path / "convstore-demo.db").is_file()
    assert not (tmp_path / "production.db").exists()  # the demo ignores the variable
    queries = re.findall(r'^\s+sqlite3 -header -column convstore-demo\.db "(.*)"$', output, re.M)
    assert len(queries) == 2
    with sqlite3.connect(tmp_path / "convstore-demo.db") as db:
        for query in queries:
            assert db.execute(query).fetchall()


def test_demo_runs_again_on_its_own_database(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second `demo` in the same directory works on the same file and adds no sessions."""
    monkeypatch.chdir(tmp_path)
    ok(cli("demo"))
    again = ok(cli("demo"))
    assert "still interrupted: none" in again
    listed = json.loads(ok(cli("sessions", "--json", "--url", "sqlite:///convstore-demo.db")))
    assert {s["session_id"] for s in listed["sessions"]} == {
        "support/refund-1017",
        "travel/itinerary-88",
    }


def test_show_says_what_the_provider_would_refuse(cli: Cli, database_url: str) -> None:
    """`show` of a session left in the middle of a tool call names the dangling call, and says
    the stored conversation is accepted once `resume()` has repaired it."""

    async def crash_then_resume(resume: bool) -> None:
        async with convstore.connect(database_url) as store:
            if resume:
                await store.resume("agent")
                return
            call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": ""}}
            await store.save_snapshot(
                "agent", [say("user", "go"), {"role": "assistant", "tool_calls": [call]}]
            )

    asyncio.run(crash_then_resume(resume=False))
    output = ok(cli("show", "agent", "--url", database_url))
    assert re.search(
        r"^provider\s+would refuse it: dangling call call_9 \(message 1\)", output, re.M
    )
    document = json.loads(ok(cli("show", "agent", "--json", "--url", database_url)))
    assert document["problems"] == [{"kind": "dangling_call", "position": 1, "call_id": "call_9"}]
    asyncio.run(crash_then_resume(resume=True))
    output = ok(cli("show", "agent", "--url", database_url))
    assert re.search(r"^provider\s+accepts the conversation as stored$", output, re.M)


def test_show_gives_each_message_its_position_in_the_conversation(
    cli: Cli, database_url: str
) -> None:
    """A pinned system prompt shows at position 0, the newest messages at theirs."""
    conversation = [say("system", "be brief"), *(say("user", f"turn {n}") for n in range(150))]

    async def save() -> None:
        async with convstore.connect(database_url) as store:
            await store.save_snapshot("long", conversation)

    asyncio.run(save())
    document = json.loads(
        ok(cli("show", "long", "--json", "--messages", "100", "--url", database_url))
    )
    assert [m["seq"] for m in document["messages"]] == [0, *range(52, 151)]
    assert document["messages"][0]["message"] == conversation[0]
    output = ok(cli("show", "long", "--messages", "2", "--url", database_url))
    assert re.search(r"^\s*150\s+user\s+turn 149$", output, re.M)


def libraries_imported(*argvs: list[str]) -> tuple[list[str], str]:
    """The storage libraries a process imported running ``convstore`` with each of `argvs` in
    turn, and what it printed before."""
    code = (
        "import runpy, sys\n"
        f"for argv in {argvs!r}:\n"
        "    sys.argv = ['convstore', *argv]\n"
        "    try:\n"
        "        runpy.run_module('convstore', run_name='__main__')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = {'sqlalchemy', 'alembic', 'aiosqlite', 'asyncpg'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    *printed, imported = result.stdout.splitlines()
    return json.loads(imported.replace("'", '"')), "\n".join(printed)


def test_help_and_version_import_no_storage_library() -> None:
    """Parsing the command line imports no command's dependencies: `--help` starts fast."""
    imported, printed = libraries_imported(["--help"], ["--version"])
    assert imported == []
    assert "convstore " in printed


# -- the quick read of `sessions --interrupted` ---------------------------------------------------


def test_the_quick_statements_are_the_stores_own() -> None:
    """The SQL the quick read runs is what SQLAlchemy compiles for the store's listing."""
    from sqlalchemy import func, select

    from convstore._storage import statements
    from convstore._storage.schema import sessions
    from convstore._storage.sqlite import quick

    assert statements.compiled(statements.interrupted_sessions(), "sqlite").sql == quick.INTERRUPTED
    count = select(func.count()).select_from(sessions).where(sessions.c.interrupted_at.is_not(None))
    assert statements.compiled(count, "sqlite").sql == quick.COUNT_INTERRUPTED


async def test_sessions_interrupted_on_a_current_file_skips_sqlalchemy(tmp_path: Path) -> None:
    """On a SQLite file at this convstore's revision, `sessions --interrupted` answers without
    importing SQLAlchemy, and says what the store says; an older file still gets the store's
    diagnosis."""
    url = f"sqlite:///{tmp_path / 'quick.db'}"
    async with convstore.connect(url) as store:
        for n in range(5):
            await store.save_snapshot(f"s{n}", [{"role": "user", "content": str(n)}])
            if n % 2 == 0:
                await store.mark_interrupted(f"s{n}", reason=f"crash {n}")
        expected = await store.list_interrupted_sessions(limit=2)
    imported, printed = libraries_imported(
        ["sessions", "--interrupted", "--json", "--limit", "2", "--url", url]
    )
    assert imported == []
    shown = json.loads(printed)
    assert shown["total"] == 3
    assert [(s["session_id"], s["reason"]) for s in shown["sessions"]] == [
        (s.session_id, s.reason) for s in expected
    ]
    assert [datetime.fromisoformat(s["interrupted_at"]) for s in shown["sessions"]] == [
        s.interrupted_at for s in expected
    ]
    with sqlite3.connect(tmp_path / "quick.db") as db:
        db.execute("UPDATE convstore_alembic_version SET version_num = '0007'")
    older = run("sessions", "--interrupted", "--url", url)
    assert older.returncode != 0
    assert "revision '0007'" in older.stderr


def test_every_command_that_opens_a_database_takes_schema() -> None:
    """Each subcommand, the demo included, accepts --schema, as the command line as a whole does."""
    from convstore._cli.parser import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a.choices, dict)]
    assert isinstance(commands.choices, dict)
    assert set(commands.choices) == {
        *("upgrade", "downgrade", "current", "check", "sessions", "show", "stats"),
        *("cooldowns", "import-json", "purge", "demo", "report"),
    }
    for name, sub in commands.choices.items():
        assert "[--schema NAME]" in sub.format_usage(), name
    assert "[--schema NAME]" in parser.format_usage()


def test_check_says_where_the_tables_are(cli: Cli, database_url: str, backend: str) -> None:
    """`check` names the schema, the version table and the revision, then the verdict."""
    ok(cli("upgrade", "--url", database_url))
    lines = ok(cli("check", "--url", database_url)).splitlines()
    if backend == "postgresql":
        assert lines[:2] == ["schema: public", "version table: public.convstore_alembic_version"]
    else:
        assert lines[:2] == [
            "schema: none (SQLite: the tables are in the database file)",
            "version table: convstore_alembic_version",
        ]
    assert lines[2] == f"revision: {HEAD} (head)"
    assert lines[3].startswith("up to date")


def test_schema_on_the_command_line_puts_every_command_in_it(cli: Cli, postgres_url: str) -> None:
    """`--schema` creates the schema on upgrade and every other command reads it; without the
    option the database's default schema has no convstore tables."""
    assert "(schema agents)" in ok(cli("upgrade", "--url", postgres_url, "--schema", "agents"))
    lines = ok(cli("check", "--url", postgres_url, "--schema", "agents")).splitlines()
    assert lines[:3] == [
        "schema: agents",
        "version table: agents.convstore_alembic_version",
        f"revision: {HEAD} (head)",
    ]
    assert ok(cli("current", "--schema", "agents", "--url", postgres_url)).startswith(HEAD)
    ok(cli("sessions", "--url", postgres_url, "--schema", "agents"))
    ok(cli("stats", "--url", postgres_url, "--schema", "agents", "--json"))
    page = ok(cli("report", "--url", postgres_url, "--schema", "agents", "-o", "-"))
    assert "Nothing recorded yet" in page
    assert ok(cli("current", "--url", postgres_url)).startswith("none")
    ok(cli("downgrade", "base", "--url", postgres_url, "--schema", "agents"))
    assert ok(cli("current", "--url", postgres_url, "--schema", "agents")).startswith("none")


def test_schema_comes_from_the_environment_too(
    cli: Cli, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CONVSTORE_SCHEMA is the schema when --schema is not given."""
    monkeypatch.setenv("CONVSTORE_SCHEMA", "agents")
    ok(cli("upgrade", "--url", postgres_url))
    assert "schema: agents" in ok(cli("check", "--url", postgres_url))
    monkeypatch.delenv("CONVSTORE_SCHEMA")
    assert "no convstore tables" in cli("check", "--url", postgres_url).stdout


def test_a_schema_on_sqlite_is_one_error_line(cli: Cli, tmp_path: Path) -> None:
    """--schema with a SQLite URL fails saying SQLite has no schemas, and makes no file."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert "SQLite has no schemas" in error(cli("upgrade", "--url", url, "--schema", "agents"))
    assert not (tmp_path / "app.db").exists()


def test_an_older_convstores_revision_is_reported_then_moved(cli: Cli, tmp_path: Path) -> None:
    """A database whose revision an older convstore kept in alembic_version fails `check`, which
    says so; `upgrade` moves it, and `check` passes."""
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    ok(cli("upgrade", "--url", url))
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE convstore_alembic_version RENAME TO alembic_version")
    behind = cli("check", "--url", url)
    assert behind.returncode == 1
    assert "version table: alembic_version" in behind.stdout
    assert "run `convstore upgrade` to move it" in behind.stdout
    assert "moved the revision" in ok(cli("upgrade", "--url", url))
    assert "version table: convstore_alembic_version" in ok(cli("check", "--url", url))


def test_demo_in_a_schema_prints_queries_that_name_it(
    cli: Cli, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo --schema` on PostgreSQL writes in that schema and prints queries (and a command)
    naming it, which find its rows from a connection in the default schema; CONVSTORE_SCHEMA is
    ignored."""
    monkeypatch.setenv("CONVSTORE_SCHEMA", "production")
    output = ok(cli("demo", "--url", postgres_url, "--schema", "demo"))
    queries = re.findall(r'^\s+psql \S+ -c "(.*)"$', output, re.M)
    assert len(queries) == 2
    assert all(" demo." in query for query in queries)
    assert f"convstore sessions --url {postgres_url} --schema demo" in output

    async def rows() -> list[int]:
        from sqlalchemy.ext.asyncio import create_async_engine

        from convstore._storage.engine import resolve_url

        engine = create_async_engine(resolve_url(postgres_url))
        try:
            async with engine.connect() as conn:
                found = [len((await conn.exec_driver_sql(q.rstrip(";"))).all()) for q in queries]
                schemas = await conn.exec_driver_sql(
                    "SELECT nspname FROM pg_namespace WHERE nspname IN ('demo', 'production')"
                )
                assert [row[0] for row in schemas] == ["demo"]
                return found
        finally:
            await engine.dispose()

    assert all(asyncio.run(rows()))
