"""Throughput with one and two workers, and behaviour under an upstream 429 storm.

- Auth validation (one `GET /me` per call) against a zero-latency fake Intercom, with 1 and 2
  workers; the HTTP floor (`GET /healthz`, one worker) is measured in the same run. On this
  2-core machine the load generator and the fake share the cores with the workers.
- A 429 storm: the fake allows `--storm-limit` calls per 10-second window while the load asks
  for far more; the bridge paces per account, waits when the reset fits the request's budget,
  and otherwise answers 503 with Retry-After. Reported: answers by status, latency, and the
  upstream calls and 429s the bridge saw (from its /metrics).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from typing import Any

import httpx
import redis

from bench._client import RawClient
from bench._common import describe, free_port, server
from bench.intercom import TOKEN, _bridge_env, fake_intercom

AUTH = {"auth": {"access_token": TOKEN}}


async def _load(
    port: int, method: str, path: str, body: Any, seconds: float, concurrency: int
) -> tuple[Counter[int], list[float], float]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        async with RawClient("127.0.0.1", port) as client:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                status, _ = await client.request(method, path, body)
                latencies.append((time.perf_counter() - start) * 1000)
                statuses[status] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, latencies, time.perf_counter() - start


def _metric(text: str, pattern: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if re.match(pattern, line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def throughput(seconds: float, concurrency: int) -> None:
    fake_port = free_port()
    with fake_intercom(10, 0.0, fake_port):
        for workers in (1, 2):
            port = free_port()
            args = ["serve", "--port", str(port), "--workers", str(workers)]
            with server(_bridge_env(fake_port), args, port):
                asyncio.run(_load(port, "POST", "/intercom/auth_validation", AUTH, 1, concurrency))
                if workers == 1:
                    _, floor, took = asyncio.run(
                        _load(port, "GET", "/healthz", None, seconds, concurrency)
                    )
                    print(
                        f"HTTP floor, GET /healthz, 1 worker: {len(floor) / took:,.0f} req/s "
                        f"({describe(floor)})"
                    )
                statuses, lat, took = asyncio.run(
                    _load(port, "POST", "/intercom/auth_validation", AUTH, seconds, concurrency)
                )
                total = sum(statuses.values())
                print(
                    f"auth validation, {workers} worker(s), {concurrency} concurrent: "
                    f"{total / took:,.0f} req/s, {statuses[200] / max(1, total):.1%} 200 "
                    f"({describe(lat)})"
                )


def _storm_once(seconds: float, concurrency: int, limit: int, redis_url: str | None) -> None:
    fake_port = free_port()
    with fake_intercom(10, 0.0, fake_port, rate_limit=limit):
        port = free_port()
        env = _bridge_env(fake_port) | {"TALKDESK_BRIDGE_INTERCOM_REQUEST_BUDGET_SECONDS": "2"}
        if redis_url:
            env["TALKDESK_BRIDGE_REDIS_URL"] = redis_url
        with server(env, ["serve", "--port", str(port), "--workers", "2"], port):
            statuses, lat, took = asyncio.run(
                _load(port, "POST", "/intercom/auth_validation", AUTH, seconds, concurrency)
            )
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = sum(statuses.values())
    upstream = _metric(metrics, r'talkdesk_bridge_upstream_calls_total\{connector="intercom"')
    upstream_429 = _metric(metrics, r'talkdesk_bridge_upstream_calls_total\{.*outcome="429"')
    waits = _metric(metrics, r"talkdesk_bridge_upstream_rate_limit_waits_total\{")
    other_5xx = sum(n for status, n in statuses.items() if status >= 500 and status != 503)
    mode = "budgets shared in Redis" if redis_url else "per-process budgets"
    print(f"  2 workers, {mode}: {total} requests in {took:.0f} s ({total / took:,.0f}/s)")
    print(
        "    answers: "
        + ", ".join(f"{status}: {n} ({n / total:.1%})" for status, n in sorted(statuses.items()))
        + f"; 5xx other than 503: {other_5xx}"
    )
    print(f"    latency: {describe(lat)}, max {max(lat):.0f} ms")
    print(
        f"    upstream: {upstream:.0f} calls, {upstream_429:.0f} answered 429 "
        f"({upstream_429 / max(1, upstream):.1%}); {waits:.0f} paced waits"
    )


def storm(seconds: float, concurrency: int, limit: int) -> None:
    print(
        f"429 storm: the fake allows {limit} calls per 10 s window; {concurrency} concurrent "
        f"callers ask for far more (request budget 2 s)"
    )
    _storm_once(seconds, concurrency, limit, None)
    url = "redis://127.0.0.1:6379/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        for key in client.scan_iter(match="talkdesk-bridge:ratelimit:*"):
            client.delete(key)
        client.close()
    except redis.RedisError:
        print("  (no Redis on 127.0.0.1:6379: the shared-budget run is skipped)")
        return
    _storm_once(seconds, concurrency, limit, url)


def run(seconds: float = 5.0, concurrency: int = 32, limit: int = 300) -> None:
    throughput(seconds, concurrency)
    storm(2 * seconds, 16, limit)
