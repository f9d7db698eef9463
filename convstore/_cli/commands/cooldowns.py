"""`cooldowns`: the rate limits every worker on the database is waiting out, or pacing, now."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from convstore._cli import display
from convstore._cli.admin import database
from convstore._cli.arguments import database_schema, database_url
from convstore._cli.display import or_dash, screen_width, table, when
from convstore._storage.types import utcnow


async def cooldowns(args: argparse.Namespace) -> int:
    """List the keys cooling down or paced now, the cooldown ending last first."""
    async with database.open_store(
        database_url(args), migrate=False, schema=database_schema(args)
    ) as store:
        now = utcnow()
        active = await store.cooldowns(args.limit or None)
    if args.json:
        display.to_json(
            {
                "now": now,
                "cooldowns": [
                    {**asdict(c), "remaining_s": (c.until - now).total_seconds()} for c in active
                ],
            }
        )
        return 0
    if not active:
        print("no rate limit is cooling down")
        return 0
    print(
        table(
            ["LIMIT KEY", "UNTIL (UTC)", "LEFT (S)", "PACED EVERY", "SET BY", "REASON"],
            [
                (
                    c.limit_key,
                    when(c.until),
                    display.seconds(max((c.until - now).total_seconds(), 0.0)),
                    "-" if c.interval_s is None else f"{c.interval_s * 1000:.0f} ms",
                    c.operation,
                    or_dash(c.reason),
                )
                for c in active
            ],
            right=[2, 3],
            cut=[0, 4, 5],
            width=screen_width(),
        )
    )
    return 0
