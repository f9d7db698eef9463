"""Fixtures shared by the test suite: a database URL and a store on it, per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import convstore


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of each backend under test."""
    return f"sqlite:///{tmp_path / 'convstore.db'}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[convstore.Store]:
    """A store on a fresh, migrated database."""
    store = await convstore.connect(database_url)
    try:
        yield store
    finally:
        await store.close()
