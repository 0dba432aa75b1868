"""Intercom connector through the HTTP service, against the fake Intercom in its own process.

- Full contact sync of N contacts with 20 ms added to every upstream call, through the bridge,
  against a minimal direct client paginating the same search on the same fake (the ratio).
- Interaction retrieval at 32 concurrent requests, against the same two upstream searches made
  directly at the same concurrency: the bridge's share is the difference.

The fake runs with a very high rate limit: the point is the bridge's overhead, not pacing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from bench._client import RawClient
from bench._common import (
    bridge_sync,
    concurrent_latencies,
    describe,
    free_port,
    peak_rss_mb,
    percentile,
    process,
    server,
)

TOKEN = "bench-intercom-token"
VERSION = "2.14"
PER_PAGE = 150
SINCE_EVER = {
    "operator": "OR",
    "value": [
        {"field": "updated_at", "operator": ">", "value": 0},
        {"field": "updated_at", "operator": "=", "value": 0},
    ],
}


def fake_intercom(
    contacts: int, latency_ms: float, port: int, rate_limit: int = 100_000_000
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """The fake Intercom (the `talkdesk_sandbox` CLI) in its own process, up when `/me`
    answers."""
    args = ["-m", "talkdesk_sandbox", "intercom", "--port", str(port)]
    args += ["--contacts", str(contacts), "--latency-ms", str(latency_ms), "--token", TOKEN]
    args += ["--seed", "1", "--rate-limit", str(rate_limit)]
    return process(
        args,
        {},
        f"http://127.0.0.1:{port}/me",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


def UpstreamClient(host: str, port: int) -> RawClient:
    """`RawClient` with the Intercom headers: the direct client the bridge is compared with."""
    return RawClient(host, port, {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": VERSION})


async def direct_sync(port: int) -> tuple[list[str], float, int]:
    """The floor: the same search, page after page, parsed, with nothing else done."""
    async with UpstreamClient("127.0.0.1", port) as client:
        start = time.perf_counter()
        ids: list[str] = []
        cursor = None
        calls = 0
        while True:
            pagination: dict[str, Any] = {"per_page": PER_PAGE}
            if cursor:
                pagination["starting_after"] = cursor
            body = {
                "query": SINCE_EVER,
                "sort": {"field": "updated_at", "order": "ascending"},
                "pagination": pagination,
            }
            status, raw = await client.post("/contacts/search", body)
            assert status == 200, raw[:200]
            calls += 1
            page = orjson.loads(raw)
            ids.extend(c["id"] for c in page["data"])
            nxt = page["pages"].get("next")
            if not nxt:
                break
            cursor = nxt["starting_after"]
        return ids, time.perf_counter() - start, calls


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(clients: list[Any], call: Any, requests: int, concurrency: int) -> list[float]:
    """Warm up, then time `requests` calls; connections live only for this phase (servers
    close idle keep-alive connections after a few seconds)."""
    pool: asyncio.Queue[Any] = asyncio.Queue()
    for client in clients:
        await client.__aenter__()
        pool.put_nowait(client)
    try:
        await concurrent_latencies(lambda i: call(pool), min(200, requests), concurrency)
        latencies, _ = await concurrent_latencies(lambda i: call(pool), requests, concurrency)
    finally:
        for client in clients:
            await client.__aexit__()
    return latencies


async def bridge_lookups(port: int, ids: list[str], requests: int, concurrency: int) -> list[float]:
    rng = random.Random(1)

    async def lookup(pool: asyncio.Queue[RawClient]) -> None:
        body = {
            "auth": {"access_token": TOKEN},
            "meta": {"interaction_types": ["conversation", "ticket"]},
            "data": {"contact_external_id": rng.choice(ids)},
        }
        client = await pool.get()
        status, raw = await client.request("POST", "/intercom/interaction_update", body)
        pool.put_nowait(client)
        assert status == 200, raw[:300]

    clients = [RawClient("127.0.0.1", port) for _ in range(concurrency)]
    return await _measure(clients, lookup, requests, concurrency)


async def direct_lookups(port: int, ids: list[str], requests: int, concurrency: int) -> list[float]:
    """The same two searches the bridge makes for one lookup, side by side, made directly."""
    rng = random.Random(1)

    async def search(pool: asyncio.Queue[RawClient], path: str, contact_id: str) -> None:
        client = await pool.get()
        body = {
            "query": {"field": "contact_ids", "operator": "=", "value": contact_id},
            "sort": {"field": "created_at", "order": "descending"},
            "pagination": {"per_page": 20},
        }
        status, raw = await client.post(path, body)
        pool.put_nowait(client)
        assert status == 200, raw[:300]
        orjson.loads(raw)

    async def lookup(pool: asyncio.Queue[RawClient]) -> None:
        contact_id = rng.choice(ids)
        await asyncio.gather(
            search(pool, "/conversations/search", contact_id),
            search(pool, "/tickets/search", contact_id),
        )

    clients = [UpstreamClient("127.0.0.1", port) for _ in range(2 * concurrency)]
    return await _measure(clients, lookup, requests, concurrency)


def _bridge_env(fake_port: int) -> dict[str, str]:
    return {
        "TALKDESK_BRIDGE_CONNECTORS": "intercom",
        "TALKDESK_BRIDGE_INTERCOM_BASE_URL": f"http://127.0.0.1:{fake_port}",
    }


def run(
    contacts: int = 50_000,
    requests: int = 2000,
    concurrency: int = 32,
    lookup_contacts: int = 1000,
) -> None:
    fake_port, bridge_port = free_port(), free_port()
    started = time.perf_counter()
    with fake_intercom(contacts, 20.0, fake_port):
        print(
            f"fake Intercom: {contacts} contacts, +20 ms per call, up in "
            f"{time.perf_counter() - started:.1f} s"
        )
        env = _bridge_env(fake_port)
        with server(env, ["serve", "--port", str(bridge_port)], bridge_port) as proc:
            ids, direct_s, calls = asyncio.run(direct_sync(fake_port))
            total, elapsed, pages = asyncio.run(
                bridge_sync(bridge_port, "intercom", {"access_token": TOKEN})
            )
            again, direct2_s, _ = asyncio.run(direct_sync(fake_port))
            rss = peak_rss_mb(proc.pid)
    direct_best = min(direct_s, direct2_s)
    assert total == len(ids) == len(again) == contacts, (total, len(ids))
    print(
        f"full contact sync through the bridge: {total} contacts, {pages} pages, {elapsed:.2f} s "
        f"= {total / elapsed:,.0f} contacts/s"
    )
    print(
        f"  baseline, direct client paging the same search ({calls} calls of {PER_PAGE}): "
        f"{direct_s:.2f} s and {direct2_s:.2f} s = {len(ids) / direct_best:,.0f} contacts/s; "
        f"bridge / direct = {elapsed / direct_best:.2f}x"
    )
    print(f"  bridge peak RSS: {rss:.0f} MB")

    # The fake scans every conversation to search by contact, so lookups are measured on a
    # smaller workspace: the figure is about the bridge, not the fake's search engine.
    fake_port, bridge_port = free_port(), free_port()
    with fake_intercom(lookup_contacts, 20.0, fake_port):
        env = _bridge_env(fake_port)
        with server(env, ["serve", "--port", str(bridge_port)], bridge_port) as proc:
            ids, _, _ = asyncio.run(direct_sync(fake_port))
            alone_upstream = asyncio.run(direct_lookups(fake_port, ids, 100, 1))
            alone = asyncio.run(bridge_lookups(bridge_port, ids, 100, 1))
            upstream = asyncio.run(direct_lookups(fake_port, ids, requests, concurrency))
            cpu = cpu_seconds(proc.pid)
            found = asyncio.run(bridge_lookups(bridge_port, ids, requests, concurrency))
            cpu_ms = (cpu_seconds(proc.pid) - cpu) * 1000 / (requests + min(200, requests))
    print(
        f"interaction retrieval by contact id ({lookup_contacts} contacts, both types), "
        f"{requests} requests at {concurrency} concurrent: {describe(found)}"
    )
    print(f"  baseline, the same two upstream searches made directly: {describe(upstream)}")
    share50 = percentile(found, 50) - percentile(upstream, 50)
    share99 = percentile(found, 99) - percentile(upstream, 99)
    print(f"  bridge's share: p50 {share50:+.2f} ms, p99 {share99:+.2f} ms")
    print(f"  bridge CPU per interaction request: {cpu_ms:.2f} ms")
    print(
        f"  one at a time: bridge p50 {percentile(alone, 50):.2f} ms, direct upstream p50 "
        f"{percentile(alone_upstream, 50):.2f} ms "
        f"(share {percentile(alone, 50) - percentile(alone_upstream, 50):+.2f} ms)"
    )
