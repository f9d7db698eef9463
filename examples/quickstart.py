"""convstore in one minute: save a conversation, survive a crash, pick up where it stopped.

python examples/quickstart.py [path/to/database.db]
"""

from __future__ import annotations

import asyncio
import sys

import convstore


async def main(url: str) -> None:
    async with convstore.connect(url) as store:
        # An agent talks; after each turn it appends the new messages.
        await store.save_snapshot(
            "support/ticket-42",
            [{"role": "user", "content": "My export keeps failing."}],
            extra={"model": "claude-sonnet", "customer": "acme"},
        )
        count = await store.append_messages(
            "support/ticket-42",
            [{"role": "assistant", "content": "Which format are you exporting to?"}],
        )
        print(f"saved support/ticket-42 with {count} messages")

        # The worker is killed mid-conversation; its supervisor records why.
        await store.mark_interrupted("support/ticket-42", reason="SIGTERM during deploy")

        # After the restart: what was interrupted, newest first?
        for session in await store.list_interrupted_sessions():
            print(
                f"interrupted: {session.session_id} ({session.message_count} messages, "
                f"{session.age_seconds:.3f}s ago, reason: {session.reason})"
            )
            snapshot = await store.restore_snapshot(session.session_id)
            assert snapshot is not None
            print(f"  last message: {snapshot.messages[-1]['content']!r}")
            print(f"  extra state:  {snapshot.extra}")
            # Carrying on with the conversation ends the interruption.
            await store.append_messages(
                session.session_id, [{"role": "user", "content": "CSV, please."}]
            )

        print(f"still interrupted: {len(await store.list_interrupted_sessions())}")
        history = await store.interruptions("support/ticket-42")
        print(f"crash history: {[(h.reason, h.resolved_at is not None) for h in history]}")

        # A clean exit deletes the snapshot; the crash history stays for analysis.
        await store.delete_snapshot("support/ticket-42")
    print(f"database left at {url}")


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "quickstart.db"
    asyncio.run(main(f"sqlite:///{path}"))
