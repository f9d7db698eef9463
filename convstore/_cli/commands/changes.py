"""`import-json`, `purge` and `demo`: the commands that change the database."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from convstore._cli import demo as demo_run
from convstore._cli.admin import database, importing
from convstore._cli.admin import purge as purging
from convstore._cli.arguments import database_schema, database_url
from convstore._cli.display import plural, when

#: Progress is shown on a terminal when an import has at least this many files.
PROGRESS_MIN_FILES = 50


async def import_json(args: argparse.Namespace) -> int:
    """Import a folder of snapshot files (one JSON file per session); 1 if some were unreadable."""
    paths = importing.snapshot_files(args.directory)
    if not paths:
        print(f"nothing to import: no .json files in {args.directory}")
        return 0
    progress = None
    started = time.monotonic()
    if sys.stderr.isatty() and len(paths) >= PROGRESS_MIN_FILES:
        progress = _Progress(len(paths))
    async with database.open_store(
        database_url(args),
        migrate=True,
        max_messages=args.max_messages,
        schema=database_schema(args),
    ) as store:
        report = await importing.import_files(
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
    async with database.open_store(
        database_url(args), migrate=False, schema=database_schema(args)
    ) as store:
        report = await purging.purge(store.engine, cutoff, dry_run=args.dry_run)
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
    """Run the demo against --url, else convstore-demo.db (never $CONVSTORE_DATABASE_URL), in
    --schema on PostgreSQL (never $CONVSTORE_SCHEMA)."""
    await demo_run.run(
        getattr(args, "url", None) or demo_run.DEFAULT_URL, getattr(args, "schema", None)
    )
    return 0
