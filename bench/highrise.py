"""`python -m bench highrise`: a full Highrise people sync (20,000 people, listing pages of
500, 20 ms added to every call) through the bridge vs a direct client paging the same
`since=` listing by offset in the same run, then an incremental run after 1,000 changes.

The sandbox runs in this process's server thread (the benchmark drives its writes); the
bridge runs as `talkdesk-bridge serve` in its own process.
"""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import urlencode, urlsplit

import orjson
from defusedxml.ElementTree import fromstring

from bench._client import RawClient
from bench._common import bridge_sync, free_port, peak_rss_mb, server
from talkdesk_sandbox.highrise import HighriseSandbox

__all__ = ["run"]

TOKEN = "hr-bench-token-0123456789"
AUTH = {"account": "acme", "api_token": TOKEN}


async def direct_sync(host: str, port: int) -> tuple[int, float, int]:
    """The floor: the same listing by offset, page after page, parsed, nothing else done (it
    would lose people if anything changed meanwhile)."""
    basic = base64.b64encode(f"{TOKEN}:X".encode()).decode()
    async with RawClient(host, port, {"Authorization": f"Basic {basic}"}) as client:
        start = time.perf_counter()
        total = calls = 0
        while True:
            query = urlencode({"since": "19700101000000", "n": total})
            status, raw = await client.request("GET", "/people.xml?" + query)
            assert status == 200, raw[:200]
            calls += 1
            people = len(fromstring(raw, forbid_dtd=True))
            total += people
            if not people:
                return total, time.perf_counter() - start, calls


async def incremental(port: int, checkpoint: str) -> tuple[int, float, int]:
    async with RawClient("127.0.0.1", port) as client:
        start = time.perf_counter()
        meta = {"synchronization_checkpoint": checkpoint}
        total = pages = 0
        while True:
            status, raw = await client.post("/highrise/contact_sync", {"auth": AUTH, "meta": meta})
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
            _, raw = await client.post("/highrise/contact_sync", {"auth": AUTH, "meta": meta})
            page = orjson.loads(raw)
            if "next_offset" not in page:
                return str(page["synchronization_checkpoint"])
            meta = {"offset": page["next_offset"]}


def run(contacts: int = 20_000, changes: int = 1000) -> None:
    sandbox = HighriseSandbox(token=TOKEN, latency=0.02, rate_limit=None)
    started = time.perf_counter()
    sandbox.seed(contacts=contacts)
    print(f"Highrise sandbox: {contacts} people, +20 ms per call, seeded in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    bridge_port = free_port()
    with sandbox.serve() as base_url:
        host = urlsplit(base_url).hostname or "127.0.0.1"
        port = urlsplit(base_url).port or 80
        env = {
            "TALKDESK_BRIDGE_CONNECTORS": "highrise",
            "TALKDESK_BRIDGE_HIGHRISE_BASE_URL": base_url,
        }
        with server(env, ["serve", "--port", str(bridge_port)], bridge_port) as proc:
            direct, direct_s, calls = asyncio.run(direct_sync(host, port))
            total, elapsed, pages = asyncio.run(bridge_sync(bridge_port, "highrise", AUTH))
            direct2, direct2_s, _ = asyncio.run(direct_sync(host, port))
            checkpoint = asyncio.run(full_checkpoint(bridge_port))
            bridge_calls = sandbox.call_count("GET", "/people.xml")
            for pid in list(sandbox.live())[:changes]:
                sandbox.update_person(pid)
            changed, inc_s, inc_pages = asyncio.run(incremental(bridge_port, checkpoint))
            rss = peak_rss_mb(proc.pid)
    best = min(direct_s, direct2_s)
    assert total == direct == direct2 == contacts and changed >= changes, (total, changed)
    print(f"full contact sync through the bridge: {total} people, {pages} pages, "
          f"{elapsed:.2f} s = {total / elapsed:,.0f} people/s")  # fmt: skip
    print(f"  baseline, direct client paging the same listing by offset ({calls} calls): "
          f"{direct_s:.2f} s and {direct2_s:.2f} s; "
          f"bridge / direct = {elapsed / best:.2f}x")  # fmt: skip
    print(f"  listing calls in all (2 direct runs, 2 bridge runs): {bridge_calls}")
    print(f"incremental run after {changes} changes: {changed} people, {inc_pages} pages, "
          f"{inc_s * 1000:.0f} ms")  # fmt: skip
    print(f"  bridge peak RSS: {rss:.0f} MB")
