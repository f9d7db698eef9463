"""Session leases: running sessions, heartbeats, and noticing owners that died."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

import convstore
from convstore._storage.schema import sessions


async def lease_of(store: convstore.Store, session_id: str) -> tuple[str | None, datetime | None]:
    """The session's owner and lease expiry, as stored."""
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(sessions.c.owner, sessions.c.lease_expires_at).where(
                    sessions.c.session_id == session_id
                )
            )
        ).one()
    return row.owner, row.lease_expires_at


async def expire(store: convstore.Store, session_id: str, owner: str = "dead-worker") -> None:
    """Make the session look as if its owner died a minute ago."""
    async with store.engine.begin() as conn:
        await conn.execute(
            update(sessions)
            .where(sessions.c.session_id == session_id)
            .values(owner=owner, lease_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


async def test_running_holds_a_lease_and_clears_it(store: convstore.Store) -> None:
    """Inside the block the session has an owner and a future expiry; after it, neither."""
    await store.save_snapshot("s1", [{"role": "user", "content": "hi"}])
    async with store.running("s1", owner="worker-1", lease_s=30) as lease:
        owner, expires = await lease_of(store, "s1")
        assert owner == lease.owner == "worker-1"
        assert expires is not None
        assert expires > datetime.now(UTC) + timedelta(seconds=20)
    assert await lease_of(store, "s1") == (None, None)
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert not snap.interrupted


async def test_running_an_unknown_session_creates_it(store: convstore.Store) -> None:
    """A session that does not exist yet is created, empty, when it starts running."""
    async with store.running("fresh") as lease:
        assert lease.owner.count(":") == 2  # host:pid:token
        snap = await store.restore_snapshot("fresh")
        assert snap is not None
        assert snap.messages == []


async def test_an_exception_marks_the_session_interrupted(store: convstore.Store) -> None:
    """An exception in the block marks the session interrupted with it as reason, and propagates."""
    with pytest.raises(TimeoutError, match="model took too long"):
        async with store.running("s1"):
            raise TimeoutError("model took too long (key sk-ant-api03-secretsecretsecret)")
    [listed] = await store.list_interrupted_sessions()
    assert listed.session_id == "s1"
    assert listed.reason is not None
    assert listed.reason.startswith("builtins.TimeoutError: model took too long")
    assert "secretsecretsecret" not in listed.reason
    assert await lease_of(store, "s1") == (None, None)


async def test_cancellation_marks_the_session_interrupted(store: convstore.Store) -> None:
    """A task cancelled inside the block leaves the session interrupted, and stays cancelled."""
    started = asyncio.Event()

    async def work() -> None:
        async with store.running("s1"):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [listed] = await store.list_interrupted_sessions()
    assert listed.reason == "asyncio.exceptions.CancelledError"


async def test_the_heartbeat_moves_the_lease_forward(store: convstore.Store) -> None:
    """While the block runs, the lease is renewed every third of its length."""
    async with store.running("s1", lease_s=0.3) as lease:
        first = lease.expires_at
        for _ in range(100):
            if lease.expires_at > first:
                break
            await asyncio.sleep(0.02)
        assert lease.expires_at > first
        _, stored = await lease_of(store, "s1")
        assert stored == lease.expires_at
        assert not lease.lost


async def test_a_live_lease_of_another_owner_is_refused(store: convstore.Store) -> None:
    """A second owner cannot run a session whose lease is alive."""
    async with store.running("s1", owner="first"):
        with pytest.raises(convstore.LeaseHeld, match="'first'"):
            async with store.running("s1", owner="second"):
                pass
        assert (await lease_of(store, "s1"))[0] == "first"


async def test_an_expired_lease_is_taken_over_and_recorded(store: convstore.Store) -> None:
    """Running a session whose owner died takes it over and records the abandonment."""
    async with store.running("s1", owner="first"):
        pass
    await expire(store, "s1")
    async with store.running("s1", owner="second"):
        assert (await lease_of(store, "s1"))[0] == "second"
    [entry] = await store.interruptions("s1")
    assert entry.reason == "abandoned"


async def test_recover_abandoned_marks_expired_leases_once(store: convstore.Store) -> None:
    """Expired leases are marked interrupted as abandoned and reported by exactly one caller."""
    for i in range(6):
        await store.save_snapshot(f"s{i}", [{"n": i}])
        async with store.running(f"s{i}"):
            pass
    for i in range(4):
        await expire(store, f"s{i}")
    async with store.running("s5", lease_s=60):  # alive: must not be recovered
        results = await asyncio.gather(*(store.recover_abandoned() for _ in range(5)))
    reported = [s.session_id for result in results for s in result]
    assert sorted(reported) == ["s0", "s1", "s2", "s3"]
    listed = await store.list_interrupted_sessions()
    assert sorted(s.session_id for s in listed) == ["s0", "s1", "s2", "s3"]
    assert {s.reason for s in listed} == {"abandoned"}
    assert {s.message_count for s in listed} == {1}
    assert await store.recover_abandoned() == []
    assert len(await store.interruptions()) == 4


async def test_a_lease_recovered_under_a_live_owner_is_reported_lost(
    store: convstore.Store,
) -> None:
    """If the session is recovered while its owner still runs, the heartbeat says so."""
    async with store.running("s1", lease_s=0.3) as lease:
        await expire(store, "s1", owner=lease.owner)
        assert [s.session_id for s in await store.recover_abandoned()] == ["s1"]
        for _ in range(100):
            if lease.lost:
                break
            await asyncio.sleep(0.02)
        assert lease.lost


async def test_a_stale_owner_cannot_end_or_mark_the_new_owners_lease(
    store: convstore.Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A's process stalls past its lease; the session is recovered and B takes it over; then A's
    block raises. A's end changes nothing of B's: B still holds the lease, no reason of A's is
    recorded, and A's lease says it was lost."""
    caplog.set_level("ERROR", logger="convstore")
    await store.save_snapshot("s1", [{"role": "user", "content": "hi"}])
    a_expired, b_holds, a_ended = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def owner_b() -> tuple[convstore.Lease, tuple[object, object], convstore.Snapshot]:
        await a_expired.wait()
        assert [s.session_id for s in await store.recover_abandoned()] == ["s1"]
        async with store.running("s1", owner="B", lease_s=30) as lease:
            b_holds.set()
            await a_ended.wait()
            snapshot = await store.restore_snapshot("s1")
            assert snapshot is not None
            return lease, await lease_of(store, "s1"), snapshot

    async def owner_a() -> convstore.Lease:
        with contextlib.suppress(RuntimeError):
            async with store.running("s1", owner="A", lease_s=30) as lease:
                await expire(store, "s1", owner="A")
                a_expired.set()
                await b_holds.wait()
                raise RuntimeError("A failed late")
        return lease

    b_task = asyncio.create_task(owner_b())
    a = await owner_a()
    a_ended.set()
    b, held, snapshot = await b_task
    assert a.lost
    assert not b.lost
    assert held == ("B", b.expires_at)
    assert snapshot.interrupt_reason == "abandoned"
    assert [h.reason for h in await store.interruptions("s1")] == ["abandoned"]
    assert "the lease on session 's1' was lost" in caplog.text
    assert await lease_of(store, "s1") == (None, None)  # B ended its own lease


async def test_a_block_that_deletes_its_session_ends_cleanly(store: convstore.Store) -> None:
    """Deleting the session inside the block (a clean exit) loses no lease; a failure after
    the delete marks the session again, as any crash does."""
    await store.save_snapshot("done", [{"role": "user", "content": "hi"}])
    async with store.running("done") as lease:
        await store.delete_snapshot("done")
    assert not lease.lost
    assert await store.restore_snapshot("done") is None
    await store.save_snapshot("failed", [{"role": "user", "content": "hi"}])
    with contextlib.suppress(RuntimeError):
        async with store.running("failed") as lease:
            await store.delete_snapshot("failed")
            raise RuntimeError("after the delete")
    assert not lease.lost
    snapshot = await store.restore_snapshot("failed")
    assert snapshot is not None
    assert snapshot.interrupt_reason == "builtins.RuntimeError: after the delete"


@pytest.mark.parametrize("bad", [0, -1, 0.01, "30", True])
async def test_invalid_lease_lengths_are_refused(store: convstore.Store, bad: object) -> None:
    """A lease shorter than 0.1 s or not a number raises InvalidArgument and marks nothing."""
    with pytest.raises(convstore.InvalidArgument, match="lease_s"):
        async with store.running("s1", lease_s=bad):  # type: ignore[arg-type]
            pass
    assert await store.restore_snapshot("s1") is None


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    import convstore

    async def main(url):
        async with convstore.connect(url) as store:
            await store.save_snapshot("victim", [{"role": "user", "content": "working"}])
            async with store.running("victim", lease_s=0.5):
                print("ready", flush=True)
                await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.slow
async def test_a_process_killed_with_sigkill_is_found(
    store: convstore.Store, database_url: str
) -> None:
    """A real child holding a lease is SIGKILLed; recover_abandoned then finds its session."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.strip() == b"ready"
        os.kill(child.pid, signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
        await child.communicate()
    assert await store.list_interrupted_sessions() == []  # nobody could mark it
    recovered: list[convstore.InterruptedSession] = []
    for _ in range(200):  # the lease runs out 0.5 s after the last heartbeat
        recovered = await store.recover_abandoned()
        if recovered:
            break
        await asyncio.sleep(0.05)
    assert [s.session_id for s in recovered] == ["victim"]
    [listed] = await store.list_interrupted_sessions()
    assert (listed.session_id, listed.reason, listed.message_count) == ("victim", "abandoned", 1)
