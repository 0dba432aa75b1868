"""`python -m bench hubspot`: HubSpot through the bridge vs a direct client, same run.

- a full contact sync of 50,000 contacts (the id-keyset list, pages of 100), 20 ms added to
  every upstream call;
- an incremental run after 15,000 contacts changed in one millisecond (past the 10,000
  search cap): the id walk of one window, searches of 200 paced at HubSpot's 5/s, for both;
- interaction retrieval at 32 concurrent requests (p50/p99, upstream round trips per answer)
  against the same association read and batch reads made directly.

The sandbox runs in this process's server thread (the benchmark drives its writes); the
bridge runs as `talkdesk-bridge serve` in its own process.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from bench._client import RawClient
from bench._common import (
    bridge_sync,
    concurrent_latencies,
    describe,
    free_port,
    peak_rss_mb,
    server,
)
from talkdesk_bridge.connectors.hubspot.mapping import CONTACT_PROPERTIES, INTERACTION_PROPERTIES
from talkdesk_sandbox.hubspot import HubSpotSandbox

__all__ = ["run"]

TOKEN = "pat-na1-bench-0000-0000-000000000000"
AUTH = {"access_token": TOKEN}
SEARCH_INTERVAL = 0.2  # HubSpot's 5 searches per second per portal
_PROPS = ",".join(CONTACT_PROPERTIES)


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def direct_full(host: str, port: int) -> tuple[int, float, int]:
    """The floor: the contact list, page after page, parsed, nothing else."""
    async with RawClient(host, port, _headers()) as client:
        start = time.perf_counter()
        params = {"limit": "100", "properties": _PROPS, "archived": "false"}
        total = calls = 0
        while True:
            status, raw = await client.request(
                "GET", "/crm/v3/objects/contacts?" + urlencode(params)
            )
            assert status == 200, raw[:200]
            calls += 1
            page = orjson.loads(raw)
            total += len(page["results"])
            nxt = page.get("paging", {}).get("next")
            if not nxt:
                return total, time.perf_counter() - start, calls
            params["after"] = nxt["after"]


async def direct_walk(host: str, port: int, lower: int, upper: int) -> tuple[int, float, int]:
    """The same loss-proof id walk, paced at 5 searches a second, without the bridge."""
    async with RawClient(host, port, _headers()) as client:
        start = time.perf_counter()
        last, total, calls = 0, 0, 0
        while True:
            began = time.perf_counter()
            body = {
                "filterGroups": [{"filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(lower)},
                    {"propertyName": "lastmodifieddate", "operator": "LTE", "value": str(upper)},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(last)},
                ]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": list(CONTACT_PROPERTIES),
                "limit": 200,
            }  # fmt: skip
            status, raw = await client.post("/crm/v3/objects/contacts/search", body)
            assert status == 200, raw[:200]
            calls += 1
            page = orjson.loads(raw)
            total += len(page["results"])
            if page["total"] <= len(page["results"]):
                return total, time.perf_counter() - start, calls
            last = int(page["results"][-1]["id"])
            await asyncio.sleep(max(0.0, SEARCH_INTERVAL - (time.perf_counter() - began)))


async def bridge_incremental(port: int, checkpoint: str) -> tuple[int, float, int]:
    async with RawClient("127.0.0.1", port) as client:
        start = time.perf_counter()
        meta: dict[str, Any] = {"synchronization_checkpoint": checkpoint}
        ids: set[str] = set()
        pages = 0
        while True:
            status, raw = await client.post("/hubspot/contact_sync", {"auth": AUTH, "meta": meta})
            assert status == 200, raw[:300]
            page = orjson.loads(raw)
            pages += 1
            ids.update(c["id"] for c in page["contacts"])
            if "next_offset" not in page:
                return len(ids), time.perf_counter() - start, pages
            meta = {**meta, "offset": page["next_offset"]}


async def full_checkpoint(port: int) -> str:
    async with RawClient("127.0.0.1", port) as client:
        meta: dict[str, str] = {}
        while True:
            _, raw = await client.post("/hubspot/contact_sync", {"auth": AUTH, "meta": meta})
            page = orjson.loads(raw)
            if "next_offset" not in page:
                return str(page["synchronization_checkpoint"])
            meta = {"offset": page["next_offset"]}


async def bridge_interactions(
    port: int, contacts: list[str], requests: int, concurrency: int
) -> tuple[list[float], float]:
    clients = [RawClient("127.0.0.1", port) for _ in range(concurrency)]
    pool: asyncio.Queue[RawClient] = asyncio.Queue()
    for c in clients:
        await c.__aenter__()
        pool.put_nowait(c)
    try:

        async def call(i: int) -> None:
            body = {"auth": AUTH, "data": {"contact_external_id": contacts[i % len(contacts)]}}
            client = await pool.get()
            try:
                status, raw = await client.post("/hubspot/interaction_update", body)
            finally:
                pool.put_nowait(client)
            assert status == 200, raw[:300]

        return await concurrent_latencies(call, requests, concurrency)
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)


async def direct_interactions(
    host: str, port: int, contacts: list[str], requests: int, concurrency: int
) -> tuple[list[float], float]:
    clients = [RawClient(host, port, _headers()) for _ in range(concurrency)]
    pool: asyncio.Queue[RawClient] = asyncio.Queue()
    for c in clients:
        await c.__aenter__()
        pool.put_nowait(c)
    kinds = ",".join(INTERACTION_PROPERTIES)
    try:

        async def call(i: int) -> None:
            client = await pool.get()
            try:
                await one(client, contacts[i % len(contacts)])
            finally:
                pool.put_nowait(client)

        async def one(client: RawClient, cid: str) -> None:
            query = urlencode({"properties": "hs_object_id", "associations": kinds})
            status, raw = await client.request("GET", f"/crm/v3/objects/contacts/{cid}?{query}")
            assert status == 200
            linked = orjson.loads(raw).get("associations", {})
            reads = []
            for kind, block in linked.items():
                ids = [{"id": r["id"]} for r in block["results"]]
                body = {"inputs": ids, "properties": list(INTERACTION_PROPERTIES[kind])}
                reads.append(client.post(f"/crm/v3/objects/{kind}/batch/read", body))
            # One connection per client: the batch reads go one after another here.
            for read in reads:
                await read

        return await concurrent_latencies(call, requests, concurrency)
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)


def run(contacts: int = 50_000, changes: int = 15_000, requests: int = 2000,
        concurrency: int = 32) -> None:  # fmt: skip
    sandbox = HubSpotSandbox(token=TOKEN, latency=0.02, lag=0.0, rate_limit=None,
                             search_rate=None)  # fmt: skip
    started = time.perf_counter()
    sandbox.seed(contacts=contacts)
    print(f"HubSpot sandbox: {contacts} contacts, +20 ms per call, seeded in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    bridge_port = free_port()
    with sandbox.serve() as base_url:
        host = urlsplit(base_url).hostname or "127.0.0.1"
        port = urlsplit(base_url).port or 80
        env = {
            "TALKDESK_BRIDGE_CONNECTORS": "hubspot",
            "TALKDESK_BRIDGE_HUBSPOT_BASE_URL": base_url,
            "TALKDESK_BRIDGE_HUBSPOT_SEARCH_PER_SECOND": "5",
        }
        with server(env, ["serve", "--port", str(bridge_port)], bridge_port) as proc:
            direct, direct_s, calls = asyncio.run(direct_full(host, port))
            total, elapsed, pages = asyncio.run(bridge_sync(bridge_port, "hubspot", AUTH))
            direct2, direct2_s, _ = asyncio.run(direct_full(host, port))
            checkpoint = asyncio.run(full_checkpoint(bridge_port))
            lower = int(sandbox.now * 1000)
            for cid in list(sandbox.live())[:changes]:
                sandbox.update_contact(cid)  # one millisecond per few hundred: ties galore
            time.sleep(0.01)
            upper = int(sandbox.now * 1000)
            before = sandbox.call_count("POST", "/crm/v3/objects/contacts/search")
            changed, inc_s, inc_pages = asyncio.run(bridge_incremental(bridge_port, checkpoint))
            searches = sandbox.call_count("POST", "/crm/v3/objects/contacts/search") - before
            walked, walk_s, walk_calls = asyncio.run(direct_walk(host, port, lower, upper))
            print(f"full sync: bridge {total} in {elapsed:.2f} s ({pages} pages); direct "
                  f"{direct_s:.2f} / {direct2_s:.2f} s ({calls} calls); incremental: bridge "
                  f"{changed} in {inc_s:.2f} s ({searches} searches), direct walk {walked} in "
                  f"{walk_s:.2f} s ({walk_calls} searches)", flush=True)  # fmt: skip
            active = list(sandbox.associations)
            sandbox.reset_calls()
            lat, wall = asyncio.run(bridge_interactions(bridge_port, active, requests, concurrency))
            trips = len(sandbox.calls) / requests
            sandbox.reset_calls()
            dlat, dwall = asyncio.run(
                direct_interactions(host, port, active, requests, concurrency)
            )
            dtrips = len(sandbox.calls) / requests
            rss = peak_rss_mb(proc.pid)
    best = min(direct_s, direct2_s)
    assert total == direct == direct2 == contacts, (total, direct)
    assert changed >= changes and walked >= changes, (changed, walked)
    print(f"full contact sync through the bridge: {total} contacts, {pages} pages, "
          f"{elapsed:.2f} s = {total / elapsed:,.0f} contacts/s")  # fmt: skip
    print(f"  direct client paging the same list ({calls} calls of 100): {direct_s:.2f} s and "
          f"{direct2_s:.2f} s; bridge / direct = {elapsed / best:.2f}x")  # fmt: skip
    print(f"incremental run after {changes} changes (past the 10,000 cap): {changed} contacts, "
          f"{inc_pages} pages, {searches} searches, {inc_s:.2f} s")  # fmt: skip
    print(f"  direct id walk at 5 searches/s: {walked} contacts, {walk_calls} searches, "
          f"{walk_s:.2f} s; bridge / direct = {inc_s / walk_s:.2f}x")  # fmt: skip
    print(
        f"interaction retrieval, {requests} requests at {concurrency} concurrent: "
        f"{describe(lat)}, {requests / wall:,.0f}/s, {trips:.2f} upstream calls per answer"
    )
    print(f"  direct (same calls, batch reads in sequence): {describe(dlat)}, "
          f"{requests / dwall:,.0f}/s, {dtrips:.2f} calls per answer")  # fmt: skip
    print(f"  bridge peak RSS: {rss:.0f} MB")
