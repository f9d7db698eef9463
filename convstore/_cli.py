"""The ``convstore`` command: migrations, a look at sessions and retries, import, purge, demo.

Each subcommand is one async function taking the parsed arguments and returning the exit status.
Errors convstore raises on purpose become one line on standard error and exit status 1; usage
errors exit with 2, as argparse does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from convstore import _admin, _demo, _display
from convstore._display import or_dash, table, when
from convstore._engine import resolve_url
from convstore._migrate import check_revision, head_revision
from convstore._store import DEFAULT_MAX_MESSAGES
from convstore._types import utcnow
from convstore.exceptions import ConvstoreError

DEFAULT_URL = "sqlite:///convstore.db"
URL_VARIABLE = "CONVSTORE_DATABASE_URL"
#: Progress is shown on a terminal when an import has at least this many files.
PROGRESS_MIN_FILES = 50

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


# -- arguments ---------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def point_in_time(text: str) -> datetime:
    """A time given as an age (``90s``, ``15m``, ``24h``, ``7d``, ``2w``) or an ISO 8601 time
    (UTC unless it names a zone)."""
    match = _DURATION.fullmatch(text.strip())
    try:
        if match:
            return utcnow() - timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
        value = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        pass
    else:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise argparse.ArgumentTypeError(
        f"expected an age such as 24h or 7d, or an ISO time such as 2026-11-28T08:00, not {text!r}"
    )


def count(text: str, minimum: int = 0) -> int:
    """A whole number of at least `minimum`."""
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, not {text!r}")
    return value


def positive(text: str) -> int:
    """A whole number of at least 1."""
    return count(text, minimum=1)


def database_url(args: argparse.Namespace) -> str:
    """--url, else $CONVSTORE_DATABASE_URL, else a convstore.db file in the current directory."""
    url: str | None = getattr(args, "url", None)
    return url or os.environ.get(URL_VARIABLE) or DEFAULT_URL


def build_parser() -> argparse.ArgumentParser:
    """The command line: global options and one subparser per subcommand."""
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"database URL (default: ${URL_VARIABLE}, else {DEFAULT_URL})",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print one JSON document")
    parser = argparse.ArgumentParser(
        prog="convstore",
        parents=[url],
        description="Manage a convstore database: migrations, sessions, retry statistics, "
        "import of old snapshot files, purging old history, and a demo.",
        epilog="Try `convstore demo` first. Times are shown in UTC.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(
        name: str, handler: Handler, summary: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, parents=[url, *parents], help=summary, description=summary + "."
        )
        sub.set_defaults(handler=handler)
        return sub

    sub = command("upgrade", upgrade, "create the tables or upgrade them to this convstore's")
    sub.add_argument("revision", nargs="?", default="head", help="target (default: head)")
    sub = command("downgrade", downgrade, "downgrade the tables; `base` drops them and their data")
    sub.add_argument("revision", help="target revision, e.g. 0001, -1 or base")
    command("current", current, "print the database's revision")
    command("check", check, "exit with status 1 when the database is behind this convstore")

    sub = command("sessions", list_sessions, "list sessions, most recently saved first", as_json)
    sub.add_argument(
        "--interrupted", action="store_true", help="only interrupted ones, newest first"
    )
    sub.add_argument(
        "--limit", type=count, default=100, metavar="N", help="at most N (default 100; 0: all)"
    )
    sub = command("show", show, "show one session: state, crash history, last messages", as_json)
    sub.add_argument("session_id", metavar="SESSION_ID")
    sub.add_argument(
        "--messages", type=count, default=10, metavar="N", help="the last N messages (default 10)"
    )
    sub = command("stats", stats, "retries per operation and error type, interruptions", as_json)
    sub.add_argument(
        "--since",
        type=point_in_time,
        metavar="WHEN",
        help="only since then: an age (24h, 7d) or an ISO time (default: all history)",
    )
    sub.add_argument("--operation", metavar="NAME", help="only this operation's retries")

    sub = command("import-json", import_json, "import the original module's snapshot files")
    sub.add_argument("directory", type=Path, metavar="DIR", help="folder of <session>.json files")
    sub.add_argument(
        "--max-messages",
        type=positive,
        default=DEFAULT_MAX_MESSAGES,
        metavar="N",
        help=f"keep the newest N messages of each (default {DEFAULT_MAX_MESSAGES})",
    )
    sub = command("purge", purge, "delete old sessions, retry events and resolved interruptions")
    sub.add_argument(
        "--older-than",
        type=point_in_time,
        required=True,
        metavar="AGE",
        help="delete what is older: an age (30d, 12w) or an ISO time",
    )
    sub.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    sub = commands.add_parser(
        "demo",
        help="simulate failing LLM calls, a crash and a recovery, then show them",
        description="Simulate an agent whose LLM calls fail and are retried, crash one session "
        "and recover it, then print the tables. The database is left behind.",
    )
    sub.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="database URL (default: sqlite:///convstore-demo.db; "
        f"${URL_VARIABLE} is ignored, so the demo never writes to your real database)",
    )
    sub.set_defaults(handler=demo)
    return parser


def _version() -> str:
    try:
        return metadata.version("convstore")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return asyncio.run(handler(args))
    except ConvstoreError as exc:
        print(f"convstore: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("convstore: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (say, `| head`) is gone: stop quietly, and keep Python's exit quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def fail(message: str) -> int:
    """Print one error line; exit status 1."""
    print(f"convstore: error: {message}", file=sys.stderr)
    return 1


def plural(n: int, noun: str) -> str:
    """'1 session', '2 sessions', '1,234 sessions'."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _width() -> int | None:
    return _display.terminal_width(sys.stdout)


def _revision(revision: str | None) -> str:
    if revision is None:
        return "none (no convstore tables)"
    return f"{revision} (head)" if revision == head_revision() else revision


# -- migrations --------------------------------------------------------------------------------


async def upgrade(args: argparse.Namespace) -> int:
    """Bring the database to a revision, creating it if needed."""
    return await _migrate(args, "upgrade")


async def downgrade(args: argparse.Namespace) -> int:
    """Take the database back to a revision."""
    return await _migrate(args, "downgrade")


async def _migrate(args: argparse.Namespace, action: Literal["upgrade", "downgrade"]) -> int:
    url = database_url(args)
    # Only an upgrade may create the database: a downgrade of a mistyped path must not.
    engine = _admin.open_engine(url, create=action == "upgrade", single_use=True)
    try:
        before, after = await _admin.migrate(engine, action, args.revision)
    finally:
        await engine.dispose()
    where = _admin.shown(resolve_url(url))
    if before == after:
        print(f"{where} is already at {_revision(after)}")
    else:
        print(f"{action}d {where} from {_revision(before)} to {_revision(after)}")
    return 0


async def current(args: argparse.Namespace) -> int:
    """Print the database's revision."""
    engine = _admin.open_engine(database_url(args), create=False, single_use=True)
    try:
        print(_revision(await _admin.current_revision(engine)))
    finally:
        await engine.dispose()
    return 0


async def check(args: argparse.Namespace) -> int:
    """Exit 0 when the database is at this convstore's revision, 1 when it is behind."""
    engine = _admin.open_engine(database_url(args), create=False, single_use=True)
    try:
        revision = await _admin.current_revision(engine)
    finally:
        await engine.dispose()
    head = head_revision()
    if revision == head:
        print(f"up to date: the database is at {head}, the newest revision this convstore knows")
        return 0
    # A revision this convstore does not know is an error: SchemaError names it.
    check_revision(revision, migrate=True)
    found = "has no convstore tables" if revision is None else f"is at revision {revision}"
    print(f"behind: the database {found}; this convstore needs {head}: run `convstore upgrade`")
    return 1


# -- looking around ----------------------------------------------------------------------------


async def list_sessions(args: argparse.Namespace) -> int:
    """List sessions (or only the interrupted ones), most recent first."""
    limit = args.limit or None
    async with _admin.open_store(database_url(args), migrate=False) as store:
        total = await _admin.count_sessions(store.engine, interrupted=args.interrupted)
        if args.interrupted:
            interrupted = await store.list_interrupted_sessions(limit)
            rows: list[dict[str, Any]] = [asdict(s) for s in interrupted]
            text = _display.interrupted_table(interrupted, _width())
        else:
            now = utcnow()
            found = await _admin.list_sessions(store.engine, limit=limit)
            rows = [{**asdict(s), "status": s.status(now)} for s in found]
            text = sessions_table(found, now)
    if args.json:
        _display.to_json({"total": total, "sessions": rows})
        return 0
    kind = "interrupted sessions" if args.interrupted else "sessions"
    if not rows:
        print(f"no {kind}")
        return 0
    print(text)
    if len(rows) < total:
        print(f"({len(rows)} of {total:,} {kind} shown; --limit 0 shows all)")
    return 0


def sessions_table(found: Sequence[_admin.SessionInfo], now: datetime) -> str:
    """Sessions with their state, as `convstore sessions` shows them."""
    return table(
        ["SESSION", "MESSAGES", "SAVED (UTC)", "STATUS", "TIMES\nINTERRUPTED", "REASON"],
        [
            (
                s.session_id,
                f"{s.message_count:,}",
                when(s.saved_at),
                s.status(now),
                f"{s.interruptions:,}",
                or_dash(s.interrupt_reason),
            )
            for s in found
        ],
        right=[1, 4],
        cut=[0, 5],
        width=_width(),
    )


async def show(args: argparse.Namespace) -> int:
    """Show one session: its state, crash history and newest messages."""
    url = database_url(args)
    async with _admin.open_store(url, migrate=False) as store:
        found = await _admin.list_sessions(store.engine, session_id=args.session_id)
        snapshot = await store.restore_snapshot(args.session_id)
        history = await store.interruptions(args.session_id)
    if not found or snapshot is None:
        where = _admin.shown(resolve_url(url))
        note = (
            f"; its crash history holds {plural(len(history), 'interruption')}" if history else ""
        )
        return fail(f"no session {args.session_id!r} in {where}{note}")
    info = found[0]
    shown = snapshot.messages[len(snapshot.messages) - min(args.messages, len(snapshot.messages)) :]
    first = snapshot.message_count - len(shown)
    if args.json:
        _display.to_json(
            {
                **asdict(info),
                "status": info.status(utcnow()),
                "extra": snapshot.extra,
                "stored_messages": len(snapshot.messages),
                "history": [asdict(h) for h in history],
                "messages": [{"seq": first + n, "message": m} for n, m in enumerate(shown)],
            }
        )
        return 0
    state = info.status(utcnow())
    if info.interrupted_at is not None:
        reason = info.interrupt_reason or "no reason given"
        state += f" at {when(info.interrupted_at)} UTC: {reason}"
    elif info.lease_expires_at is not None:
        state += f" (owner {info.owner}, lease until {when(info.lease_expires_at)})"
    width = _width()
    details = [
        ("session", info.session_id),
        ("status", state),
        ("messages", f"{info.message_count:,} in the conversation, {len(snapshot.messages)} kept"),
        ("created", f"{when(info.created_at)} UTC"),
        ("saved", f"{when(info.saved_at)} UTC"),
        ("extra", json.dumps(snapshot.extra, ensure_ascii=False, default=str)),
    ]
    for key, value in details:
        line = f"{key:<9} {_display.clean(value)}"
        print(line if width is None else _display.truncate(line, width))
    print(f"\nCrash history ({len(history)}):")
    print(_display.history_table(history, width) if history else "  never interrupted")
    if shown:
        print(f"\nLast {len(shown)} of {info.message_count:,} messages:")
        print(
            table(
                ["SEQ", "ROLE", "CONTENT"],
                [(first + n, *message_text(m)) for n, m in enumerate(shown)],
                right=[0],
                cut=[2],
                width=width,
            )
        )
    return 0


def message_text(message: Any) -> tuple[str, str]:
    """A message's role and readable text: its content, or its text blocks, or its JSON."""
    if isinstance(message, dict):
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, str):
            return str(role or "-"), content
        if isinstance(content, list):
            parts = [
                str(b["text"]) if isinstance(b, dict) and "text" in b else _compact(b)
                for b in content
            ]
            return str(role or "-"), " ".join(parts)
        return str(role or "-"), _compact(message)
    return "-", _compact(message)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


async def stats(args: argparse.Namespace) -> int:
    """Print the retry summary per operation and error type, and interruptions per reason."""
    since: datetime | None = args.since
    async with _admin.open_store(database_url(args), migrate=False) as store:
        retries = await store.retry_summary(since=since, operation=args.operation)
        reasons = await _admin.interruptions_by_reason(store.engine, since)
    if args.json:
        _display.to_json(
            {
                "since": since,
                "operation": args.operation,
                "retries": [asdict(r) for r in retries],
                "interruptions": [asdict(r) for r in reasons],
            }
        )
        return 0
    period = "all history" if since is None else f"since {when(since)} UTC"
    width = _width()
    what = "every operation" if args.operation is None else args.operation
    print(f"Retried calls of {what}, {period}:")
    print(_display.retry_table(retries, width) if retries else "  none recorded")
    print(f"\nInterruptions by reason, {period}:")
    if not reasons:
        print("  none recorded")
        return 0
    print(
        table(
            ["REASON", "TIMES", "RESOLVED", "LATEST (UTC)"],
            [
                (
                    r.reason or "(no reason)",
                    f"{r.interruptions:,}",
                    f"{r.resolved:,}",
                    when(r.latest),
                )
                for r in reasons
            ],
            right=[1, 2],
            cut=[0],
            width=width,
        )
    )
    return 0


# -- changing data -----------------------------------------------------------------------------


async def import_json(args: argparse.Namespace) -> int:
    """Import a folder of the original module's snapshot files; 1 if some could not be read."""
    paths = _admin.snapshot_files(args.directory)
    if not paths:
        print(f"nothing to import: no .json files in {args.directory}")
        return 0
    progress = None
    started = time.monotonic()
    if sys.stderr.isatty() and len(paths) >= PROGRESS_MIN_FILES:
        progress = _Progress(len(paths))
    async with _admin.open_store(
        database_url(args), migrate=True, max_messages=args.max_messages
    ) as store:
        report = await _admin.import_files(
            store.engine, paths, max_messages=args.max_messages, progress=progress
        )
    if progress is not None:
        progress.done()
    for name, problem in report.malformed:
        print(f"convstore: skipped {name}: {problem}", file=sys.stderr)
    parts = [
        plural(report.new, "new session"),
        plural(report.updated, "session") + " updated with a newer snapshot",
        plural(report.marked, "interruption") + " added to stored sessions",
        plural(report.unchanged, "file") + " already imported",
        plural(len(report.malformed), "malformed file") + " skipped",
    ]
    done = ", ".join(part for part in parts if not part.startswith("0 "))
    print(f"read {plural(report.files, 'file')} in {time.monotonic() - started:.1f} s: {done}")
    return 1 if report.malformed else 0


class _Progress:
    """'importing 120/5,000 files' on standard error, redrawn at most ten times a second."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.shown_at = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.shown_at >= 0.1 or done == self.total:
            self.shown_at = now
            print(f"\rimporting {done:,}/{self.total:,} files", end="", file=sys.stderr)
            sys.stderr.flush()

    def done(self) -> None:
        print(file=sys.stderr)


async def purge(args: argparse.Namespace) -> int:
    """Delete (or with --dry-run count) what is older than --older-than."""
    cutoff: datetime = args.older_than
    async with _admin.open_store(database_url(args), migrate=False) as store:
        report = await _admin.purge(store.engine, cutoff, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {plural(report.sessions, 'session')} not saved since {when(cutoff)} UTC "
        f"({plural(report.messages, 'message')}), {plural(report.retry_events, 'retry event')} "
        f"and {plural(report.interruptions, 'resolved interruption')} from before then"
    )
    if report.resolved:
        marked = "would be" if args.dry_run else "was" if report.resolved == 1 else "were"
        print(
            f"{plural(report.resolved, 'open interruption')} of those sessions {marked} marked "
            "resolved; they stay in the history"
        )
    if args.dry_run:
        print("dry run: nothing was deleted")
    return 0


async def demo(args: argparse.Namespace) -> int:
    """Run the demo against --url, else convstore-demo.db (never $CONVSTORE_DATABASE_URL)."""
    await _demo.run(getattr(args, "url", None) or _demo.DEFAULT_URL)
    return 0
