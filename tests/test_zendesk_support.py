"""Shared helpers for the Zendesk tests: the bridge in front of the Zendesk sandbox, with one
manual clock for both (rate-limit waits advance it instead of sleeping)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.connectors.zendesk import ZendeskConnector
from talkdesk_sandbox._clock import ManualClock
from talkdesk_sandbox.zendesk import ZendeskSandbox

T0 = 1_780_000_000.0


@dataclass
class Bridge:
    client: httpx.AsyncClient
    sandbox: ZendeskSandbox
    connector: ZendeskConnector
    slept: list[float]
    clock: ManualClock | None = None

    async def post(self, endpoint: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/zendesk/{endpoint}", json=body)

    def auth(self, **override: str) -> dict[str, str]:
        return {**self.sandbox.credentials(), **override}


@contextlib.asynccontextmanager
async def bridge(
    sandbox: ZendeskSandbox, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[Bridge]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if clock is not None:
            clock.advance(seconds)

    settings = Settings(**{"connectors": ["zendesk"], **overrides})
    kwargs: dict[str, Any] = {"sleep": sleep}
    if clock is not None:
        kwargs["clock"] = clock
    connector = ZendeskConnector(settings, transport=httpx.ASGITransport(app=sandbox.app), **kwargs)
    app = create_app(settings, connectors={"zendesk": connector})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://bridge.test") as c:
            yield Bridge(c, sandbox, connector, slept, clock)


async def run_sync(
    b: Bridge, view: dict[str, dict[str, Any]], checkpoint: str | None, *, between: Any = None
) -> str:
    """One whole run as Talkdesk makes it (re-sending a page after a 503); `between(n)` runs
    after page n. Returns the run's checkpoint."""
    meta: dict[str, Any] = {"synchronization_checkpoint": checkpoint} if checkpoint else {}
    pages = 0
    for _ in range(5000):
        r = await b.post("contact_sync", {"auth": b.auth(), "meta": meta})
        if r.status_code == 503:
            # Talkdesk retries the same page once Retry-After has passed.
            if b.clock is not None:
                b.clock.advance(float(r.headers.get("retry-after", "1")))
            continue
        assert r.status_code == 200, r.text
        body = r.json()
        for contact in body["contacts"]:
            view[contact["id"]] = contact
        pages += 1
        if between is not None:
            between(pages)
        if "next_offset" not in body:
            return str(body["synchronization_checkpoint"])
        meta = {
            "offset": body["next_offset"],
            **({"synchronization_checkpoint": checkpoint} if checkpoint else {}),
        }
    raise AssertionError("the sync never ended")
