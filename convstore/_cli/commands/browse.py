"""`sessions`, `show` and `stats`: looking at what the database holds."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from convstore._cli import display
from convstore._cli.admin import database, listings
from convstore._cli.arguments import database_schema, database_url
from convstore._cli.commands import listing
from convstore._cli.display import fail, or_dash, plural, screen_width, table, when
from convstore._conversation.check import check_conversation
from convstore._records import Interruption, Snapshot
from convstore._storage.engine import resolve_url
from convstore._storage.types import utcnow


async def list_sessions(args: argparse.Namespace) -> int:
    """List sessions (or only the interrupted ones), most recent first."""
    limit = args.limit or None
    async with database.open_store(
        database_url(args), migrate=False, schema=database_schema(args)
    ) as store:
        total = await listings.count_sessions(store.engine, interrupted=args.interrupted)
        if args.interrupted:
            interrupted = await store.list_interrupted_sessions(limit)
            rows: list[dict[str, Any]] = [asdict(s) for s in interrupted]
            text = display.interrupted_table(interrupted, screen_width())
        else:
            now = utcnow()
            found = await listings.list_sessions(store.engine, limit=limit)
            rows = [{**asdict(s), "status": s.status(now)} for s in found]
            text = sessions_table(found, now)
    return listing.show(args, total, rows, text)


def sessions_table(found: Sequence[listings.SessionInfo], now: datetime) -> str:
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
        width=screen_width(),
    )


async def show(args: argparse.Namespace) -> int:
    """Show one session: its state, crash history and newest messages."""
    url = database_url(args)
    async with database.open_store(url, migrate=False, schema=database_schema(args)) as store:
        found = await listings.list_sessions(store.engine, session_id=args.session_id)
        snapshot = await store.restore_snapshot(args.session_id)
        history = await store.interruptions(args.session_id)
        positions = await listings.message_positions(store.engine, args.session_id)
    if not found or snapshot is None:
        where = database.display_url(resolve_url(url))
        note = (
            f"; its crash history holds {plural(len(history), 'interruption')}" if history else ""
        )
        return fail(f"no session {args.session_id!r} in {where}{note}")
    info = found[0]
    if len(positions) != len(snapshot.messages):  # written to in between: count from the end
        first = snapshot.message_count - len(snapshot.messages)
        positions = list(range(first, snapshot.message_count))
    shown = snapshot.messages[max(len(snapshot.messages) - args.messages, 0) :]
    shown_at = positions[len(positions) - len(shown) :]
    if args.json:
        display.to_json(
            {
                **asdict(info),
                "status": info.status(utcnow()),
                "extra": snapshot.extra,
                "stored_messages": len(snapshot.messages),
                "history": [asdict(h) for h in history],
                "problems": [
                    {**asdict(p), "position": positions[p.position]}
                    for p in check_conversation(snapshot.messages)
                ],
                "messages": [
                    {"seq": seq, "message": m} for seq, m in zip(shown_at, shown, strict=True)
                ],
            }
        )
    else:
        _print_session(info, snapshot, history, positions, len(shown))
    return 0


def _print_session(
    info: listings.SessionInfo,
    snapshot: Snapshot,
    history: Sequence[Interruption],
    positions: Sequence[int],
    shown: int,
) -> None:
    """`show` for a person: the session's details, its crash history, its newest messages."""
    state = info.status(utcnow())
    if info.interrupted_at is not None:
        reason = info.interrupt_reason or "no reason given"
        state += f" at {when(info.interrupted_at)} UTC: {reason}"
    elif info.lease_expires_at is not None:
        state += f" (owner {info.owner}, lease until {when(info.lease_expires_at)})"
    width = screen_width()
    details = [
        ("session", info.session_id),
        ("status", state),
        ("messages", f"{info.message_count:,} in the conversation, {len(snapshot.messages)} kept"),
        ("created", f"{when(info.created_at)} UTC"),
        ("saved", f"{when(info.saved_at)} UTC"),
        ("extra", json.dumps(snapshot.extra, ensure_ascii=False, default=str)),
        ("provider", _acceptance(snapshot, positions)),
    ]
    for key, value in details:
        line = f"{key:<9} {display.clean(value)}"
        print(line if width is None else display.fit(line, width))
    print(f"\nCrash history ({len(history)}):")
    print(display.history_table(history, width) if history else "  never interrupted")
    if shown:
        rows = list(zip(positions, snapshot.messages, strict=True))[-shown:]
        print(f"\nLast {shown} of {info.message_count:,} messages:")
        print(
            table(
                ["SEQ", "ROLE", "CONTENT"],
                [(seq, *message_text(m)) for seq, m in rows],
                right=[0],
                cut=[2],
                width=width,
            )
        )


def _acceptance(snapshot: Snapshot, positions: Sequence[int]) -> str:
    """Whether the stored conversation can be sent as it is, and if not, why."""
    problems = check_conversation(snapshot.messages)
    if not problems:
        return "accepts the conversation as stored"
    found = ", ".join(
        f"{p.kind.replace('_', ' ')}"
        + (f" {p.call_id}" if p.call_id else "")
        + f" (message {positions[p.position]})"
        for p in problems[:5]
    )
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    return f"would refuse it: {found}{more}; Store.resume() repairs it"


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
    async with database.open_store(
        database_url(args), migrate=False, schema=database_schema(args)
    ) as store:
        retries = await store.retry_summary(since=since, operation=args.operation)
        reasons = await listings.interruptions_by_reason(store.engine, since)
    if args.json:
        display.to_json(
            {
                "since": since,
                "operation": args.operation,
                "retries": [asdict(r) for r in retries],
                "interruptions": [asdict(r) for r in reasons],
            }
        )
        return 0
    period = "all history" if since is None else f"since {when(since)} UTC"
    width = screen_width()
    what = "every operation" if args.operation is None else args.operation
    print(f"Retried calls of {what}, {period}:")
    print(display.retry_table(retries, width) if retries else "  none recorded")
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
