"""The package's public surface."""

from __future__ import annotations

import inspect
from pathlib import Path

import convstore
import convstore.exceptions


def test_all_is_sorted_and_complete() -> None:
    """`__all__` lists every public name the package exposes, sorted."""
    public = {
        name
        for name, value in vars(convstore).items()
        if not name.startswith("_") and not inspect.ismodule(value)
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
