"""Session leases: a running session's owner renews a heartbeat, so that its death is noticed.

A process killed with SIGKILL, or a machine that loses power, cannot mark its sessions
interrupted. Instead, `Store.running` marks a session as running under an owner whose lease a
background task renews; `Store.recover_abandoned` marks every session whose lease expired.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from convstore._retry.redact import redact
from convstore._storage.repository import Repository
from convstore._storage.types import utcnow
from convstore._validate import real_number, storable
from convstore.exceptions import ConvstoreError, InvalidArgument

logger = logging.getLogger("convstore")

#: The shortest lease accepted: renewals every third of it must stay well above a round trip.
MIN_LEASE_S = 0.1


@dataclass
class Lease:
    """A session running under an owner, as handed out by `Store.running`."""

    session_id: str
    owner: str
    #: When the lease runs out unless renewed; the heartbeat moves it forward.
    expires_at: datetime
    #: True once the lease is found gone (another process recovered the session as abandoned,
    #: or took it over after that): the work may go on, but the session is no longer this
    #: owner's, and the end of the block changes nothing of its new holder's.
    lost: bool = False


def default_owner() -> str:
    """An owner token naming this host and process, unique per call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def running(
    repository: Repository, session_id: str, owner: str | None, lease_s: float
) -> AsyncIterator[Lease]:
    """Hold a renewed lease on the session for the block; see `Store.running`."""
    lease_s = real_number("lease_s", lease_s, minimum=MIN_LEASE_S)
    if owner is not None and (not isinstance(owner, str) or not owner):
        raise InvalidArgument(f"owner must be a non-empty str or None, not {owner!r}")
    owner = default_owner() if owner is None else storable(owner)
    lease = Lease(session_id, owner, utcnow() + timedelta(seconds=lease_s))
    await repository.take_lease(session_id, lease.owner, lease.expires_at, utcnow())
    heartbeat = asyncio.create_task(_renew(repository, lease, lease_s))
    try:
        yield lease
    finally:
        heartbeat.cancel()
        with suppress(asyncio.CancelledError):
            await heartbeat
        # Read in `finally` rather than caught: the block's exception, whatever it is, goes on.
        error = sys.exc_info()[1]
        reason = None if error is None else reason_of(error)
        if not await repository.end_lease(session_id, lease.owner, reason, utcnow()):
            _lost(lease)


def _lost(lease: Lease) -> None:
    """Note, once, that another owner took the session over while this one ran it."""
    if not lease.lost:
        lease.lost = True
        logger.error(
            "the lease on session %r was lost: it was recovered as abandoned or taken over, "
            "and is left as its new holder has it",
            lease.session_id,
        )


async def _renew(repository: Repository, lease: Lease, lease_s: float) -> None:
    """Move the lease forward every third of its length until cancelled."""
    while True:
        await asyncio.sleep(lease_s / 3)
        expires_at = utcnow() + timedelta(seconds=lease_s)
        try:
            held = await repository.renew_lease(lease.session_id, lease.owner, expires_at)
        except ConvstoreError:
            logger.warning("could not renew the lease on %r", lease.session_id, exc_info=True)
            continue
        if not held:
            _lost(lease)
            return
        lease.expires_at = expires_at


def reason_of(error: BaseException) -> str:
    """The interruption reason for an exception: its class and message, without secrets."""
    kind = f"{type(error).__module__}.{type(error).__qualname__}"
    try:
        text = redact(str(error))
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the block's own error
        text = ""
    reason = f"{kind}: {text}" if text else kind
    return storable(reason)[:2000]
