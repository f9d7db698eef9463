"""The drop-in ConversationRecovery class keeps the original interface, minus its defects."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import convstore
from convstore.compat import ConversationRecovery

MESSAGES = [{"role": "user", "content": f"m{i}"} for i in range(120)]


@pytest.fixture
async def recovery(database_url: str) -> AsyncIterator[ConversationRecovery]:
    """A ConversationRecovery on a fresh database, closed afterwards."""
    recovery = ConversationRecovery(database_url)
    try:
        yield recovery
    finally:
        await recovery.close()


async def test_save_and_restore_give_the_original_record(recovery: ConversationRecovery) -> None:
    """A saved session restores as the original dict: epoch saved_at, last 100 messages, extra."""
    before = time.time()
    assert await recovery.save_snapshot("s1", MESSAGES, extra={"model": "x"}) is True
    record = await recovery.restore_snapshot("s1")
    assert record is not None
    assert set(record) == {"session_id", "saved_at", "message_count", "messages", "extra"}
    assert record["session_id"] == "s1"
    assert isinstance(record["saved_at"], float)
    assert before - 1 <= record["saved_at"] <= time.time() + 1
    assert record["message_count"] == 120
    assert record["messages"] == MESSAGES[-100:]
    assert record["extra"] == {"model": "x"}


async def test_marking_adds_the_original_keys(recovery: ConversationRecovery) -> None:
    """A marked session's record carries interrupted=True and an epoch interrupted_at."""
    await recovery.save_snapshot("s1", MESSAGES[:3])
    assert await recovery.mark_interrupted("s1") is True
    record = await recovery.restore_snapshot("s1")
    assert record is not None
    assert record["interrupted"] is True
    assert isinstance(record["interrupted_at"], float)
    assert record["interrupted_at"] >= record["saved_at"]


async def test_marking_an_unknown_session_keeps_its_id(recovery: ConversationRecovery) -> None:
    """Marking a session that was never saved gives a record with its session_id."""
    assert await recovery.mark_interrupted("ghost") is True
    [listed] = await asyncio.to_thread(recovery.list_interrupted_sessions)
    assert listed["session_id"] == "ghost"
    assert listed["message_count"] == 0


async def test_ids_are_not_mangled(recovery: ConversationRecovery) -> None:
    """`a/b` and `a_b` are two sessions, unlike in the original."""
    await recovery.save_snapshot("a/b", MESSAGES[:1])
    await recovery.save_snapshot("a_b", MESSAGES[1:3])
    first = await recovery.restore_snapshot("a/b")
    second = await recovery.restore_snapshot("a_b")
    assert first is not None
    assert second is not None
    assert first["message_count"] == 1
    assert second["message_count"] == 2


async def test_list_works_inside_a_running_loop(recovery: ConversationRecovery) -> None:
    """The plain list method, called from a coroutine, returns newest-first dicts."""
    await recovery.mark_interrupted("old")
    await recovery.mark_interrupted("new")
    listed = recovery.list_interrupted_sessions()
    assert [s["session_id"] for s in listed] == ["new", "old"]
    for entry in listed:
        assert set(entry) == {"session_id", "message_count", "interrupted_at", "age_seconds"}
        assert isinstance(entry["interrupted_at"], float)
        assert entry["age_seconds"] >= 0


def test_list_works_outside_any_loop(tmp_path: Path) -> None:
    """The plain list method works from synchronous code with no event loop."""
    recovery = ConversationRecovery(f"sqlite:///{tmp_path / 'c.db'}")

    async def mark() -> None:
        await recovery.mark_interrupted("s1")
        await recovery.close()

    asyncio.run(mark())
    assert [s["session_id"] for s in recovery.list_interrupted_sessions()] == ["s1"]


async def test_delete_reports_whether_it_deleted(recovery: ConversationRecovery) -> None:
    """delete_snapshot returns True for a stored session and False afterwards."""
    await recovery.save_snapshot("s1", MESSAGES[:1])
    assert await recovery.delete_snapshot("s1") is True
    assert await recovery.delete_snapshot("s1") is False
    assert await recovery.restore_snapshot("s1") is None


async def test_failures_are_logged_not_raised(
    recovery: ConversationRecovery, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad input returns False or None and logs the error with its traceback."""
    with caplog.at_level(logging.ERROR, logger="convstore.compat"):
        assert await recovery.save_snapshot("", MESSAGES) is False
        assert await recovery.save_snapshot("s1", "not a list") is False
        assert await recovery.restore_snapshot(None) is None  # type: ignore[arg-type]
        assert await recovery.mark_interrupted("x" * 300) is False
        assert await recovery.delete_snapshot("") is False
    assert len(caplog.records) == 5
    assert all(r.exc_info is not None for r in caplog.records)
    assert "save_snapshot('')" in caplog.records[0].getMessage()


async def test_an_unusable_database_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With a database that cannot be opened, every method logs and returns its failure value."""
    recovery = ConversationRecovery(f"sqlite:///{tmp_path / 'missing' / 'c.db'}")
    with caplog.at_level(logging.ERROR, logger="convstore.compat"):
        assert await recovery.save_snapshot("s1", MESSAGES) is False
        assert await recovery.restore_snapshot("s1") is None
        assert await recovery.mark_interrupted("s1") is False
        assert await recovery.delete_snapshot("s1") is False
        assert recovery.list_interrupted_sessions() == []
    assert len(caplog.records) == 5
    assert "does not exist" in caplog.text
    await recovery.close()


async def test_the_cap_keeps_tool_exchanges_whole(recovery: ConversationRecovery) -> None:
    """Through the drop-in, too, a long OpenAI chat tool loop is trimmed without splitting a call
    from its results, and the system prompt stays."""
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "go"},
    ]
    for n in range(70):
        call = {"id": f"c{n}", "type": "function", "function": {"name": "f", "arguments": ""}}
        messages += [
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{n}", "content": "ok"},
        ]
    assert await recovery.save_snapshot("loop", messages) is True
    record = await recovery.restore_snapshot("loop")
    assert record is not None
    kept = record["messages"]
    assert len(kept) <= 100
    assert kept[0] == messages[0]
    assert convstore.check_conversation(kept) == []


def test_used_without_close_it_leaves_no_connection_open(tmp_path: Path) -> None:
    """Called from several `asyncio.run`s and never closed, as the original class was used, it
    closes its connections as each loop shuts down: nothing is left for the garbage collector."""
    script = textwrap.dedent(
        f"""
        import asyncio, gc
        from convstore.compat import ConversationRecovery

        recovery = ConversationRecovery({f"sqlite:///{tmp_path / 'c.db'}"!r})
        for i in range(3):
            asyncio.run(recovery.save_snapshot(f"s{{i}}", [{{"role": "user", "content": "hi"}}]))
        gc.collect()
        print(len(recovery.list_interrupted_sessions()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "0", "")
