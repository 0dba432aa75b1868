"""`talkdesk-bridge check` against the Google connector on its sandbox: every check passes,
though the connector has no interactions and no agents."""

from __future__ import annotations

from pathlib import Path

import httpx

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.checker import CheckOptions, run_check
from talkdesk_bridge.checker._store import lookup
from talkdesk_sandbox.google import GoogleSandbox
from tests.test_google_support import TOKEN


async def test_google_on_its_sandbox_passes_every_check(tmp_path: Path) -> None:
    fake = GoogleSandbox(token=TOKEN, rate_limit=None)
    fake.seed(contacts=420)
    settings = Settings(connectors=["google"], google_base_url="https://people.fake")
    app = create_app(settings, transports={"google": httpx.ASGITransport(app=fake.app)})
    store = tmp_path / "talkdesk.db"
    async with app.router.lifespan_context(app):
        report = await run_check(
            CheckOptions(
                url="https://bridge.test/google",
                auth={"access_token": TOKEN},
                actions=True,
                contacts_sample=6,
                store=store,
            ),
            transport=httpx.ASGITransport(app=app),
        )
    assert not report.failed, [f for _, f in report.failures()]
    assert report.stats["contacts_full"] >= 420
    assert {"auth_validation", "contact_sync", "actions/create_contact"} <= set(report.latency)
    person = next(p for p in fake.live().values() if any(
        "canonicalForm" in n for n in p.get("phoneNumbers", [])))  # fmt: skip
    phone = next(n["canonicalForm"] for n in person["phoneNumbers"] if "canonicalForm" in n)
    assert person["resourceName"] in {c["id"] for c in lookup(store, phone)}
