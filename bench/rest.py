"""`python -m bench rest`: a full contact sync of 50,000 contacts from each sample company API
of the `rest` connector (page numbers, a body cursor, keyset `Link` headers; 20 ms added to
every call) through the bridge vs a direct client paging the same listing in the same run.

The sandbox runs in this process's server thread; the bridge runs as `talkdesk-bridge serve`
in its own process, with the style's mapping file minus its client-side rate limit.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from bench._client import RawClient
from bench._common import bridge_sync, free_port, peak_rss_mb, server
from talkdesk_sandbox.rest import MAPPINGS, RestSandbox

__all__ = ["run"]

TOKEN = "acme-bench-token-0123456789"


def _headers(style: str) -> dict[str, str]:
    if style == "cursor":
        return {"X-Api-Key": TOKEN}
    if style == "keyset":
        return {"Authorization": "Basic " + base64.b64encode(f"acme:{TOKEN}".encode()).decode()}
    return {"Authorization": f"Bearer {TOKEN}"}


async def direct_sync(style: str, host: str, port: int) -> tuple[int, float, int]:
    """The floor: the style's own paging, page after page, parsed, nothing else done (page
    numbers would lose contacts if anything changed meanwhile)."""
    async with RawClient(host, port, _headers(style)) as client:
        start = time.perf_counter()
        total = calls = 0
        params: dict[str, Any] = {}
        while True:
            if style == "pages":
                params = {"updated_since": "1970-01-01T00:00:00Z", "sort": "updated_at",
                          "per_page": 100, "page": calls + 1}  # fmt: skip
                path = "/api/v1/contacts"
            elif style == "cursor":
                params = {"limit": 200, **params}
                path = "/api/v1/customers"
            else:
                params = {"limit": 100, **params}
                path = "/api/v1/people"
            status, raw = await client.request("GET", f"{path}?{urlencode(params)}")
            assert status == 200, raw[:200]
            calls += 1
            body = orjson.loads(raw)
            if style == "pages":
                page = body["data"]
                done = len(page) < 100
            elif style == "cursor":
                page = body["results"]
                done = not body["next_cursor"]
                params = {"cursor": body["next_cursor"]}
            else:
                page = body
                done = len(page) < 100
                if page:  # what the Link header says: after the last (time, id)
                    params = {"updated_after": page[-1]["updated"], "after_id": page[-1]["id"]}
            total += len(page)
            if done:
                return total, time.perf_counter() - start, calls


def _mapping(style: str, folder: Path) -> Path:
    lines = MAPPINGS[style].read_text().splitlines()
    path = folder / f"{style}.toml"
    path.write_text("\n".join(line for line in lines if not line.startswith("rate_limit")))
    return path


def run(contacts: int = 50_000) -> None:
    for style in ("pages", "cursor", "keyset"):
        sandbox = RestSandbox(style=style, token=TOKEN, latency=0.02, rate_limit=None)
        started = time.perf_counter()
        sandbox.seed(contacts=contacts)
        print(f"{style} sample API: {contacts} contacts, +20 ms per call, seeded in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        bridge_port = free_port()
        with tempfile.TemporaryDirectory() as tmp, sandbox.serve() as base_url:
            host = urlsplit(base_url).hostname or "127.0.0.1"
            port = urlsplit(base_url).port or 80
            env = {
                "TALKDESK_BRIDGE_CONNECTORS": "rest",
                "TALKDESK_BRIDGE_REST_MAPPING": str(_mapping(style, Path(tmp))),
                "TALKDESK_BRIDGE_REST_BASE_URL": base_url + "/api/v1",
            }
            with server(env, ["serve", "--port", str(bridge_port)], bridge_port) as proc:
                direct, direct_s, calls = asyncio.run(direct_sync(style, host, port))
                sandbox.reset_calls()
                auth = sandbox.credentials()
                total, elapsed, pages = asyncio.run(bridge_sync(bridge_port, "rest", auth))
                bridge_calls = sandbox.call_count("GET")
                direct2, direct2_s, _ = asyncio.run(direct_sync(style, host, port))
                rss = peak_rss_mb(proc.pid)
        best = min(direct_s, direct2_s)
        assert total == direct == direct2 == contacts, (total, direct, direct2)
        print(f"  through the bridge: {total} contacts, {pages} pages, {bridge_calls} calls, "
              f"{elapsed:.2f} s = {total / elapsed:,.0f} contacts/s")  # fmt: skip
        print(f"  direct client, same listing ({calls} calls): {direct_s:.2f} s and "
              f"{direct2_s:.2f} s; bridge / direct = {elapsed / best:.2f}x; "
              f"bridge peak RSS {rss:.0f} MB")  # fmt: skip
