"""Shared harness for the Google connector tests: the bridge in front of the People API sandbox.

The connector's real HTTP code talks to `talkdesk_sandbox.google` over `httpx.ASGITransport`;
time is a `ManualClock` shared by the sandbox and the connector, whose `sleep` advances it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from talkdesk_bridge import Settings
from talkdesk_bridge._phones import normalize_phone
from talkdesk_bridge.connectors.google import GoogleConnector
from talkdesk_sandbox._clock import ManualClock
from talkdesk_sandbox.google import GoogleSandbox
from tests._support import ClockedBridge, clocked_bridge

T0 = 1_720_000_000.0
TOKEN = "ya29.test-token-0123456789abcdef"


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"access_token": token}


Bridge = ClockedBridge


def sandbox(clock: ManualClock, **options: Any) -> GoogleSandbox:
    options.setdefault("rate_limit", None)
    return GoogleSandbox(token=TOKEN, clock=clock, **options)


@contextlib.asynccontextmanager
async def bridge(
    fake: GoogleSandbox,
    clock: ManualClock,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AsyncIterator[Bridge]:
    settings = Settings(**{"connectors": ["google"], **overrides})
    transport = transport or httpx.ASGITransport(app=fake.app)
    async with clocked_bridge("google", GoogleConnector, settings, clock, transport) as b:
        yield b


async def run_sync(
    b: Bridge,
    view: dict[str, dict[str, Any]],
    checkpoint: str | None = None,
    *,
    between_pages: Callable[[int], None] | None = None,
    stop_after: int | None = None,
) -> tuple[str, int, int]:
    """Talkdesk's synchronizer: follow next_offset, upsert by id, re-send after a 503.
    Returns (last checkpoint received, pages, 503s)."""
    meta: dict[str, Any] = {}
    if checkpoint:
        meta["synchronization_checkpoint"] = checkpoint
    pages = retried = 0
    while True:
        r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
        if r.status_code == 503:
            wait = int(r.headers["retry-after"])
            assert wait >= 1
            b.clock.advance(wait)  # Talkdesk comes back when told
            retried += 1
            assert retried < 100, "the bridge keeps failing"
            continue
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        for contact in body["contacts"]:
            assert contact["name"].strip()
            view[contact["id"]] = contact
        if "next_offset" not in body or pages == stop_after:
            return body["synchronization_checkpoint"], pages, retried
        meta = {**meta, "offset": body["next_offset"]}
        if between_pages is not None:
            between_pages(pages)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Delegates to the sandbox, remembering every URL the connector called."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await self.inner.handle_async_request(request)


def expected(person: dict[str, Any]) -> dict[str, Any]:
    """What Talkdesk must hold for a live Google contact (computed from the sandbox's data)."""
    name = person["names"][0]["displayName"]
    phones = []
    for p in person.get("phoneNumbers", []):
        value = p.get("canonicalForm") or normalize_phone(p["value"])
        if value not in phones:
            phones.append(value)
    emails = [e["value"] for e in person.get("emailAddresses", [])]
    return {"name": name, "emails": emails, "phones": phones}


def held(contact: dict[str, Any]) -> dict[str, Any]:
    return {k: contact.get(k, []) for k in ("name", "emails", "phones")}


def assert_complete(fake: GoogleSandbox, view: dict[str, dict[str, Any]]) -> int:
    live = fake.live()
    missing = sorted(set(live) - set(view))
    assert not missing, f"{len(missing)} live contacts never reached Talkdesk"
    stale = [rid for rid, p in live.items() if held(view[rid]) != expected(p)]
    assert not stale, f"{len(stale)} contacts hold outdated data, e.g. {stale[:3]}"
    return len(live)
