"""The package's layout keeps its promises: dependencies point one way, modules stay small."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "convstore"

#: The most lines a module may have, and a function (its signature and docstring included).
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: The storage side's libraries (the database drivers, SQLAlchemy, alembic and the codec's
#: orjson), which only storage, and the command line's queries over its tables, may import.
STORAGE_LIBRARIES = ("sqlalchemy", "alembic", "aiosqlite", "asyncpg", "orjson")


def module_name(path: Path) -> str:
    """``convstore._retry.executor`` for ``convstore/_retry/executor.py``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(module: str) -> set[str]:
    """Every module `module` imports (absolutely, as convstore always does), at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{module} uses a relative import"
            found.add(node.module)
            # `from convstore._storage import codec` imports the module convstore._storage.codec.
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if f"{node.module}.{alias.name}" in MODULES
            )
    return found


def reached(module: str) -> set[str]:
    """The convstore modules `module` imports, directly or through others (package
    ``__init__`` files are not followed: they only hold docstrings, but ``convstore``'s)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in imports(todo.pop()):
            if name in MODULES and name not in seen and name != "convstore":
                seen.add(name)
                todo.append(name)
    return seen


def storage_libraries(modules: set[str]) -> set[str]:
    """The storage libraries that `modules` import."""
    return {
        name.split(".")[0]
        for module in modules
        for name in imports(module)
        if name.split(".")[0] in STORAGE_LIBRARIES
    }


def in_folder(folder: str) -> list[str]:
    return [name for name in MODULES if name.startswith(f"convstore.{folder}")]


@pytest.mark.parametrize("module", in_folder("_retry"))
def test_the_retry_side_imports_no_storage_and_no_database_library(module: str) -> None:
    """A module of the retry side reaches neither storage, nor the CLI, nor a database library."""
    closure = reached(module) | {module}
    assert not {m for m in closure if m.startswith(("convstore._storage", "convstore._cli"))}
    assert not storage_libraries(closure)


@pytest.mark.parametrize("module", in_folder("_conversation"))
def test_conversations_are_pure(module: str) -> None:
    """Formats, the cap's window, checks and repairs read messages only: no storage, no retry
    side, no command line, no database library."""
    closure = reached(module) | {module}
    sides = ("convstore._storage", "convstore._retry", "convstore._cli")
    assert not {m for m in closure if m.startswith(sides)}
    assert not storage_libraries(closure)


@pytest.mark.parametrize("module", ["convstore._records", "convstore._validate"])
def test_shared_records_and_checks_import_neither_side(module: str) -> None:
    """The records and checks both sides share depend on nothing but the exceptions."""
    assert reached(module) <= {"convstore.exceptions"}
    assert not storage_libraries({module})


@pytest.mark.parametrize("module", in_folder("_storage"))
def test_storage_does_not_reach_the_command_line(module: str) -> None:
    """The storage side never imports the command line, which is built on top of it."""
    assert not {m for m in reached(module) if m.startswith("convstore._cli")}


def test_only_the_storage_side_imports_storage_libraries() -> None:
    """Outside `_storage`, only the command line's admin queries import a storage library."""
    direct = {
        module
        for module in MODULES
        if storage_libraries({module}) and not module.startswith("convstore._storage")
    }
    # The command line's admin operations are SQLAlchemy queries over storage's tables.
    assert {m for m in direct if not m.startswith("convstore._cli.admin")} == set()


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_stay_small(module: str) -> None:
    """No module is longer than 400 lines, and no function longer than 60."""
    text = MODULES[module].read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    long = {
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in functions(ast.parse(text))
        if node.end_lineno is not None and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert not long


#: The agent frameworks, retry libraries and SDKs, which only integration modules may import.
FRAMEWORKS = (
    *("agents", "openai", "langgraph", "langchain_core", "pydantic_ai", "pydantic"),
    *("tenacity", "stamina", "anthropic", "google"),
)


def test_only_the_integrations_import_a_framework() -> None:
    """Storage, retries, conversations and the command line never import an agent framework."""
    direct = {
        module
        for module in MODULES
        if any(name.split(".")[0] in FRAMEWORKS for name in imports(module))
    }
    assert {m for m in direct if not m.startswith("convstore.integrations.")} == set()


#: The plotting library, which only the report may import.
PLOTTING = ("plotly",)


def test_only_the_report_imports_the_plotting_library() -> None:
    """plotly is imported by the report's modules and by no other."""
    direct = {
        module
        for module in MODULES
        if any(name.split(".")[0] in PLOTTING for name in imports(module))
    }
    assert direct
    assert {m for m in direct if not m.startswith("convstore._report")} == set()


@pytest.mark.parametrize("module", in_folder("_report"))
def test_the_report_reads_storage_through_its_queries(module: str) -> None:
    """The report reaches storage's aggregate queries but imports no storage library itself,
    and never the command line, which is built on top of it."""
    assert not {m for m in reached(module) if m.startswith("convstore._cli")}
    assert not storage_libraries({module})
