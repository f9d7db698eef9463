"""Shared cooldowns against a rate-limited server: 8 worker processes, 25 calls each, one key.

A server on 127.0.0.1 enforces a token bucket (20 requests/s, a burst of 5) and answers 429 with
``retry-after-ms`` and ``Retry-After`` when it is exceeded; each request takes 20 ms, a fast
endpoint. The same run measures (a) convstore's executor with shared cooldowns, (b) the same
executor without them (each worker for itself, as before cooldowns), (c) tenacity with
``wait_random_exponential``: the 429s the server sent, the wall time, and the p95 time per call.
(a) and (b) use the same classifier, whose rule for 429 waits from 50 ms; (c) waits from 50 ms.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx
import tenacity

import convstore
from benchmarks._report import Figure, median_ms, timed

WORKERS = 8
CALLS = 25
RATE = 20.0
BURST = 5.0
LATENCY_S = 0.02
VARIANTS = ("shared cooldowns", "executor alone", "tenacity")
TUNED = True


class _Bucket:
    """A token bucket, and the count of the requests it let through and refused."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens = BURST
        self.stamp = time.monotonic()
        self.passed = 0
        self.refused = 0

    def take(self) -> float | None:
        """None if a token was taken, else the seconds until one is there."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(BURST, self.tokens + (now - self.stamp) * RATE)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                self.passed += 1
                return None
            self.refused += 1
            return (1 - self.tokens) / RATE


def _handler(bucket: _Bucket) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            time.sleep(LATENCY_S)
            wait = bucket.take()
            self.send_response(200 if wait is None else 429)
            if wait is not None:
                self.send_header("retry-after-ms", str(math.ceil(wait * 1000)))
                self.send_header("retry-after", str(math.ceil(wait)))
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _classifier() -> convstore.ErrorClassifier:
    rule = convstore.ErrorRule(
        convstore.ErrorType.RETRYABLE,
        status=429,
        backoff=convstore.BackoffConfig(50, 2000, 2.0, 0.5, 20),
        cooldown=True,
        name="bench 429",
    )
    return convstore.ErrorClassifier(rules=[rule])


async def _calls(variant: str, server: str, database_url: str) -> tuple[list[float], int]:
    """One worker: its calls' durations, and how many failed."""
    durations: list[float] = []
    failed = 0
    async with (
        httpx.AsyncClient(base_url=server) as client,
        convstore.connect(database_url, migrate=False) as store,
    ):

        async def call() -> None:
            response = await client.post("/v1/chat", json={})
            response.raise_for_status()

        if variant == "tenacity":
            run: Any = tenacity.AsyncRetrying(
                wait=tenacity.wait_random_exponential(multiplier=0.05, max=2),
                stop=tenacity.stop_after_attempt(21),
                retry=tenacity.retry_if_exception_type(httpx.HTTPStatusError),
                reraise=True,
            )
        else:
            run = convstore.RetryExecutor(
                _classifier() if TUNED else None,
                store=store,
                operation="bench.chat",
                shared_cooldowns=variant == "shared cooldowns",
            ).execute_with_retry
        for _ in range(CALLS):
            started = time.perf_counter()
            try:
                await run(call)
            except httpx.HTTPError:
                failed += 1
            durations.append(time.perf_counter() - started)
    return durations, failed


def _worker(
    variant: str, server: str, database_url: str, start_at: float
) -> tuple[list[float], int]:
    time.sleep(max(0.0, start_at - time.time()))
    return asyncio.run(_calls(variant, server, database_url))


@dataclass(frozen=True)
class Outcome:
    """One variant's run."""

    refused: int
    wall_s: float
    p95_s: float
    failed: int


def _run_variant(variant: str, database_url: str) -> Outcome:
    bucket = _Bucket()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(bucket))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with ProcessPoolExecutor(WORKERS, mp_context=get_context("spawn")) as pool:
            # Started ahead, so that every worker has imported and connected when the clock starts.
            start_at = time.time() + 3.0
            futures = [
                pool.submit(_worker, variant, url, database_url, start_at) for _ in range(WORKERS)
            ]
            results = [future.result() for future in futures]
        wall = max(0.0, time.time() - start_at)
    finally:
        server.shutdown()
        server.server_close()
    durations = sorted(d for worker, _ in results for d in worker)
    p95 = statistics.quantiles(durations, n=20)[-1]
    return Outcome(bucket.refused, wall, p95, sum(failed for _, failed in results))


async def _prepare(database_url: str) -> None:
    async with convstore.connect(database_url):
        pass


async def _idle_cost_ms(database_url: str, calls: int = 2000) -> tuple[float, float]:
    """Median ms of a successful call through an executor with a store, with shared cooldowns
    (an idle key: the cached check) and without."""

    async def ok() -> str:
        return "ok"

    async with convstore.connect(database_url, migrate=False) as store:
        shared = convstore.RetryExecutor(store=store, operation="bench.idle")
        alone = convstore.RetryExecutor(store=store, operation="bench.idle", shared_cooldowns=False)
        with_check: list[float] = []
        without: list[float] = []
        for _ in range(calls // 100):
            with_check += [await timed(shared.execute_with_retry, ok) for _ in range(100)]
            without += [await timed(alone.execute_with_retry, ok) for _ in range(100)]
    return median_ms(with_check), median_ms(without)


def run(database_url: str, backend: str) -> tuple[list[Figure], list[str]]:
    """The three variants on one database (already empty), and their figures."""
    asyncio.run(_prepare(database_url))
    outcomes = {variant: _run_variant(variant, database_url) for variant in VARIANTS}
    shared = outcomes["shared cooldowns"]
    suffix = "" if backend == "sqlite" else " pg"
    figures = [
        Figure(
            f"cooldowns{suffix}",
            f"429s received: shared cooldowns vs {other}",
            shared.refused,
            max(outcomes[other].refused, 1),
            "<= 0.2x",
            0.2,
        )
        for other in ("executor alone", "tenacity")
    ]
    figures.append(
        Figure(
            f"cooldowns{suffix}",
            "wall time (s): shared cooldowns vs executor alone",
            shared.wall_s,
            outcomes["executor alone"].wall_s,
            "<= 1.0x",
            1.0,
        )
    )
    idle, alone = asyncio.run(_idle_cost_ms(database_url))
    figures.append(
        Figure(
            f"cooldowns{suffix}",
            "a call on an idle key vs without shared cooldowns (median ms)",
            idle,
            alone,
            "<= 1.1x",
            1.1,
        )
    )
    notes = [
        f"cooldowns{suffix}, {variant}: {o.refused} 429s, {o.wall_s:.1f} s wall, "
        f"p95 {o.p95_s * 1000:.0f} ms per call, {o.failed} calls failed"
        for variant, o in outcomes.items()
    ]
    return figures, notes


def run_all(postgres_url: str | None) -> tuple[list[Figure], list[str]]:
    """The cooldown figures on a SQLite file, and on a fresh PostgreSQL database if given."""
    with tempfile.TemporaryDirectory(prefix="convstore-bench-") as tmp:
        figures, notes = run(f"sqlite:///{Path(tmp) / 'cooldowns.db'}", "sqlite")
    if postgres_url:
        from benchmarks._postgres import fresh_database  # asyncpg is an optional extra

        with fresh_database(postgres_url, "cooldowns") as url:
            pg_figures, pg_notes = run(url, "postgresql")
        figures += pg_figures
        notes += pg_notes
    return figures, notes
