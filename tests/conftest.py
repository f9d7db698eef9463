"""Fixtures shared by the test suite: a database URL and a store on it, per backend.

The PostgreSQL leg runs when CONVSTORE_TEST_POSTGRES_URL names a server (a URL whose user may
create databases); every test then gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import convstore

POSTGRES_URL = os.environ.get("CONVSTORE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"]


async def _admin(statement: str) -> None:
    import asyncpg

    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port,
        database=url.database,
        timeout=10,
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL tests run when CONVSTORE_TEST_POSTGRES_URL is set, "
            "e.g. postgresql://postgres@127.0.0.1:5432/test"
        )
    name = f"convstore_test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each backend under test."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of each backend under test."""
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'convstore.db'}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[convstore.Store]:
    """A store on a fresh, migrated database."""
    store = await convstore.connect(database_url)
    try:
        yield store
    finally:
        await store.close()
