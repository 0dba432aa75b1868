"""`talkdesk-bridge check` against the Intercom connector on its fake: every check passes."""

from __future__ import annotations

from pathlib import Path

import httpx

from talkdesk_bridge import create_app
from talkdesk_bridge.checker import CheckOptions, run_check
from talkdesk_bridge.checker._store import lookup
from talkdesk_sandbox.intercom import FakeIntercom
from tests.test_intercom_support import TOKEN, intercom_settings


async def test_intercom_on_its_fake_passes_every_check(tmp_path: Path) -> None:
    fake = FakeIntercom(token=TOKEN, rate_limit=(100_000, 10))
    contacts = fake.seed_contacts(420)
    for contact in contacts[:12]:
        fake.add_conversation(contact["id"])
        fake.add_ticket(contact["id"])
    settings = intercom_settings(intercom_base_url="https://intercom.fake")
    app = create_app(settings, transports={"intercom": httpx.ASGITransport(app=fake.app)})
    store = tmp_path / "talkdesk.db"
    async with app.router.lifespan_context(app):
        report = await run_check(
            CheckOptions(
                url="https://bridge.test/intercom",
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
    assert report.stats["agents"] >= 1 and report.stats["actions"] == 3
    assert set(report.latency) >= {
        "auth_validation",
        "contact_sync",
        "interaction_update",
        "agent_sync",
        "actions/create_note",
        "actions/create_ticket",
        "actions/create_contact",
    }
    # Caller identification against what Talkdesk stored, as Talkdesk would do it.
    with_phone = next(c for c in contacts if c.get("phone"))
    found = lookup(store, with_phone["phone"])
    assert with_phone["id"] in {c["id"] for c in found}
