"""The documentation cannot rot: every Python example runs, and the docs site builds cleanly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_examples import CodeExample, EvalExample, find_examples

ROOT = Path(__file__).resolve().parent.parent
#: Every Python example but those of docs/sdks.md, which test_sdk_retries runs against a server.
EXAMPLES = [
    example
    for example in find_examples(ROOT / "README.md", ROOT / "docs")
    if example.prefix_tags() & {"py", "python"} and example.path.name != "sdks.md"
]
_real_sleep = asyncio.sleep


async def no_wait(delay: float, result: object = None) -> object:
    """asyncio.sleep without the wait: the examples' back-offs of seconds take no time here."""
    return await _real_sleep(0, result)


def test_the_readme_and_the_docs_have_examples() -> None:
    """The README shows the store and retries, and every docs page with code has its examples."""
    readme = [e for e in EXAMPLES if e.path.name == "README.md"]
    assert any("save_snapshot" in e.source for e in readme)
    assert any("convstore.retry" in e.source for e in readme)
    assert {e.path.name for e in EXAMPLES} >= {"store.md", "retries.md", "postgresql.md"}


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_runs(
    example: CodeExample,
    eval_example: EvalExample,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """The example is formatted as the code is, and runs as written, in a fresh directory."""
    eval_example.set_config(line_length=100, ruff_select=["E", "F", "W", "I", "B", "UP"])
    eval_example.lint_ruff(example)
    monkeypatch.chdir(tmp_path)
    if "postgresql://" in example.source:
        monkeypatch.setenv("CONVSTORE_DATABASE_URL", request.getfixturevalue("postgres_url"))
    if "retry" in example.source.lower():
        monkeypatch.setattr(asyncio, "sleep", no_wait)
    eval_example.run(example)


def test_the_docs_site_builds_without_a_warning(tmp_path: Path) -> None:
    """`mkdocs build --strict` passes: no broken link, anchor or page left out of the nav."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "index.html").is_file()
