"""The package's public surface."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import convstore
import convstore.exceptions


def test_all_is_sorted_and_complete() -> None:
    """`__all__` lists every public name the package exposes, sorted, those of the storage side
    (imported on first use) included."""
    public = {
        name
        for name in dir(convstore)
        if not name.startswith("_") and not inspect.ismodule(getattr(convstore, name))
    }
    assert convstore.__all__ == sorted(convstore.__all__)
    assert set(convstore.__all__) == public


def test_every_exception_is_exported_and_rooted() -> None:
    """Every exception class in convstore.exceptions is exported and derives from ConvstoreError."""
    for name in convstore.exceptions.__all__:
        cls = getattr(convstore.exceptions, name)
        assert issubclass(cls, convstore.ConvstoreError)
        assert getattr(convstore, name) is cls
    assert issubclass(convstore.InvalidSessionId, ValueError)
    assert issubclass(convstore.InvalidArgument, ValueError)


def test_package_is_typed() -> None:
    """The package ships a py.typed marker."""
    assert (Path(convstore.__file__).parent / "py.typed").is_file()


def test_import_convstore_imports_no_storage_library() -> None:
    """`import convstore` leaves SQLAlchemy, alembic and the drivers unimported: code that only
    classifies and retries starts fast. `convstore.connect` brings the storage side in, and
    `convstore.build_report` still not plotly, which only drawing a page imports."""
    code = (
        "import sys, convstore\n"
        "heavy = ('sqlalchemy', 'alembic', 'aiosqlite', 'asyncpg', 'orjson', 'plotly')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
        "convstore.connect\n"
        "print('sqlalchemy' in sys.modules)\n"
        "convstore.build_report\n"
        "print('plotly' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split("\n")[:3] == ["[]", "True", "False"]


def test_a_misspelt_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Stor'"):
        convstore.Stor  # noqa: B018
