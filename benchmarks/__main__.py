"""Measure convstore against lower bounds written in the benchmark itself, and print the ratios.

python -m benchmarks            # SQLite, the full workloads, about a minute
python -m benchmarks --quick    # a tenth of the work, to try it out
python -m benchmarks --check    # exit 1 when a target is missed
python -m benchmarks --postgres-url postgresql://user@host/db   # PostgreSQL too
python -m benchmarks --langgraph  # ConvstoreSaver against AsyncSqliteSaver instead, two minutes
python -m benchmarks --cooldowns  # shared cooldowns against a rate-limited server instead
python -m benchmarks --scale      # a million sessions and attempts instead, about 20 minutes
python -m benchmarks --report-page  # the report page on 1,000,000 retry events instead
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from benchmarks import _sqlite
from benchmarks._report import Figure, report

POSTGRES_URL_VARIABLE = "CONVSTORE_BENCH_POSTGRES_URL"


async def main(
    scale: float, postgres_url: str | None, langgraph: bool = False
) -> tuple[list[Figure], list[str]]:
    if langgraph:
        from benchmarks import _langgraph  # needs the langgraph extra and checkpoint-sqlite

        lg_figures, lg_note = await _langgraph.run(scale)
        return lg_figures, [lg_note]
    figures = await _sqlite.run(scale)
    notes = [_sqlite.NOTE]
    if postgres_url:
        from benchmarks import _postgres  # asyncpg is an optional extra

        pg_figures, pg_notes = await _postgres.run(postgres_url, scale)
        figures += pg_figures
        notes += pg_notes
    return figures, notes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="run a tenth of each workload")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_URL_VARIABLE),
        help="also run on PostgreSQL, in fresh databases created (and dropped) on this server; "
        f"default: ${POSTGRES_URL_VARIABLE}",
    )
    parser.add_argument(
        "--cooldowns",
        action="store_true",
        help="measure shared cooldowns against a rate-limited local server instead "
        "(8 worker processes; on PostgreSQL too with --postgres-url)",
    )
    parser.add_argument(
        "--langgraph",
        action="store_true",
        help="measure the LangGraph checkpointer against AsyncSqliteSaver instead",
    )
    parser.add_argument(
        "--scale",
        nargs="?",
        const=1.0,
        type=float,
        metavar="FACTOR",
        help="measure at scale instead: 1,000,000 sessions x 10 messages and 1,000,000 "
        "attempts, times FACTOR (default 1)",
    )
    parser.add_argument(
        "--report-page",
        action="store_true",
        help="measure building the report page on 1,000,000 retry events instead "
        "(on PostgreSQL too with --postgres-url)",
    )
    args = parser.parse_args()
    if args.scale is not None:
        from benchmarks import _scale

        results, notes = asyncio.run(_scale.run(args.scale, args.postgres_url))
    elif args.report_page:
        from benchmarks import _report_page

        results, notes = _report_page.run_all(args.postgres_url)
    elif args.cooldowns:
        from benchmarks import _cooldowns

        results, notes = _cooldowns.run_all(args.postgres_url)
    else:
        results, notes = asyncio.run(
            main(0.1 if args.quick else 1.0, args.postgres_url, args.langgraph)
        )
    print(report(results))
    print()
    print("\n".join(f"- {note}" for note in notes))
    if args.check and not all(f.ok for f in results):
        sys.exit(1)
