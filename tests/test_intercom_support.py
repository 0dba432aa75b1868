"""Shared harness for the Intercom connector tests: the bridge in front of the fake Intercom.

The connector's real HTTP code talks to `talkdesk_sandbox.intercom` over `httpx.ASGITransport` (or a
real socket); time is a `ManualClock` shared by the fake and the connector, and the connector's
`sleep` advances that clock instead of sleeping, so rate-limit waits cost no real time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from talkdesk_bridge import Settings
from talkdesk_bridge.connectors.intercom import IntercomConnector
from talkdesk_sandbox.intercom import FakeIntercom, ManualClock
from tests._support import advancing_sleep, serve

T0 = 1_720_000_000  # 2024-07-03 10:46:40 in the fake's Europe/Lisbon workspace
TOKEN = "ic-secret-token-0123456789abcdef"


def intercom_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"connectors": ["intercom"], "intercom_prefetch_pages": 0}
    values.update(overrides)
    return Settings(**values)


def auth(token: str = TOKEN, **extra: str) -> dict[str, str]:
    return {"access_token": token, **extra}


class RecordingTransport(httpx.AsyncBaseTransport):
    """Delegates to the fake, remembering every URL the connector called."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await self.inner.handle_async_request(request)


@dataclass
class Bridge:
    client: httpx.AsyncClient
    connector: IntercomConnector
    transport: RecordingTransport
    sleeps: list[float] = field(default_factory=list)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/intercom/{path}", json=body)


@contextlib.asynccontextmanager
async def bridge(
    fake: FakeIntercom,
    clock: ManualClock | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AsyncIterator[Bridge]:
    """The app with an Intercom connector wired to `fake`, its lifespan running."""
    settings = intercom_settings(**overrides)
    recording = RecordingTransport(transport or httpx.ASGITransport(app=fake.app))
    sleeps: list[float] = []
    timing: dict[str, Any] = {}
    if clock is not None:
        timing = {"clock": clock, "monotonic": clock, "sleep": advancing_sleep(clock, sleeps)}
    connector = IntercomConnector(settings, transport=recording, **timing)
    async with serve(settings, connectors={"intercom": connector}) as client:
        yield Bridge(client, connector, recording, sleeps)


async def run_sync(
    b: Bridge,
    view: dict[str, dict[str, Any]],
    checkpoint: str | None = None,
    *,
    between_pages: Callable[[int], Awaitable[None] | None] | None = None,
    on_unavailable: Callable[[httpx.Response], None] | None = None,
    offsets: list[str] | None = None,
    max_pages: int = 10_000,
) -> tuple[str, int, int]:
    """Talkdesk's synchronizer: follow next_offset, upsert by id, re-send an offset after a 503.

    Returns (final checkpoint, pages, retried requests).
    """
    meta: dict[str, Any] = {}
    if checkpoint:
        meta["synchronization_checkpoint"] = checkpoint
    pages = retried = 0
    while pages < max_pages:
        r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
        if r.status_code == 503:
            assert r.headers["content-type"] == "application/json"
            assert int(r.headers.get("retry-after", "1")) >= 1
            retried += 1
            assert retried < 200, "the bridge keeps failing"
            if on_unavailable:
                on_unavailable(r)
            continue  # the same offset again, as Talkdesk retries
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        assert isinstance(body["synchronization_checkpoint"], str)
        ids = [c["id"] for c in body["contacts"]]
        assert len(ids) == len(set(ids)), "one contact twice in one page"
        for contact in body["contacts"]:
            assert contact["name"].strip(), contact
            view[contact["id"]] = contact
        if "next_offset" not in body:
            return body["synchronization_checkpoint"], pages, retried
        meta = {**meta, "offset": body["next_offset"]}
        if offsets is not None:
            offsets.append(body["next_offset"])
        if between_pages is not None:
            result = between_pages(pages)
            if result is not None:
                await result
    raise AssertionError("the run did not end")


async def live_contacts(fake: FakeIntercom) -> dict[str, dict[str, Any]]:
    """Every live contact, read straight from the fake's (unlagged) list endpoint."""
    found: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {fake.token}", "Intercom-Version": "2.14"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url="https://api.intercom.io"
    ) as c:
        cursor = None
        while True:
            params: dict[str, Any] = {"per_page": 150}
            if cursor:
                params["starting_after"] = cursor
            r = await c.get("/contacts", params=params, headers=headers)
            assert r.status_code == 200, r.text
            body = r.json()
            found.update({contact["id"]: contact for contact in body["data"]})
            nxt = body["pages"].get("next")
            if not nxt:
                return found
            cursor = nxt["starting_after"]


def test_harness_settings_default_to_no_prefetch() -> None:
    assert intercom_settings().intercom_prefetch_pages == 0
    assert intercom_settings(intercom_prefetch_pages=3).intercom_prefetch_pages == 3
