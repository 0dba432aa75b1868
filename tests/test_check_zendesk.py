"""`talkdesk-bridge check` against the Zendesk connector on its sandbox: every check passes."""

from __future__ import annotations

from pathlib import Path

import httpx

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.checker import CheckOptions, run_check
from talkdesk_bridge.checker._store import lookup
from talkdesk_sandbox.zendesk import ZendeskSandbox


async def test_zendesk_on_its_sandbox_passes_every_check(tmp_path: Path) -> None:
    sandbox = ZendeskSandbox(rate_limit=None, export_rate_limit=None)
    sandbox.seed(contacts=420)
    settings = Settings(connectors=["zendesk"], zendesk_base_url="https://acme.zendesk.fake")
    app = create_app(settings, transports={"zendesk": httpx.ASGITransport(app=sandbox.app)})
    store = tmp_path / "talkdesk.db"
    async with app.router.lifespan_context(app):
        report = await run_check(
            CheckOptions(
                url="https://bridge.test/zendesk",
                auth=sandbox.credentials(),
                actions=True,
                contacts_sample=6,
                store=store,
            ),
            transport=httpx.ASGITransport(app=app),
        )
    assert not report.failed, [f for _, f in report.failures()]
    assert report.counts["fail"] == 0
    assert report.stats["contacts_full"] >= 420
    assert report.stats["agents"] >= 2 and report.stats["actions"] == 3
    assert {"actions/create_ticket", "actions/add_note", "actions/create_contact"} <= set(
        report.latency
    )
    with_phone = next(u for u in sandbox.live_end_users().values() if u.get("phone"))
    assert with_phone["id"] in {c["id"] for c in lookup(store, with_phone["phone"])}
