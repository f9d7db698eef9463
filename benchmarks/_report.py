"""Measured figures, how they are timed, and the Markdown table they are printed as."""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured figure, its baseline, and the target it is held to (None: for reference)."""

    workload: str
    measure: str
    convstore: float
    baseline: float
    target: str
    limit: float | None
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        return self.convstore / self.baseline

    @property
    def ok(self) -> bool:
        if self.limit is None:
            return True
        return self.ratio >= self.limit if self.higher_is_better else self.ratio <= self.limit


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """What `fn` returns, awaited when it is a coroutine: lower bounds are sync or async."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def timed(fn: Callable[..., Any], *args: Any) -> float:
    """Seconds one call takes, awaited if it is asynchronous."""
    start = time.perf_counter()
    await call(fn, *args)
    return time.perf_counter() - start


def report(figures: list[Figure]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| workload | measure | convstore | baseline | ratio | target | |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        status = "" if f.limit is None else "ok" if f.ok else "MISSED"
        lines.append(
            f"| {f.workload} | {f.measure} | {f.convstore:.3f} | {f.baseline:.3f} | "
            f"{f.ratio:.2f}x | {f.target} | {status} |"
        )
    return "\n".join(lines)
