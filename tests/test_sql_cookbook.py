"""The SQL cookbook of the docs runs against a populated database, so it cannot rot."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from factories import rate_limited_attempt

import convstore

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: (dialect, SQL) of every SQL block of the docs: `sql` blocks are for both backends.
SQL_BLOCKS = [
    block
    for page in sorted(DOCS.glob("*.md"))
    for block in re.findall(
        r"```(sql|sqlite|postgresql)\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL
    )
]


def statements(block: str) -> list[str]:
    """The statements of one SQL block, without comments."""
    lines = [line for line in block.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@pytest.fixture
async def store(database_url: str, backend: str) -> AsyncIterator[convstore.Store]:
    """A store on a fresh database; on PostgreSQL in the schema `convstore`, which the queries
    reach by its name or, unqualified, through the store's connections' search_path."""
    schema = "convstore" if backend == "postgresql" else None
    async with convstore.connect(database_url, schema=schema) as store:
        yield store


@pytest.fixture
async def populated(store: convstore.Store) -> convstore.Store:
    """A store with conversations, crashes, recoveries and a retry history."""
    await store.save_snapshot(
        "s1", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    )
    await store.save_snapshot("s2", [{"role": "user", "content": "export"}])
    await store.mark_interrupted("s1", reason="SIGTERM")
    await store.mark_interrupted("s2", reason="OOM")
    await store.append_messages("s1", [{"role": "user", "content": "back"}])
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    await store.save_snapshot(
        "s3", [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call]}]
    )
    await store.mark_interrupted("s3", reason="SIGKILL")
    await store.resume("s3")
    for entry in [
        rate_limited_attempt("a", 1, "retry", delay_s=5.0, retry_after_s=5.0),
        rate_limited_attempt(
            "a", 2, "success", error_type=None, error_class=None, status_code=None
        ),
        rate_limited_attempt("b", 1, "retry", delay_s=2.0),
        rate_limited_attempt("b", 2, "retry", delay_s=4.0),
        rate_limited_attempt("b", 3, "giveup"),
    ]:
        await store.record_attempt(entry)
    return store


def test_the_docs_have_a_cookbook_for_both_backends() -> None:
    """The docs give at least five queries over the history, each runnable on both backends."""
    for backend in ("sqlite", "postgresql"):
        blocks = [sql for dialect, sql in SQL_BLOCKS if dialect in ("sql", backend)]
        assert len(blocks) >= 5
        text = " ".join(blocks)
        assert "retry_events" in text
        assert "interruptions" in text


#: Each block on each backend whose dialect it is written in.
CASES = [
    pytest.param(backend, block, id=f"{backend}-block{number}")
    for backend in ("sqlite", "postgresql")
    for number, (dialect, block) in enumerate(SQL_BLOCKS)
    if dialect in ("sql", backend)
]


@pytest.mark.parametrize(("backend", "block"), CASES, indirect=["backend"])
async def test_readme_query_runs_and_finds_rows(populated: convstore.Store, block: str) -> None:
    """Each SQL block of the cookbook runs and returns rows on a populated database."""
    async with populated.engine.connect() as conn:
        for statement in statements(block):
            rows = (await conn.exec_driver_sql(statement)).all()
            assert rows, statement
