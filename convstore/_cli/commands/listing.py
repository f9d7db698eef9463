"""`sessions`: the listing, with `--interrupted` answered from a SQLite file by the stdlib alone
when the file is at this convstore's revision (`sqlite.quick`), so that the command starts fast."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from convstore._cli import display
from convstore._cli.arguments import database_url
from convstore._cli.display import screen_width
from convstore._storage.sqlite import quick
from convstore._storage.times import utcnow


async def list_sessions(args: argparse.Namespace) -> int:
    """List sessions (or only the interrupted ones), most recent first."""
    if args.interrupted:
        with quick.current(database_url(args)) as conn:
            if conn is not None:
                total, found = quick.interrupted_sessions(conn, args.limit or None, utcnow())
                rows = [asdict(s) for s in found]
                return show(args, total, rows, display.interrupted_table(found, screen_width()))
    from convstore._cli.commands import browse

    return await browse.list_sessions(args)


def show(args: argparse.Namespace, total: int, rows: list[dict[str, Any]], text: str) -> int:
    """Print a listing of `total` sessions, of which `rows` (as `text`), or the JSON of it."""
    if args.json:
        display.to_json({"total": total, "sessions": rows})
        return 0
    kind = "interrupted sessions" if args.interrupted else "sessions"
    if not rows:
        print(f"no {kind}")
        return 0
    print(text)
    if len(rows) < total:
        print(f"({len(rows)} of {total:,} {kind} shown; --limit 0 shows all)")
    return 0
