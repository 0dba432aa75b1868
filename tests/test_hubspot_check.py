"""`talkdesk-bridge check` against the HubSpot connector on its sandbox: every check passes."""

from __future__ import annotations

from pathlib import Path

import httpx

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.checker import CheckOptions, run_check
from talkdesk_bridge.checker._store import lookup
from talkdesk_sandbox.hubspot import HubSpotSandbox
from tests.test_hubspot_support import TOKEN


async def test_hubspot_on_its_sandbox_passes_every_check(tmp_path: Path) -> None:
    fake = HubSpotSandbox(token=TOKEN)  # HubSpot's own limits: 190 per 10 s, 5 searches/s
    fake.seed(contacts=420)
    settings = Settings(connectors=["hubspot"], hubspot_base_url="https://api.hubapi.fake")
    app = create_app(settings, transports={"hubspot": httpx.ASGITransport(app=fake.app)})
    store = tmp_path / "talkdesk.db"
    async with app.router.lifespan_context(app):
        report = await run_check(
            CheckOptions(
                url="https://bridge.test/hubspot",
                auth={"access_token": TOKEN},
                actions=True,
                contacts_sample=6,
                store=store,
            ),
            transport=httpx.ASGITransport(app=app),
        )
    assert not report.failed, [f for _, f in report.failures()]
    assert report.counts["fail"] == 0
    assert report.stats["contacts_full"] >= 420
    assert report.stats["agents"] >= 4 and report.stats["actions"] == 4
    assert {
        "auth_validation", "contact_sync", "interaction_update", "agent_sync",
        "actions/create_note", "actions/log_call", "actions/create_ticket",
        "actions/create_contact",
    } <= set(report.latency)  # fmt: skip
    props = next(p for p in fake.live().values() if p.get("hs_calculated_phone_number"))
    found = lookup(store, props["hs_calculated_phone_number"])
    assert props["hs_object_id"] in {c["id"] for c in found}
