"""`report`: the retry and crash history as one HTML page."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from convstore._cli.admin import database
from convstore._cli.arguments import database_schema, database_url
from convstore._cli.display import fail
from convstore._report.page import build_report


async def report(args: argparse.Namespace) -> int:
    """Write the report page to the file -o names (or to the standard output for -)."""
    output: Path = args.output
    async with database.open_store(
        database_url(args), migrate=False, schema=database_schema(args)
    ) as store:
        page = await build_report(store, since=args.since, operation=args.operation)
    if str(output) == "-":
        sys.stdout.write(page)
        return 0
    try:
        await asyncio.to_thread(output.write_text, page, encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot write the report to {str(output)!r}: {exc.strerror or exc}")
    size = len(page.encode("utf-8"))
    print(f"wrote {output} ({size / 1e6:.1f} MB); open it in a browser, it needs no network")
    return 0
