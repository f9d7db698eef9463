"""Failure modes: each is a clear ConvstoreError naming the problem, raised promptly, never a hang.

Extends tests/test_connect.py (a text file that is not SQLite, a missing directory, a server on a
closed port) with other files that are not SQLite databases, a corrupt database, read-only files
and file systems, other forms of a missing directory, and PostgreSQL servers that are missing,
silent, gone or read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import convstore
import convstore._storage.engine

# A bound on how long any failure may take to surface; far above what each needs.
PROMPTLY_S = 30

MESSAGES = [{"role": "user", "content": "kept"}, {"role": "assistant", "content": "safe"}]


def digest(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def save_and_close(url: str) -> None:
    """Create a database at `url` holding one snapshot of MESSAGES, and close it."""
    async with convstore.connect(url) as store:
        await store.save_snapshot("s1", MESSAGES, extra={"n": 1})


# -- files that are not SQLite databases ----------------------------------------------------------

NOT_SQLITE = {
    "random-bytes": random.Random(7).randbytes(16 * 1024),
    "json": json.dumps({"messages": MESSAGES}).encode() * 100,
    "sqlite-header-then-garbage": b"SQLite format 3\x00" + random.Random(8).randbytes(8192),
}


@pytest.mark.parametrize("migrate", [True, False], ids=["migrate", "no-migrate"])
@pytest.mark.parametrize("content", NOT_SQLITE.values(), ids=NOT_SQLITE.keys())
async def test_files_that_are_not_sqlite_are_named_and_left_alone(
    tmp_path: Path, content: bytes, migrate: bool
) -> None:
    """Any file that is not a SQLite database raises StorageError saying so, and is not changed."""
    path = tmp_path / "app.db"
    path.write_bytes(content)
    with pytest.raises(convstore.PermanentStorageError, match="not a SQLite database") as info:
        await asyncio.wait_for(convstore.connect(f"sqlite:///{path}", migrate=migrate), PROMPTLY_S)
    assert str(path) in str(info.value)
    cause = info.value.__cause__
    assert isinstance(getattr(cause, "orig", cause), sqlite3.DatabaseError)  # SQLite's own error
    assert path.read_bytes() == content


async def test_a_corrupt_database_is_named_when_read(tmp_path: Path) -> None:
    """A database whose message pages were overwritten raises StorageError naming corruption."""
    path = tmp_path / "app.db"
    await save_and_close(f"sqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        ((root,),) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'")
        ((page_size,),) = conn.execute("PRAGMA page_size")
    with path.open("r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(random.Random(9).randbytes(page_size))
    async with convstore.connect(f"sqlite:///{path}") as store:
        with pytest.raises(convstore.PermanentStorageError, match="corrupt") as info:
            await asyncio.wait_for(store.restore_snapshot("s1"), PROMPTLY_S)
    assert str(path) in str(info.value)


# -- read-only database files ---------------------------------------------------------------------

# Run in a child process that cannot write the database file: it says it started (so that a
# crash of its own is told apart from a wrapper that refused to run it), then reports, as JSON,
# whether it could open the file for writing and what each store operation returned or raised.
STARTED = "child started"
READ_ONLY_CHILD = f"print({STARTED!r}, flush=True)\n" + textwrap.dedent(
    """
    import asyncio, json, sys
    import convstore

    def outcome(error):
        return [type(error).__name__, isinstance(error, convstore.ConvstoreError), str(error)]

    async def main(url, path):
        report = {"writable": True, "steps": {}}
        try:
            open(path, "r+b").close()
        except OSError:
            report["writable"] = False
        steps = report["steps"]
        try:
            store = await convstore.connect(url)
        except Exception as error:
            steps["connect"] = outcome(error)
        else:
            steps["connect"] = None
            calls = {
                "restore_snapshot": lambda: store.restore_snapshot("s1"),
                "save_snapshot": lambda: store.save_snapshot("s1", [{"content": "lost"}]),
                "append_messages": lambda: store.append_messages("s1", [{"content": "lost"}]),
                "mark_interrupted": lambda: store.mark_interrupted("s1", "read-only"),
            }
            for name, call in calls.items():
                try:
                    result = await asyncio.wait_for(call(), 30)
                except Exception as error:
                    steps[name] = outcome(error)
                else:
                    steps[name] = None
                    if name == "restore_snapshot":
                        report["restored"] = None if result is None else result.messages
            await store.close()
        print(json.dumps(report))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)
WRITES = ("save_snapshot", "append_messages", "mark_interrupted")


def run_unable_to_write(prefix: list[str], url: str, path: Path) -> dict[str, Any]:
    """Run READ_ONLY_CHILD under `prefix` and return its report."""
    try:
        result = subprocess.run(
            [*prefix, sys.executable, "-c", READ_ONLY_CHILD, url, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except FileNotFoundError as exc:
        pytest.skip(f"cannot take write access away here: {exc}")
    if result.returncode == 97 or not result.stdout.startswith(STARTED):
        # The mount, or the wrapper that drops the override, was refused: the child never ran.
        pytest.skip(f"cannot take write access away here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr  # the child itself failed
    report: dict[str, Any] = json.loads(result.stdout.removeprefix(STARTED))
    if report["writable"]:
        pytest.skip("cannot take write access away here: the child could still write the file")
    return report


def check_refused_as_read_only(report: dict[str, Any]) -> None:
    """Every write failed, each failure a StorageError saying the database is read-only."""
    steps = report["steps"]
    failed = {name: error for name, error in steps.items() if error is not None}
    assert failed, "every operation succeeded on a database that cannot be written"
    for name, (error_type, is_convstore_error, message) in failed.items():
        assert (error_type, is_convstore_error) == ("PermanentStorageError", True), (name, message)
        assert "read-only" in message, (name, message)
    if steps["connect"] is None:
        assert all(steps[name] is not None for name in WRITES), steps
        if steps["restore_snapshot"] is None:  # reading a read-only file is fine
            assert report["restored"] == MESSAGES


def without_write_override() -> list[str]:
    """A command prefix under which file permissions bind this process's user too.

    Tests may run as root, whom permissions do not stop: root then keeps its uid, so that the
    interpreter under /root stays reachable, but loses the capabilities that override them.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv, which could drop the override")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.slow
@pytest.mark.parametrize("directory_writable", [True, False], ids=["dir-writable", "dir-read-only"])
def test_a_read_only_database_file_is_named_and_left_alone(
    tmp_path: Path, directory_writable: bool
) -> None:
    """A database file the process may not write raises StorageError saying it is read-only."""
    directory = tmp_path / "data"
    directory.mkdir()
    path = directory / "app.db"
    url = f"sqlite:///{path}"
    asyncio.run(save_and_close(url))
    before = digest(path)
    path.chmod(0o444)
    if not directory_writable:
        directory.chmod(0o555)
    try:
        report = run_unable_to_write(without_write_override(), url, path)
    finally:
        directory.chmod(0o755)
        path.chmod(0o644)
    check_refused_as_read_only(report)
    assert digest(path) == before


@pytest.mark.slow
def test_a_database_on_a_read_only_file_system_is_named_and_left_alone(tmp_path: Path) -> None:
    """A database on a read-only mount raises StorageError saying it is read-only."""
    directory = tmp_path / "data"
    directory.mkdir()
    path = directory / "app.db"
    url = f"sqlite:///{path}"
    asyncio.run(save_and_close(url))
    before = digest(path)
    # A private mount namespace in which the directory is bound onto itself read-only; the
    # rest of the machine does not see the mount. Exit status 97: the mount was refused.
    mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" || exit 97; exec "$@"'
    report = run_unable_to_write(
        ["unshare", "--mount", "sh", "-c", mount, str(directory)], url, path
    )
    check_refused_as_read_only(report)
    assert digest(path) == before


# -- a missing directory --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["relative", "aiosqlite", "no-migrate"])
async def test_a_missing_directory_is_named_in_every_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """A relative path, the aiosqlite scheme and migrate=False all name the missing directory."""
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "gone" / "away"
    url = {
        "relative": "sqlite:///gone/away/app.db",
        "aiosqlite": f"sqlite+aiosqlite:///{missing}/app.db",
        "no-migrate": f"sqlite:///{missing}/app.db",
    }[form]
    with pytest.raises(convstore.ConfigurationError, match="does not exist") as info:
        await convstore.connect(url, migrate=form != "no-migrate")
    assert str(missing) in str(info.value)
    assert os.listdir(tmp_path) == []


async def test_a_directory_that_is_a_file_is_named(tmp_path: Path) -> None:
    """A path whose directory is a regular file raises ConfigurationError saying just that."""
    not_a_directory = tmp_path / "notes.txt"
    not_a_directory.write_text("a file, not a directory\n")
    with pytest.raises(convstore.ConfigurationError, match="not a directory") as info:
        await convstore.connect(f"sqlite:///{not_a_directory / 'app.db'}")
    assert str(not_a_directory) in str(info.value)
    assert not_a_directory.read_text() == "a file, not a directory\n"


# -- PostgreSQL servers that are missing, silent, gone or read-only -------------------------------


def server_of(postgres_url: str) -> tuple[str, int]:
    """The host and port of the test PostgreSQL server."""
    url = make_url(postgres_url)
    return url.host or "127.0.0.1", url.port or 5432


def through(postgres_url: str, port: int) -> str:
    """The database URL, reached through a local port instead."""
    return (
        make_url(postgres_url)
        .set(host="127.0.0.1", port=port)
        .render_as_string(hide_password=False)
    )


class Proxy:
    """A TCP relay to the PostgreSQL server that a test can freeze, stop and start again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Listen (again) on the relay's port, a free one the first time."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every relayed connection, as a server going down does."""
        self.flowing.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(client_out)
        try:
            server_in, server_out = await asyncio.open_connection(*self.target)
        except OSError:
            client_out.close()
            return
        self._writers.append(server_out)
        await asyncio.gather(self._pipe(client_in, server_out), self._pipe(server_in, client_out))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[Proxy]:
    """A running relay to the test PostgreSQL server."""
    relay = Proxy(server_of(postgres_url))
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


@pytest.mark.parametrize("missing", ["database", "role"])
async def test_a_missing_database_or_role_is_named(postgres_url: str, missing: str) -> None:
    """A database or role the server does not have raises StorageError naming it."""
    url = make_url(postgres_url)
    if missing == "database":
        url, fragment = url.set(database="no_such_database"), 'database "no_such_database"'
    else:
        url, fragment = url.set(username="nobody_here"), 'role "nobody_here"'
    with pytest.raises(convstore.PermanentStorageError, match=f"{fragment} does not exist") as info:
        await asyncio.wait_for(
            convstore.connect(url.render_as_string(hide_password=False)), PROMPTLY_S
        )
    assert info.value.__cause__ is not None


async def test_a_server_that_never_answers_times_out_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that accepts connections but never answers raises StorageError after the timeout."""
    # The real timeout is 10 s; a shorter one proves the same thing faster.
    monkeypatch.setattr(convstore._storage.engine, "CONNECT_TIMEOUT_S", 1)
    accepted: list[asyncio.StreamWriter] = []

    async def ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    silent = await asyncio.start_server(ignore, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/test"
        with pytest.raises(convstore.TransientStorageError, match=f"127.0.0.1:{port}") as info:
            await asyncio.wait_for(convstore.connect(url), PROMPTLY_S)
    finally:
        silent.close()
        for writer in accepted:
            writer.close()
        await silent.wait_closed()
    assert "timeout" in str(info.value).lower()
    assert info.value.__cause__ is not None


async def test_a_server_that_goes_down_is_waited_for_then_named(
    postgres_url: str, proxy: Proxy
) -> None:
    """A call while the server is down keeps trying to reach it for `reconnect_s`: it succeeds
    if the server comes back within it, and raises TransientStorageError naming the server if
    not. Once the server is back, calls work again."""
    url = through(postgres_url, proxy.port)
    async with convstore.connect(url, reconnect_s=1) as brief, convstore.connect(url) as patient:
        await brief.save_snapshot("s1", MESSAGES)
        await patient.restore_snapshot("s1")  # each store holds a connection now
        await proxy.stop()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: brief.save_snapshot("s1", []),
            lambda: brief.restore_snapshot("s1"),
            lambda: brief.mark_interrupted("s1"),
        ]
        for call in calls:
            with pytest.raises(
                convstore.TransientStorageError, match=f"127.0.0.1:{proxy.port}"
            ) as info:
                await asyncio.wait_for(call(), PROMPTLY_S)
            assert info.value.__cause__ is not None
        waiting = asyncio.ensure_future(patient.save_snapshot("s1", [*MESSAGES, {"content": "x"}]))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await proxy.start()
        await asyncio.wait_for(waiting, PROMPTLY_S)
        snap = await brief.restore_snapshot("s1")
        assert snap is not None
        assert snap.messages == [*MESSAGES, {"content": "x"}]


@pytest.mark.slow
async def test_a_server_that_stops_answering_mid_session_is_an_error_not_a_hang(
    postgres_url: str, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call to a server that stopped answering (host down, network cut) fails, never hangs."""
    monkeypatch.setattr(convstore._storage.engine, "COMMAND_TIMEOUT_S", 2)  # 60 s in real use
    async with convstore.connect(through(postgres_url, proxy.port)) as store:
        await store.save_snapshot("s1", MESSAGES)
        proxy.flowing.clear()  # from now on nothing reaches the server, nothing comes back
        call = asyncio.ensure_future(store.save_snapshot("s1", []))
        done, _ = await asyncio.wait({call}, timeout=30)
        await proxy.stop()
        if not done:
            call.cancel()
            with contextlib.suppress(BaseException):
                await call
            pytest.fail("save_snapshot was still waiting 30 s after the server stopped answering")
        with pytest.raises(convstore.TransientStorageError, match=f"127.0.0.1:{proxy.port}"):
            call.result()


async def test_a_read_only_postgresql_database_is_named(postgres_url: str) -> None:
    """Writes to a database the server keeps read-only raise StorageError saying so; reads work."""
    await save_and_close(postgres_url)
    name = make_url(postgres_url).database
    async with convstore.connect(postgres_url) as store, store.engine.connect() as conn:
        await conn.exec_driver_sql(
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
        )
        await conn.commit()
    async with convstore.connect(postgres_url) as store:
        snap = await store.restore_snapshot("s1")
        assert snap is not None
        assert snap.messages == MESSAGES
        writes: list[Callable[[], Awaitable[object]]] = [
            lambda: store.save_snapshot("s1", []),
            lambda: store.append_messages("s1", [{"content": "lost"}]),
            lambda: store.mark_interrupted("s1"),
        ]
        for write in writes:
            with pytest.raises(convstore.PermanentStorageError, match="read-only"):
                await asyncio.wait_for(write(), PROMPTLY_S)
        snap = await store.restore_snapshot("s1")
        assert snap is not None
        assert snap.messages == MESSAGES


# -- what kind of failure: retry later, or call a person -----------------------------------------


async def test_a_lock_held_past_the_busy_timeout_is_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding the write lock past the busy timeout gives TransientStorageError,
    which the classifier retries; once the lock is released the same call succeeds."""
    monkeypatch.setattr(convstore._storage.engine, "SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "app.db"
    async with convstore.connect(f"sqlite:///{path}") as store:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(convstore.TransientStorageError, match="busy_timeout") as info:
            await store.save_snapshot("s1", MESSAGES)
        error_type, _ = convstore.ErrorClassifier().classify(info.value)
        assert error_type is convstore.ErrorType.RETRYABLE
        blocker.execute("ROLLBACK")
        blocker.close()
        await store.save_snapshot("s1", MESSAGES)


def test_the_classifier_reads_convstores_own_errors() -> None:
    """Transient storage errors are retried; permanent ones are fatal; a commit that may have
    happened, or an error convstore does not recognise, is not retried."""
    classify = convstore.ErrorClassifier().classify
    expected = {
        convstore.TransientStorageError("connection refused"): convstore.ErrorType.RETRYABLE,
        convstore.PermanentStorageError("the disk is full"): convstore.ErrorType.FATAL,
        convstore.CommitUnknown("connection lost while committing"): (
            convstore.ErrorType.NON_RETRYABLE
        ),
        convstore.StorageError("connection closed, unrecognised"): (
            convstore.ErrorType.NON_RETRYABLE
        ),
    }
    assert {error: classify(error)[0] for error in expected} == expected


# -- private files ------------------------------------------------------------------------------


async def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    """A database convstore creates, and the -wal and -shm files beside it, are readable by their
    owner only, whatever the umask allows; an existing file keeps its mode."""
    created = tmp_path / "new.db"
    existing = tmp_path / "shared.db"
    previous = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        async with convstore.connect(f"sqlite:///{created}") as store:
            await store.save_snapshot("s1", MESSAGES)
            files = [created, Path(f"{created}-wal"), Path(f"{created}-shm")]
            assert all(path.exists() for path in files)
            assert {path.name: oct(path.stat().st_mode & 0o777) for path in files} == {
                path.name: "0o600" for path in files
            }
        existing.touch(mode=0o640)
        existing.chmod(0o640)
        async with convstore.connect(f"sqlite:///{existing}") as store:
            await store.save_snapshot("s1", MESSAGES)
        assert oct(existing.stat().st_mode & 0o777) == "0o640"
    finally:
        os.umask(previous)
