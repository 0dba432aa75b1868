"""Shared harness for the Salesforce tests: the bridge in front of the Salesforce sandbox.

The connector's real HTTP code talks to `talkdesk_sandbox.salesforce` over
`httpx.ASGITransport`. The sandbox runs on a `ManualClock` (its `Date` header is the server time
the connector's sync windows use); the connector's `sleep` advances that clock instead of
sleeping, so retry waits cost no real time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge._phones import normalize_phones
from talkdesk_bridge.connectors.salesforce import SalesforceConnector
from talkdesk_sandbox.salesforce import ManualClock, SalesforceSandbox

T0 = 1_760_000_000
BASE = "https://sf.sandbox.test"


def sf_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "connectors": ["salesforce"],
        "salesforce_base_url": BASE,
        "salesforce_read_ahead": False,
    }
    values.update(overrides)
    return Settings(**values)


def advancing_sleep(clock: ManualClock, sleeps: list[float]) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    return sleep


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@dataclass
class Bridge:
    client: httpx.AsyncClient
    connector: SalesforceConnector
    sandbox: SalesforceSandbox
    transport: Recording
    sleeps: list[float] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return self.sandbox.credentials()

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/salesforce/{path}", json=body)


@contextlib.asynccontextmanager
async def bridge(
    sandbox: SalesforceSandbox, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[Bridge]:
    settings = sf_settings(**overrides)
    transport = Recording(httpx.ASGITransport(app=sandbox.app))
    sleeps: list[float] = []
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["sleep"] = advancing_sleep(clock, sleeps)
    connector = SalesforceConnector(settings, transport=transport, **kwargs)
    app = create_app(settings, connectors={"salesforce": connector})
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://bridge.test"
        ) as client,
    ):
        yield Bridge(client, connector, sandbox, transport, sleeps)


async def run_sync(
    b: Bridge,
    view: dict[str, dict[str, Any]],
    checkpoint: str | None = None,
    *,
    between: Callable[[int], None] | None = None,
    max_pages: int = 500,
) -> str:
    """One Talkdesk run: pages until no next_offset, retrying a 503/504 with the same offset.
    `view` is Talkdesk's store (upsert by id). Returns the run's final checkpoint."""
    meta: dict[str, Any] = {}
    if checkpoint:
        meta["synchronization_checkpoint"] = checkpoint
    pages = 0
    retries = 0
    while True:
        r = await b.post("contact_sync", {"auth": b.auth, "meta": meta})
        if r.status_code in (503, 504):
            retries += 1
            assert retries < 50, r.text
            continue
        assert r.status_code == 200, r.text
        body = r.json()
        for contact in body["contacts"]:
            view[contact["id"]] = contact
        pages += 1
        assert pages < max_pages, "the run does not end"
        if not body.get("next_offset"):
            return str(body["synchronization_checkpoint"])
        meta = {"offset": body["next_offset"]}
        if checkpoint:
            meta["synchronization_checkpoint"] = checkpoint
        if between is not None:
            between(pages)


def expected_people(sandbox: SalesforceSandbox) -> dict[str, dict[str, Any]]:
    """What Talkdesk must hold: every live Contact and unconverted Lead, computed from the
    org's rows independently of the connector's mapping."""
    org = sandbox.org
    out: dict[str, dict[str, Any]] = {}
    for row in org.live("Contact"):
        account = org.stores["Account"].get(row["AccountId"]) if row.get("AccountId") else None
        out[row["Id"]] = _person(row, account["Name"] if account else None, contact=True)
    for row in org.live("Lead"):
        if not row.get("IsConverted"):
            out[row["Id"]] = _person(row, row.get("Company"), contact=False)
    return out


def _person(row: dict[str, Any], company: str | None, *, contact: bool) -> dict[str, Any]:
    fields = (
        ("Phone", "MobilePhone", "HomePhone", "OtherPhone") if contact else ("Phone", "MobilePhone")
    )
    name = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
    return {
        "name": name,
        "emails": [row["Email"]] if row.get("Email") else [],
        "phones": normalize_phones([row.get(f) for f in fields]),
        "company": company,
        "title": row.get("Title"),
    }


def held(contact: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": contact["name"],
        "emails": contact.get("emails") or [],
        "phones": contact.get("phones") or [],
        "company": contact.get("company"),
        "title": contact.get("title"),
    }


def differences(
    sandbox: SalesforceSandbox, view: dict[str, dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """(live people missing from the view, people whose view is outdated)."""
    expected = expected_people(sandbox)
    missing = sorted(set(expected) - set(view))
    stale = sorted(i for i, e in expected.items() if i in view and held(view[i]) != e)
    return missing, stale
