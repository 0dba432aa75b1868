"""Shared harness for the HubSpot connector tests: the bridge in front of the HubSpot sandbox.

The connector's real HTTP code talks to `talkdesk_sandbox.hubspot` over `httpx.ASGITransport`;
time is a `ManualClock` shared by the sandbox and the connector, whose `sleep` advances it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from talkdesk_bridge import Settings
from talkdesk_bridge._phones import normalize_phone
from talkdesk_bridge.connectors.hubspot import HubSpotConnector
from talkdesk_sandbox._clock import ManualClock
from talkdesk_sandbox.hubspot import HubSpotSandbox
from tests._support import ClockedBridge, clocked_bridge

T0 = 1_720_000_000.0
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"access_token": token}


Bridge = ClockedBridge


def sandbox(clock: ManualClock, **options: Any) -> HubSpotSandbox:
    options.setdefault("rate_limit", None)
    return HubSpotSandbox(token=TOKEN, clock=clock, **options)


@contextlib.asynccontextmanager
async def bridge(
    fake: HubSpotSandbox,
    clock: ManualClock,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AsyncIterator[Bridge]:
    settings = Settings(**{"connectors": ["hubspot"], **overrides})
    transport = transport or httpx.ASGITransport(app=fake.app)
    async with clocked_bridge("hubspot", HubSpotConnector, settings, clock, transport) as b:
        yield b


async def run_sync(
    b: Bridge,
    view: dict[str, dict[str, Any]],
    checkpoint: str | None = None,
    *,
    between_pages: Callable[[int], None] | None = None,
) -> tuple[str, int, int]:
    """Talkdesk's synchronizer: follow next_offset, upsert by id, re-send after a 503.
    Returns (last checkpoint received, pages, 503s)."""
    meta: dict[str, Any] = {}
    if checkpoint:
        meta["synchronization_checkpoint"] = checkpoint
    pages = retried = 0
    while True:
        r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
        if r.status_code in (502, 503, 504):
            b.clock.advance(float(r.headers.get("retry-after", "1")))  # Talkdesk comes back
            retried += 1
            assert retried < 200, "the bridge keeps failing"
            continue
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        for contact in body["contacts"]:
            assert contact["name"].strip()
            view[contact["id"]] = contact
        if "next_offset" not in body:
            return body["synchronization_checkpoint"], pages, retried
        meta = {**meta, "offset": body["next_offset"]}
        if between_pages is not None:
            between_pages(pages)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Delegates to the sandbox, remembering every request the connector sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


def expected(props: dict[str, Any]) -> dict[str, Any]:
    """What Talkdesk must hold for a live HubSpot contact (from the sandbox's own data)."""
    name = " ".join(filter(None, (props.get("firstname"), props.get("lastname"))))
    emails = [props["email"]] if props.get("email") else []
    emails += [e for e in (props.get("hs_additional_emails") or "").split(";") if e]
    phones = []
    for calc, typed in (("hs_calculated_phone_number", "phone"),
                        ("hs_calculated_mobile_number", "mobilephone")):  # fmt: skip
        value = props.get(calc) or (normalize_phone(props[typed]) if props.get(typed) else None)
        if value and value not in phones:
            phones.append(value)
    return {"name": name or (emails[0] if emails else ""), "emails": list(dict.fromkeys(emails)),
            "phones": phones}  # fmt: skip


def held(contact: dict[str, Any]) -> dict[str, Any]:
    return {k: contact.get(k, []) for k in ("name", "emails", "phones")}


def missing_or_stale(fake: HubSpotSandbox, view: dict[str, dict[str, Any]]) -> tuple[int, int]:
    live = fake.live()
    missing = [cid for cid in live if cid not in view]
    stale = [cid for cid, p in live.items() if cid in view and held(view[cid]) != expected(p)]
    return len(missing), len(stale)


def assert_complete(fake: HubSpotSandbox, view: dict[str, dict[str, Any]]) -> int:
    live = fake.live()
    missing = sorted(set(live) - set(view), key=int)
    assert not missing, f"{len(missing)} live contacts never reached Talkdesk: {missing[:5]}"
    stale = [cid for cid, p in live.items() if held(view[cid]) != expected(p)]
    assert not stale, f"{len(stale)} contacts hold outdated data, e.g. {stale[:3]}"
    return len(live)
