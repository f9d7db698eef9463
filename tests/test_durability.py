"""Nothing is lost: concurrent writer processes and writers killed mid-save leave whole snapshots.

Every message written here names the write that wrote it, so a stored conversation can be taken
apart and each piece traced to one complete write. Child processes are ``sys.executable -c``
scripts given the database URL; the functions they share with the checks are copied into their
scripts with `inspect.getsource`, so both sides compute the same messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
import sqlite3
import sys
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import convstore

# How long any one step of a child process may take before the test gives up on it.
CHILD_TIMEOUT_S = 60

WRITERS = 4
OPERATIONS = 200


def plan(worker: int) -> list[tuple[str, str, int, int]]:
    """The operations a writer makes, in order: (op, session, index, number of messages).

    Every session is shared: saves go to three ``snap-`` sessions, appends to two ``log-``
    sessions, and one ``mix`` session gets both.
    """
    operations = []
    for i in range(200):
        slot = i % 5
        if slot < 2:
            operations.append(("save", f"snap-{(i + worker) % 3}", i, 5 + (7 * i + worker) % 40))
        elif slot < 4:
            operations.append(("append", f"log-{(i + worker) % 2}", i, 1 + (i + worker) % 3))
        elif (i // 5 + worker) % 3 == 0:
            operations.append(("save", "mix", i, 5 + (3 * i + worker) % 30))
        else:
            operations.append(("append", "mix", i, 1 + i % 3))
    return operations


def written(op: str, worker: int, i: int, size: int) -> tuple[list[Any], dict[str, Any]]:
    """The messages and extra that operation `i` of `worker` writes; each names its write."""
    messages = [
        {
            "role": "user" if k % 2 == 0 else "assistant",
            "content": f"{op} {i} of writer {worker}: message {k + 1} of {size}",
            "op": op,
            "w": worker,
            "i": i,
            "k": k,
        }
        for k in range(size)
    ]
    return messages, {"op": op, "w": worker, "i": i}


CONCURRENT_WRITER = "\n".join(
    [
        "from __future__ import annotations",
        "import asyncio, json, sys",
        "from typing import Any",
        "import convstore",
        inspect.getsource(plan),
        inspect.getsource(written),
        textwrap.dedent(
            """
            async def main(url: str, worker: int) -> None:
                async with convstore.connect(url) as store:
                    print("ready", flush=True)
                    sys.stdin.readline()  # start together with the other writers
                    for op, session, i, size in plan(worker):
                        messages, extra = written(op, worker, i, size)
                        if op == "save":
                            await store.save_snapshot(session, messages, extra=extra)
                        else:
                            count = await store.append_messages(session, messages, extra=extra)
                            print(json.dumps([i, count]))
                print("done", flush=True)

            asyncio.run(main(sys.argv[1], int(sys.argv[2])))
            """
        ),
    ]
)


def big_snapshot(session: str, version: int) -> tuple[list[Any], dict[str, Any]]:
    """Version `version` of a session: 60 to 100 messages of 1 to 4 KB, each naming both."""
    size = 60 + (13 * version + 7 * len(session) + ord(session[-1])) % 41
    messages = [
        {
            "role": "user" if k % 2 == 0 else "assistant",
            "session": session,
            "version": version,
            "k": k,
            "content": (f"{session} v{version} m{k} " * 200)[
                : 1000 + (37 * k + 11 * version) % 3000
            ],
        }
        for k in range(size)
    ]
    return messages, {"session": session, "version": version, "size": size}


KILLED_SESSIONS = [f"big-{n}" for n in range(4)]

KILLED_WRITER = "\n".join(
    [
        "from __future__ import annotations",
        "import asyncio, sys",
        "from typing import Any",
        "import convstore",
        inspect.getsource(big_snapshot),
        f"SESSIONS = {KILLED_SESSIONS!r}",
        textwrap.dedent(
            """

            async def save(store: convstore.Store, session: str, version: int) -> None:
                messages, extra = big_snapshot(session, version)
                await store.save_snapshot(session, messages, extra=extra)
                # One write, so that a kill cannot cut the line (stdout may be unbuffered).
                sys.stdout.write(f"{session} {version}\\n")
                sys.stdout.flush()

            async def main(url: str) -> None:
                async with convstore.connect(url) as store:
                    print("ready", flush=True)
                    version = int(sys.stdin.readline())
                    while True:  # until killed
                        await asyncio.gather(*(save(store, s, version) for s in SESSIONS))
                        version += 1

            asyncio.run(main(sys.argv[1]))
            """
        ),
    ]
)


# -- child processes ------------------------------------------------------------------------------


async def spawn(script: str, *args: str) -> asyncio.subprocess.Process:
    """Start `script` in a new Python process with pipes for its stdin, stdout and stderr."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_line(child: asyncio.subprocess.Process) -> str:
    """The child's next line of output; fails the test if the child ends or stalls first."""
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), CHILD_TIMEOUT_S)
    if not line:
        assert child.stderr is not None
        error = await asyncio.wait_for(child.stderr.read(), CHILD_TIMEOUT_S)
        pytest.fail(f"the child process ended early: {error.decode(errors='replace')}")
    return line.decode().strip()


async def reap(children: Iterable[asyncio.subprocess.Process]) -> None:
    """Kill whichever children still run and collect them all, so that none outlives the test."""
    for child in children:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        await child.communicate()


# -- checks ---------------------------------------------------------------------------------------


async def stored_seqs(store: convstore.Store, session_id: str) -> list[int]:
    """The positions of the session's stored message rows, in order."""
    query = text("SELECT seq FROM messages WHERE session_id = :sid ORDER BY seq")
    async with store.engine.connect() as conn:
        return list((await conn.execute(query, {"sid": session_id})).scalars())


Write = tuple[str, int, int]  # (op, writer, index)


def check_made_of_whole_writes(
    snap: convstore.Snapshot,
    seqs: Sequence[int],
    writes: dict[Write, tuple[int, int | None]],
    order: dict[int, list[Write]],
    cap: int,
) -> list[Write]:
    """Check that a session is the result of whole writes, each message where its write put it.

    `writes` maps each write to the session to its size and, for appends, the message count
    `append_messages` returned; `order` lists each writer's writes to the session in the order
    it made them. Returns the writes found, oldest first.
    """
    count = snap.message_count
    first = count - len(snap.messages)
    assert seqs == list(range(first, count)), "stored positions are not contiguous"
    assert len(snap.messages) == min(count, cap)
    found: dict[Write, list[int]] = {}
    for seq, message in zip(seqs, snap.messages, strict=True):
        write = (message["op"], message["w"], message["i"])
        assert write in writes, f"{write} is not a write to {snap.session_id}"
        size, returned = writes[write]
        k = message["k"]
        assert message == written(*write, size)[0][k]
        # A save writes positions 0..size-1; an append the size positions before its count.
        assert seq == (k if returned is None else returned - size + k), f"{write} at {seq}"
        found.setdefault(write, []).append(k)
    for write, ks in found.items():
        size, returned = writes[write]
        start = 0 if returned is None else returned - size
        assert ks == [k for k in range(size) if start + k >= first], f"{write} is not whole"
    present = list(found)
    saves = [write for write in present if write[0] == "save"]
    assert saves in ([], present[:1]), "a save is not the start of what is stored"
    for worker, made in order.items():
        # A writer's later writes committed later, so they come after its earlier ones and a
        # later save would have replaced them: what survives of a writer is its newest writes.
        mine = [write for write in present if write[1] == worker]
        assert mine == made[len(made) - len(mine) :], f"writer {worker}: {mine} out of order"
    last = present[-1]
    size, returned = writes[last]
    assert count == (size if returned is None else returned)
    assert snap.extra == {"op": last[0], "w": last[1], "i": last[2]}
    return present


@pytest.mark.slow
async def test_four_processes_saving_and_appending_at_once_lose_nothing(
    store: convstore.Store, database_url: str
) -> None:
    """Four processes x 200 saves and appends to shared sessions succeed and leave whole writes."""
    children = [await spawn(CONCURRENT_WRITER, database_url, str(w)) for w in range(WRITERS)]
    try:
        for child in children:
            assert await read_line(child) == "ready"
        results = await asyncio.wait_for(
            asyncio.gather(*(child.communicate(b"go\n") for child in children)), 300
        )
    finally:
        await reap(children)
    returned: dict[tuple[int, int], int] = {}
    for worker, (child, (out, err)) in enumerate(zip(children, results, strict=True)):
        assert (child.returncode, err.decode()) == (0, ""), f"writer {worker} failed"
        *appends, done = out.decode().splitlines()
        assert done == "done"
        for line in appends:
            i, count = json.loads(line)
            returned[worker, i] = count

    writes: dict[str, dict[Write, tuple[int, int | None]]] = defaultdict(dict)
    order: dict[str, dict[int, list[Write]]] = defaultdict(lambda: defaultdict(list))
    for worker in range(WRITERS):
        for op, session, i, size in plan(worker):
            writes[session][op, worker, i] = (size, returned[worker, i] if op == "append" else None)
            order[session][worker].append((op, worker, i))
    assert len(returned) == sum(op == "append" for w in range(WRITERS) for op, *_ in plan(w))

    for session in sorted(writes):
        snap = await store.restore_snapshot(session)
        assert snap is not None
        seqs = await stored_seqs(store, session)
        found = check_made_of_whole_writes(
            snap, seqs, writes[session], order[session], store.max_messages
        )
        if session.startswith("snap-"):
            assert len(found) == 1  # one whole snapshot: the newest save of one of the writers
        if session.startswith("log-"):
            # Every append was counted once: the positions the appends got tile the whole
            # conversation, with no gap and no overlap.
            spans = sorted(
                (count - size, count)
                for size, count in writes[session].values()
                if count is not None
            )
            starts = [start for start, _ in spans]
            assert starts == [0] + [end for _, end in spans[:-1]]
            assert spans[-1][1] == snap.message_count


@pytest.mark.slow
async def test_a_writer_killed_mid_save_leaves_old_or_new_snapshots(
    store: convstore.Store, database_url: str, backend: str
) -> None:
    """A writer of large snapshots SIGKILLed 20 times leaves every session whole, old or new."""
    rng = random.Random(4)
    for session in KILLED_SESSIONS:
        messages, extra = big_snapshot(session, 0)
        await store.save_snapshot(session, messages, extra=extra)
    state = dict.fromkeys(KILLED_SESSIONS, 0)
    children = [await spawn(KILLED_WRITER, database_url)]
    try:
        for _ in range(20):
            child = children[-1]
            assert await read_line(child) == "ready"
            # The next writer starts now, so that its start-up overlaps this one's writing.
            children.append(await spawn(KILLED_WRITER, database_url))
            start = max(state.values()) + 1
            assert child.stdin is not None
            child.stdin.write(f"{start}\n".encode())
            await child.stdin.drain()
            # known: the newest version whose save returned; in flight: the one after it.
            known = dict(state)
            in_flight = dict.fromkeys(KILLED_SESSIONS, start)
            for _ in range(rng.randint(0, 12)):
                saved(await read_line(child), known, in_flight)
            # A random moment within the saves that follow; this wait is what makes it random.
            await asyncio.sleep(rng.uniform(0, 0.05))
            child.kill()
            out, _ = await asyncio.wait_for(child.communicate(), CHILD_TIMEOUT_S)
            *lines, _unfinished = out.decode().split("\n")
            for line in lines:
                saved(line, known, in_flight)
            if backend == "postgresql":
                await server_done_with_killed_clients(store)
            else:
                check_sqlite_integrity(database_url)
            for session in KILLED_SESSIONS:
                snap = await store.restore_snapshot(session)
                assert snap is not None
                version = snap.extra["version"]
                assert version in (known[session], in_flight[session]), session
                messages, extra = big_snapshot(session, version)
                assert snap.messages == messages
                assert snap.extra == extra
                assert snap.message_count == len(messages)
                assert await stored_seqs(store, session) == list(range(len(messages)))
                state[session] = version
    finally:
        await reap(children)
    # Every session moved on from its first version: the kills interrupted real writing.
    assert min(state.values()) > 0


def saved(line: str, known: dict[str, int], in_flight: dict[str, int]) -> None:
    """Note a killed writer's report that a version of a session was saved."""
    session, version = line.split()
    known[session] = int(version)
    in_flight[session] = int(version) + 1


def check_sqlite_integrity(database_url: str) -> None:
    """Fail unless SQLite finds the database file sound, its foreign keys included."""
    path = make_url(database_url).database
    assert path is not None
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


async def server_done_with_killed_clients(store: convstore.Store) -> None:
    """Wait until PostgreSQL has ended the transactions of the clients that were killed.

    The server learns of a killed client when it next reads from its socket; until then a
    commit the client sent before it died may still be applied.
    """
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
    )
    async with asyncio.timeout(CHILD_TIMEOUT_S):
        while True:
            async with store.engine.connect() as conn:
                if (await conn.exec_driver_sql(query)).scalar_one() == 0:
                    return
            await asyncio.sleep(0.01)
