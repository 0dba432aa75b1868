"""The health page's figures: this process's own metrics, sampled into a bounded ring.

The Prometheus counters only grow; a sample every `console_sample_seconds` (and one taken when
the page is drawn) turns them into per-interval figures: requests, client and server errors,
latency (p95 from the histogram's buckets), upstream calls, retries and rate-limit waits. The
ring holds a fixed number of samples, so memory stays constant however long the process runs.
With several workers each keeps its own ring: the figures are that worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram

from .._observability import (
    LATENCY,
    RATE_LIMIT_WAITS,
    REQUESTS,
    UPSTREAM_CALLS,
    UPSTREAM_RETRIES,
)

__all__ = ["Chart", "HealthSampler", "HealthView", "SeriesRow", "UpstreamRow"]

SAMPLES = 120  # e.g. ten minutes at the default five seconds
_HIDDEN = frozenset({("-", "console")})  # the console's own polling is not the bridge's load
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    at: float  # monotonic seconds
    requests: dict[Key, tuple[float, float, float]]  # all, 4xx, 5xx
    latency: dict[Key, tuple[float, ...]]  # cumulative bucket counts, +Inf last
    upstream: dict[str, tuple[float, float, float]]  # calls, retries, rate-limit waits


def _samples(metric: Counter | Histogram, suffix: str) -> Iterable[tuple[dict[str, str], float]]:
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith(suffix):
                yield sample.labels, sample.value


def _bucket_bounds() -> tuple[float, ...]:
    bounds = sorted(
        {float(labels["le"]) for labels, _ in _samples(LATENCY, "_bucket")} | {math.inf}
    )
    return tuple(bounds)


def take_snapshot() -> _Snapshot:
    requests: dict[Key, list[float]] = {}
    for labels, value in _samples(REQUESTS, "_total"):
        key = (labels["connector"], labels["endpoint"])
        row = requests.setdefault(key, [0.0, 0.0, 0.0])
        row[0] += value
        status = labels["status"]
        if status.startswith("4"):
            row[1] += value
        elif status.startswith("5"):
            row[2] += value
    buckets: dict[Key, dict[float, float]] = {}
    for labels, value in _samples(LATENCY, "_bucket"):
        key = (labels["connector"], labels["endpoint"])
        buckets.setdefault(key, {})[float(labels["le"])] = value
    upstream: dict[str, list[float]] = {}
    for column, metric in enumerate((UPSTREAM_CALLS, UPSTREAM_RETRIES, RATE_LIMIT_WAITS)):
        for labels, value in _samples(metric, "_total"):
            upstream.setdefault(labels["connector"], [0.0, 0.0, 0.0])[column] += value
    return _Snapshot(
        time.monotonic(),
        {k: (v[0], v[1], v[2]) for k, v in requests.items() if k not in _HIDDEN},
        {k: tuple(v[b] for b in sorted(v)) for k, v in buckets.items() if k not in _HIDDEN},
        {k: (v[0], v[1], v[2]) for k, v in upstream.items()},
    )


def _delta(new: Sequence[float], old: Sequence[float] | None) -> list[float]:
    if old is None:
        return list(new)
    return [max(0.0, a - b) for a, b in zip(new, old, strict=False)]


def _p95_ms(cumulative: Sequence[float], bounds: Sequence[float]) -> float | None:
    if not cumulative or cumulative[-1] <= 0:
        return None
    wanted = 0.95 * cumulative[-1]
    for count, bound in zip(cumulative, bounds, strict=False):
        if count >= wanted:
            finite = bound if math.isfinite(bound) else max(b for b in bounds if math.isfinite(b))
            return finite * 1000
    return None


@dataclass(frozen=True, slots=True)
class Chart:
    """A small line chart, drawn as inline SVG by the template (numbers only)."""

    title: str
    unit: str
    values: tuple[float, ...]
    width: int = 320
    height: int = 64

    @property
    def peak(self) -> float:
        return max(self.values, default=0.0)

    @property
    def latest(self) -> float:
        return self.values[-1] if self.values else 0.0

    @property
    def total(self) -> float:
        return sum(self.values)

    @property
    def points(self) -> str:
        if not self.values:
            return ""
        top = self.peak or 1.0
        step = self.width / max(1, len(self.values) - 1)
        usable = self.height - 4
        return " ".join(
            f"{i * step:.1f},{self.height - 2 - value / top * usable:.1f}"
            for i, value in enumerate(self.values)
        )


@dataclass(frozen=True, slots=True)
class SeriesRow:
    connector: str
    endpoint: str
    requests: int
    client_errors: int
    server_errors: int
    p95_ms: float | None
    spark: Chart

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class UpstreamRow:
    connector: str
    calls: int
    retries: int
    waits: int


@dataclass(frozen=True, slots=True)
class HealthView:
    window_seconds: float
    interval_seconds: float
    charts: list[Chart]
    series: list[SeriesRow]
    upstream: list[UpstreamRow]
    per_worker: bool
    pid: int = field(default_factory=os.getpid)


class HealthSampler:
    def __init__(self, interval: float, size: int = SAMPLES) -> None:
        self.interval = interval
        self._ring: deque[_Snapshot] = deque(maxlen=size)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._ring.append(take_snapshot())
        self._task = asyncio.create_task(self._run(), name="console-health-sampler")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._ring.append(take_snapshot())

    def view(self) -> HealthView:
        # The ring, and "now" as a last, partial interval: requests made a second ago show.
        snapshots = [*self._ring, take_snapshot()]
        bounds = _bucket_bounds()
        pairs = list(itertools.pairwise(snapshots))
        span = max(1e-3, snapshots[-1].at - snapshots[0].at)
        keys = sorted({k for s in snapshots for k in s.requests})
        per_key: dict[Key, list[list[float]]] = {k: [] for k in keys}
        totals: list[list[float]] = []  # per interval: all, 5xx, seconds
        merged_buckets: list[list[float]] = []
        for old, new in pairs:
            seconds = max(1e-3, new.at - old.at)
            interval_total = [0.0, 0.0, seconds]
            interval_buckets = [0.0] * len(bounds)
            for key in keys:
                d = _delta(new.requests.get(key, (0, 0, 0)), old.requests.get(key))
                per_key[key].append(d)
                interval_total[0] += d[0]
                interval_total[1] += d[2]
                b = _delta(new.latency.get(key, ()), old.latency.get(key))
                for i, v in enumerate(b[: len(bounds)]):
                    interval_buckets[i] += v
            totals.append(interval_total)
            merged_buckets.append(interval_buckets)

        connectors = sorted({c for s in snapshots for c in s.upstream})
        upstream_intervals: list[list[float]] = []
        for old, new in pairs:
            sums = [0.0, 0.0, 0.0]
            for c in connectors:
                d = _delta(new.upstream.get(c, (0, 0, 0)), old.upstream.get(c))
                sums = [a + b for a, b in zip(sums, d, strict=True)]
            upstream_intervals.append(sums)

        charts = [
            Chart("Requests", "/s", tuple(t[0] / t[2] for t in totals)),
            Chart("Server errors", "%", tuple(100 * t[1] / t[0] if t[0] else 0.0 for t in totals)),
            Chart("Latency p95", "ms", tuple(_p95_ms(b, bounds) or 0.0 for b in merged_buckets)),
            Chart(
                "Upstream calls",
                "/s",
                tuple(u[0] / t[2] for u, t in zip(upstream_intervals, totals, strict=True)),
            ),
            Chart("Upstream retries", "", tuple(u[1] for u in upstream_intervals)),
            Chart("Rate-limit waits", "", tuple(u[2] for u in upstream_intervals)),
        ]
        first, last = snapshots[0], snapshots[-1]
        series = []
        for key in keys:
            d = _delta(last.requests.get(key, (0, 0, 0)), first.requests.get(key))
            if not d[0]:
                continue
            b = _delta(last.latency.get(key, ()), first.latency.get(key))
            series.append(
                SeriesRow(
                    key[0],
                    key[1],
                    int(d[0]),
                    int(d[1]),
                    int(d[2]),
                    _p95_ms(b, bounds),
                    Chart("requests", "", tuple(x[0] for x in per_key[key]), 120, 20),
                )
            )
        upstream = []
        for c in connectors:
            d = _delta(last.upstream.get(c, (0, 0, 0)), first.upstream.get(c))
            if any(d):
                upstream.append(UpstreamRow(c, int(d[0]), int(d[1]), int(d[2])))
        return HealthView(
            span,
            self.interval,
            charts,
            series,
            upstream,
            per_worker=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
        )
