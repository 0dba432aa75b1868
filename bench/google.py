"""`python -m bench google`: a full Google contact sync (30,000 contacts, upstream pages of
1,000, 20 ms added to every People API call) through the bridge vs a direct client paging
the same listing in the same run, then an incremental run after 1,000 changes.

The sandbox runs in this process's server thread (the benchmark drives its writes); the
bridge runs as `talkdesk-bridge serve` in its own process.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode, urlsplit

import orjson

from bench._client import RawClient
from bench._common import bridge_sync, free_port, peak_rss_mb, server
from talkdesk_sandbox.google import GoogleSandbox

__all__ = ["run"]

TOKEN = "ya29.bench-token-0123456789"
FIELDS = "names,emailAddresses,phoneNumbers,organizations,photos,addresses,urls,metadata"


async def direct_sync(host: str, port: int) -> tuple[int, float, int]:
    """The floor: the same listing, page after page, parsed, with nothing else done."""
    async with RawClient(host, port, {"Authorization": f"Bearer {TOKEN}"}) as client:
        start = time.perf_counter()
        params = {"personFields": FIELDS, "pageSize": "1000", "requestSyncToken": "true"}
        total = calls = 0
        while True:
            status, raw = await client.request(
                "GET", "/v1/people/me/connections?" + urlencode(params)
            )
            assert status == 200, raw[:200]
            calls += 1
            page = orjson.loads(raw)
            total += len(page.get("connections", []))
            if "nextPageToken" not in page:
                return total, time.perf_counter() - start, calls
            params["pageToken"] = page["nextPageToken"]


async def incremental(port: int, checkpoint: str) -> tuple[int, float, int]:
    async with RawClient("127.0.0.1", port) as client:
        start = time.perf_counter()
        meta = {"synchronization_checkpoint": checkpoint}
        total = pages = 0
        while True:
            status, raw = await client.post(
                "/google/contact_sync", {"auth": {"access_token": TOKEN}, "meta": meta}
            )
            assert status == 200, raw[:300]
            page = orjson.loads(raw)
            pages += 1
            total += len(page["contacts"])
            if "next_offset" not in page:
                return total, time.perf_counter() - start, pages
            meta = {**meta, "offset": page["next_offset"]}


async def full_checkpoint(port: int) -> str:
    async with RawClient("127.0.0.1", port) as client:
        meta: dict[str, str] = {}
        while True:
            _, raw = await client.post(
                "/google/contact_sync", {"auth": {"access_token": TOKEN}, "meta": meta}
            )
            page = orjson.loads(raw)
            if "next_offset" not in page:
                return str(page["synchronization_checkpoint"])
            meta = {"offset": page["next_offset"]}


def run(contacts: int = 30_000, changes: int = 1000) -> None:
    sandbox = GoogleSandbox(token=TOKEN, latency=0.02, rate_limit=None, full_syncs=1000)
    started = time.perf_counter()
    sandbox.seed(contacts=contacts)
    print(f"Google sandbox: {contacts} contacts, +20 ms per call, seeded in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    bridge_port = free_port()
    with sandbox.serve() as base_url:
        host = urlsplit(base_url).hostname or "127.0.0.1"
        port = urlsplit(base_url).port or 80
        env = {"TALKDESK_BRIDGE_CONNECTORS": "google", "TALKDESK_BRIDGE_GOOGLE_BASE_URL": base_url}
        with server(env, ["serve", "--port", str(bridge_port)], bridge_port) as proc:
            direct, direct_s, calls = asyncio.run(direct_sync(host, port))
            total, elapsed, pages = asyncio.run(
                bridge_sync(bridge_port, "google", {"access_token": TOKEN})
            )
            direct2, direct2_s, _ = asyncio.run(direct_sync(host, port))
            checkpoint = asyncio.run(full_checkpoint(bridge_port))
            for resource in list(sandbox.live())[:changes]:
                sandbox.update_person(resource)
            changed, inc_s, inc_pages = asyncio.run(incremental(bridge_port, checkpoint))
            rss = peak_rss_mb(proc.pid)
    best = min(direct_s, direct2_s)
    assert total == direct == direct2 == contacts and changed == changes, (total, changed)
    print(f"full contact sync through the bridge: {total} contacts, {pages} pages, "
          f"{elapsed:.2f} s = {total / elapsed:,.0f} contacts/s")  # fmt: skip
    print(f"  baseline, direct client paging the same listing ({calls} calls of 1000): "
          f"{direct_s:.2f} s and {direct2_s:.2f} s; "
          f"bridge / direct = {elapsed / best:.2f}x")  # fmt: skip
    print(f"incremental run after {changes} changes: {changed} contacts, {inc_pages} pages, "
          f"{inc_s * 1000:.0f} ms")  # fmt: skip
    print(f"  bridge peak RSS: {rss:.0f} MB")
