"""`talkdesk-bridge check` against the Salesforce connector on its sandbox: every check passes."""

from __future__ import annotations

from pathlib import Path

import httpx

from talkdesk_bridge import create_app
from talkdesk_bridge.checker import CheckOptions, run_check
from talkdesk_sandbox.salesforce import SalesforceSandbox
from tests.test_salesforce_support import BASE, sf_settings


async def test_salesforce_on_its_sandbox_passes_every_check(tmp_path: Path) -> None:
    sandbox = SalesforceSandbox()
    sandbox.seed(contacts=420, seed=3)
    settings = sf_settings(salesforce_base_url=BASE)
    app = create_app(settings, transports={"salesforce": httpx.ASGITransport(app=sandbox.app)})
    async with app.router.lifespan_context(app):
        report = await run_check(
            CheckOptions(
                url="https://bridge.test/salesforce",
                auth=sandbox.credentials(),
                actions=True,
                contacts_sample=6,
                store=tmp_path / "talkdesk.db",
            ),
            transport=httpx.ASGITransport(app=app),
        )
    assert not report.failed, [f for _, f in report.failures()]
    assert report.counts["fail"] == 0
    assert report.stats["contacts_full"] >= 420
    assert report.stats["agents"] >= 5 and report.stats["actions"] == 3
    assert set(report.latency) >= {
        "auth_validation",
        "contact_sync",
        "interaction_update",
        "agent_sync",
        "actions/log_call",
        "actions/create_case",
        "actions/create_contact",
    }
