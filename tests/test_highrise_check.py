"""`talkdesk-bridge check` against the Highrise connector on its sandbox: every check passes."""

from __future__ import annotations

from pathlib import Path

import httpx

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.checker import CheckOptions, run_check
from talkdesk_bridge.checker._store import lookup
from talkdesk_sandbox.highrise import HighriseSandbox
from tests.test_highrise_support import TOKEN, auth, expected


async def test_highrise_on_its_sandbox_passes_every_check(tmp_path: Path) -> None:
    fake = HighriseSandbox(token=TOKEN, rate_limit=None, email_search_limit=None)
    fake.seed(contacts=420)
    settings = Settings(connectors=["highrise"])
    app = create_app(settings, transports={"highrise": httpx.ASGITransport(app=fake.app)})
    store = tmp_path / "talkdesk.db"
    async with app.router.lifespan_context(app):
        report = await run_check(
            CheckOptions(
                url="https://bridge.test/highrise",
                auth=auth(),
                actions=True,
                contacts_sample=6,
                store=store,
            ),
            transport=httpx.ASGITransport(app=app),
        )
    assert not report.failed, [f for _, f in report.failures()]
    assert report.stats["contacts_full"] >= 420
    assert {"auth_validation", "contact_sync", "interaction_update", "agent_sync"} <= set(
        report.latency
    )
    pid, person = next((k, p) for k, p in fake.live().items() if p["phones"])
    assert pid in {c["id"] for c in lookup(store, expected(person)["phones"][0])}
