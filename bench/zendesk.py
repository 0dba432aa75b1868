"""Zendesk connector through the HTTP service, against the Zendesk sandbox in its own process.

- Full contact sync of N end-users with 20 ms added to every upstream call (the export's
  10-a-minute bucket lifted), through the bridge, against a minimal direct client walking the
  same cursor export on the same sandbox in the same run (the ratio).
- Interaction retrieval by contact id at 32 concurrent requests, against the same upstream call
  (the user's requested tickets) made directly at the same concurrency: the bridge's share.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
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

TOKEN = "bench-zendesk-oauth-token"
AUTH = {"subdomain": "acme", "access_token": TOKEN}
PER_PAGE = 1000


def sandbox(
    contacts: int, latency_ms: float, port: int
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    args = ["-m", "talkdesk_sandbox", "zendesk", "--port", str(port), "--contacts", str(contacts)]
    args += ["--latency-ms", str(latency_ms), "--token", TOKEN, "--seed", "1"]
    args += ["--rate-limit", "100000000", "-o", "export_rate_limit=null"]
    return process(
        args,
        {},
        f"http://127.0.0.1:{port}/api/v2/users/me",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


def upstream_client(port: int) -> RawClient:
    return RawClient("127.0.0.1", port, {"Authorization": f"Bearer {TOKEN}"})


async def direct_sync(port: int) -> tuple[list[str], float, int]:
    """The floor: the export walked cursor after cursor, parsed, end-users kept."""
    async with upstream_client(port) as client:
        start = time.perf_counter()
        ids: list[str] = []
        query = f"start_time=0&per_page={PER_PAGE}&include=identities"
        calls = 0
        while True:
            status, raw = await client.request("GET", f"/api/v2/incremental/users/cursor?{query}")
            assert status == 200, raw[:200]
            calls += 1
            page = orjson.loads(raw)
            ids.extend(str(u["id"]) for u in page["users"] if u["role"] == "end-user")
            if page["end_of_stream"]:
                break
            query = f"cursor={page['after_cursor']}&per_page={PER_PAGE}&include=identities"
        return ids, time.perf_counter() - start, calls


async def _measure(clients: list[Any], call: Any, requests: int, concurrency: int) -> list[float]:
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
            "auth": AUTH,
            "meta": {"interaction_types": ["ticket"]},
            "data": {"contact_external_id": rng.choice(ids)},
        }
        client = await pool.get()
        status, raw = await client.request("POST", "/zendesk/interaction_update", body)
        pool.put_nowait(client)
        assert status == 200, raw[:300]

    clients = [RawClient("127.0.0.1", port) for _ in range(concurrency)]
    return await _measure(clients, lookup, requests, concurrency)


async def direct_lookups(port: int, ids: list[str], requests: int, concurrency: int) -> list[float]:
    rng = random.Random(1)

    async def lookup(pool: asyncio.Queue[RawClient]) -> None:
        client = await pool.get()
        path = f"/api/v2/users/{rng.choice(ids)}/tickets/requested"
        status, raw = await client.request("GET", f"{path}?per_page=20&sort_by=updated_at")
        pool.put_nowait(client)
        assert status == 200, raw[:300]
        orjson.loads(raw)

    clients = [upstream_client(port) for _ in range(concurrency)]
    return await _measure(clients, lookup, requests, concurrency)


def _env(port: int) -> dict[str, str]:
    return {
        "TALKDESK_BRIDGE_CONNECTORS": "zendesk",
        "TALKDESK_BRIDGE_ZENDESK_BASE_URL": f"http://127.0.0.1:{port}",
    }


def run(
    contacts: int = 50_000,
    requests: int = 2000,
    concurrency: int = 32,
    lookup_contacts: int = 1000,
) -> None:
    fake_port, bridge_port = free_port(), free_port()
    started = time.perf_counter()
    with sandbox(contacts, 20.0, fake_port):
        print(
            f"Zendesk sandbox: {contacts} end-users, +20 ms per call, up in "
            f"{time.perf_counter() - started:.1f} s"
        )
        with server(_env(fake_port), ["serve", "--port", str(bridge_port)], bridge_port) as proc:
            ids, direct_s, calls = asyncio.run(direct_sync(fake_port))
            total, elapsed, pages = asyncio.run(bridge_sync(bridge_port, "zendesk", AUTH))
            again, direct2_s, _ = asyncio.run(direct_sync(fake_port))
            rss = peak_rss_mb(proc.pid)
    best = min(direct_s, direct2_s)
    assert total == len(ids) == len(again) == contacts, (total, len(ids))
    print(
        f"full contact sync through the bridge: {total} contacts, {pages} pages, {elapsed:.2f} s "
        f"= {total / elapsed:,.0f} contacts/s"
    )
    print(
        f"  baseline, direct client walking the same export ({calls} calls of {PER_PAGE}): "
        f"{direct_s:.2f} s and {direct2_s:.2f} s = {len(ids) / best:,.0f} contacts/s; "
        f"bridge / direct = {elapsed / best:.2f}x"
    )
    print(f"  bridge peak RSS: {rss:.0f} MB")

    fake_port, bridge_port = free_port(), free_port()
    with (
        sandbox(lookup_contacts, 20.0, fake_port),
        server(_env(fake_port), ["serve", "--port", str(bridge_port)], bridge_port),
    ):
        ids, _, _ = asyncio.run(direct_sync(fake_port))
        upstream = asyncio.run(direct_lookups(fake_port, ids, requests, concurrency))
        found = asyncio.run(bridge_lookups(bridge_port, ids, requests, concurrency))
    print(
        f"interaction retrieval by contact id ({lookup_contacts} end-users), {requests} requests "
        f"at {concurrency} concurrent: {describe(found)}"
    )
    print(f"  baseline, the same upstream call made directly: {describe(upstream)}")
    share50 = percentile(found, 50) - percentile(upstream, 50)
    share99 = percentile(found, 99) - percentile(upstream, 99)
    print(f"  bridge's share: p50 {share50:+.2f} ms, p99 {share99:+.2f} ms")
