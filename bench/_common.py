"""Shared benchmark plumbing: a real server process, its peak RSS, latency percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench._client import RawClient

__all__ = [
    "bridge_sync",
    "concurrent_latencies",
    "describe",
    "free_port",
    "peak_rss_mb",
    "percentile",
    "process",
    "server",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a process, in MB."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            total += int(line.split()[1]) / 1024
    return total


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], ready_url: str, headers: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`python ARGS` in its own process, waited for until `ready_url` answers 200.

    Its log goes to a file: a pipe nobody reads would fill and stall the server mid-benchmark.
    """
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise RuntimeError(f"{args[1]} exited: {err[-2000:]}")
                try:
                    if httpx.get(ready_url, headers=headers, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args[1]} did not start")
                time.sleep(0.1)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def server(
    env: dict[str, str], args: list[str], port: int
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """`talkdesk-bridge ARGS` in its own process, waited for until /healthz answers."""
    return process(["-m", "talkdesk_bridge", *args], env, f"http://127.0.0.1:{port}/healthz")


async def bridge_sync(port: int, connector: str, auth: dict[str, str]) -> tuple[int, float, int]:
    """Talkdesk's synchronizer: follow next_offset to the end; (contacts, seconds, pages)."""
    async with RawClient("127.0.0.1", port) as client:
        start = time.perf_counter()
        meta: dict[str, Any] = {}
        ids: set[str] = set()
        total = pages = 0
        while True:
            body = {"auth": auth, "meta": meta}
            status, raw = await client.post(f"/{connector}/contact_sync", body)
            assert status == 200, raw[:300]
            page = orjson.loads(raw)
            pages += 1
            total += len(page["contacts"])
            ids.update(c["id"] for c in page["contacts"])
            if "next_offset" not in page:
                break
            meta = {"offset": page["next_offset"]}
        elapsed = time.perf_counter() - start
    assert total == len(ids), "duplicate ids in one run"
    return total, elapsed, pages


async def concurrent_latencies(
    call: Callable[[int], Awaitable[None]], total: int, concurrency: int
) -> tuple[list[float], float]:
    """Run `call(i)` `total` times, `concurrency` at once: (latencies in ms, wall seconds)."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            start = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def describe(latencies: list[float]) -> str:
    return (
        f"p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms, "
        f"mean {statistics.fmean(latencies):.2f} ms"
    )
