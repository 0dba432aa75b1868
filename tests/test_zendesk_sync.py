"""Zendesk contact sync on the feed engine against the Zendesk sandbox: zero loss.

Talkdesk's view is an upsert by id of every contact it receives. The export orders changes by
whole-second `updated_at` (many ties), shows edits made mid-walk again later in the walk,
withholds its last minute, answers empty pages before the end, and shows a late commit under
its own (earlier) `updated_at`, i.e. behind a cursor that already passed it. Checkpoints that
trail each run's start by the safety window cover that; the newest cursor does not.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from talkdesk_bridge._phones import normalize_phones
from talkdesk_bridge.sync import FeedSync
from talkdesk_sandbox._clock import ManualClock
from talkdesk_sandbox.zendesk import ZendeskSandbox
from tests.test_zendesk_support import T0, bridge, run_sync

SETTINGS = {"zendesk_export_page_size": 200, "zendesk_sync_page_size": 200}


def expected(user: dict[str, Any]) -> dict[str, Any]:
    """What Talkdesk must hold for a live end-user (computed from the sandbox's record)."""
    emails: dict[str, str] = {}
    for kind, value in user["identities"]:
        if kind == "email":
            emails.setdefault(value.lower(), value)
    phones = [user["phone"]] + [v for k, v in user["identities"] if k == "phone_number"]
    return {
        "name": user["name"],
        "emails": sorted(emails.values()),
        "phones": sorted(normalize_phones(phones)),
    }


def held(contact: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": contact["name"],
        "emails": sorted(contact.get("emails") or []),
        "phones": sorted(contact.get("phones") or []),
    }


def gaps(sandbox: ZendeskSandbox, view: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    live = sandbox.live_end_users()
    missing = sorted(set(live) - set(view))
    stale = sorted(uid for uid, u in live.items() if uid in view and held(view[uid]) != expected(u))
    return missing, stale


class Writer:
    """Writes while Talkdesk pages: creates, renames (mid-walk edits), soft deletes, new
    identities, suspensions, merges, and late commits that reach the export 5 minutes late."""

    def __init__(self, sandbox: ZendeskSandbox, clock: ManualClock, seed: int = 7) -> None:
        self.sandbox, self.clock = sandbox, clock
        self.rng = random.Random(seed)
        self.late: list[str] = []
        self.pages = 0

    def __call__(self, page: int) -> None:
        if page > 14:
            return
        rng, sandbox = self.rng, self.sandbox
        users = list(sandbox.live_end_users())
        for _ in range(6):
            uid = rng.choice(users)
            roll = rng.random()
            if roll < 0.25:
                sandbox.update_user(uid, name=f"Renamed {uid} p{page}")
            elif roll < 0.4:
                sandbox.add_identity(uid, "email", f"second.{uid}.{page}@example.org")
            elif roll < 0.5:
                sandbox.add_identity(uid, "phone_number", f"+1415555{rng.randrange(10000):04d}")
            elif roll < 0.58:
                sandbox.delete_user(uid)
            elif roll < 0.62:
                sandbox.update_user(uid, suspended=True)
            elif roll < 0.66:
                winner = rng.choice(users)
                if winner != uid and winner in sandbox.live_end_users():
                    sandbox.merge_users(uid, winner)
            else:
                sandbox.add_user(
                    f"New {page}-{rng.randrange(10**6)}",
                    email=None,
                    phone=f"+4420794{rng.randrange(100000):05d}",
                )
        # A late commit: stamped now, shown by the export only 5 minutes on.
        uid = rng.choice(users)
        sandbox.update_user(uid, name=f"Late {uid} p{page}", delay=300)
        self.late.append(uid)
        # Several writes in one second, then time moves on.
        self.clock.advance(rng.choice((1, 5, 20)))


def scenario(seed: int = 3) -> tuple[ZendeskSandbox, ManualClock]:
    clock = ManualClock(T0)
    sandbox = ZendeskSandbox(clock=clock, lag=20)
    sandbox.seed(contacts=2500, seed=seed)  # 20% of them share one second
    sandbox.random_failures(0.1, statuses=(503,), seed=seed, path_prefix="/api/v2/incremental")
    sandbox.rate_limit_burst(3)
    return sandbox, clock


async def test_zero_loss_under_writes_ties_late_commits_503s_and_429s() -> None:
    sandbox, clock = scenario()
    async with bridge(sandbox, clock, **SETTINGS) as b:
        view: dict[str, dict[str, Any]] = {}
        writer = Writer(sandbox, clock)
        checkpoint = await run_sync(b, view, None, between=writer)
        assert sandbox.call_count("GET", "/api/v2/incremental") > 12
        # The export's own bucket paced the walk; the account's general budget was not used.
        assert b.slept and sandbox.call_count("GET", "/api/v2/organizations") <= 1
        clock.advance(400)  # writes have stopped; late commits and lag have landed
        sandbox.reset_faults()
        checkpoint = await run_sync(b, view, checkpoint)
        missing, stale = gaps(sandbox, view)
        assert not missing, f"{len(missing)} live end-users never reached Talkdesk"
        assert not stale, f"{len(stale)} end-users hold outdated data, e.g. {stale[:3]}"
        # Late commits arrived, in their late version (the second run re-read the window).
        live = sandbox.live_end_users()
        assert any(view[u]["name"].startswith("Late") for u in writer.late if u in live)
        assert str(sandbox.admin_id) not in view and str(sandbox.agent_id) not in view
        # A further run after quiet time changes nothing and still ends.
        clock.advance(3600)
        before = {k: held(v) for k, v in view.items()}
        await run_sync(b, view, checkpoint)
        assert {k: held(v) for k, v in view.items()} == before


async def test_the_newest_cursor_as_checkpoint_loses_late_commits() -> None:
    """The obvious design: the export's last cursor as checkpoint, no safety window."""
    sandbox, clock = scenario()
    async with bridge(sandbox, clock, **SETTINGS) as b:
        engine = b.connector.sync
        b.connector.sync = FeedSync(
            engine.source, name="zendesk", page_size=200, safety_window=0, clock=clock
        )
        view: dict[str, dict[str, Any]] = {}
        writer = Writer(sandbox, clock)
        checkpoint = await run_sync(b, view, None, between=writer)
        clock.advance(400)
        sandbox.reset_faults()
        await run_sync(b, view, checkpoint)
        missing, stale = gaps(sandbox, view)
        lost = set(stale) | set(missing)
        assert lost & set(writer.late), "the naive design should lose late commits"


@pytest.mark.parametrize("retry_after", [True, False])
async def test_429s_wait_for_the_export_bucket(retry_after: bool) -> None:
    clock = ManualClock(T0)
    sandbox = ZendeskSandbox(clock=clock, retry_after=retry_after)
    sandbox.seed(contacts=300)
    sandbox.rate_limit_burst(2)
    async with bridge(sandbox, clock, zendesk_export_page_size=100) as b:
        view: dict[str, dict[str, Any]] = {}
        await run_sync(b, view, None)
        assert set(view) == set(sandbox.live_end_users())
        # Without Retry-After the bucket's reset is the wait, never a 1-second hammering.
        assert max(b.slept) >= 2
        assert sandbox.call_count("GET", "/api/v2/incremental") <= 10


async def test_export_shapes_empty_walk_and_start_time_too_recent() -> None:
    clock = ManualClock(T0)
    sandbox = ZendeskSandbox(clock=clock)
    async with bridge(sandbox, clock) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint = await run_sync(b, view, None)  # only an admin and an agent: no contacts
        assert view == {}
        # A run right after: its start_time would be under a minute old, and that is fine.
        uid = sandbox.add_user("Fresh", email="fresh@example.com")
        checkpoint = await run_sync(b, view, checkpoint)
        clock.advance(120)
        await run_sync(b, view, checkpoint)
        assert view[uid]["emails"] == ["fresh@example.com"]


async def test_mapping_identities_companies_fields_and_exclusions() -> None:
    clock = ManualClock(T0)
    sandbox = ZendeskSandbox(clock=clock)
    org = sandbox.add_organization("Globex Labs")
    ana = sandbox.add_user(
        "Ana Silva",
        email="Ana@Example.com",
        phone="+14155550132",
        emails=("ana.work@example.org", "ana@example.com"),
        phones=("+351 912 345 678",),
        organization_id=org,
        user_fields={"job_title": "CFO", "street": "Rua A 1, Lisboa"},
    )
    gone = sandbox.add_user("Gone", email="gone@example.com")
    sandbox.delete_user(gone)
    held_back = sandbox.add_user("Suspended", email="s@example.com")
    sandbox.update_user(held_back, suspended=True)
    for n in range(30):
        sandbox.add_user(f"Member {n}", email=f"m{n}@example.com", organization_id=org)
    clock.advance(120)
    settings = {"zendesk_title_field": "job_title", "zendesk_address_field": "street"}
    async with bridge(sandbox, clock, **settings) as b:
        view: dict[str, dict[str, Any]] = {}
        await run_sync(b, view, None)
    assert gone not in view and held_back not in view and sandbox.agent_id not in view
    assert view[ana] == {
        "id": ana,
        "name": "Ana Silva",
        "emails": ["Ana@Example.com", "ana.work@example.org"],
        "phones": ["+14155550132", "+351912345678"],
        "company": "Globex Labs",
        "title": "CFO",
        "address": "Rua A 1, Lisboa",
        "photo_url": f"https://acme.zendesk.com/system/photos/{ana}.png",
        "url": f"https://acme.zendesk.com/agent/users/{ana}",
    }
    assert sandbox.call_count("GET", "/api/v2/organizations") == 1  # one listing, not per user


async def test_a_refused_cursor_rebases_on_the_fallback_time() -> None:
    clock = ManualClock(T0)
    sandbox = ZendeskSandbox(clock=clock, cursor_ttl=3600)
    sandbox.seed(contacts=200)
    async with bridge(sandbox, clock) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint = await run_sync(b, view, None)
        clock.advance(7200)  # the stored cursor is now too old for the export
        uid = sandbox.add_user("After", email="after@example.com")
        clock.advance(120)
        sandbox.reset_calls()
        await run_sync(b, view, checkpoint)
        assert view[uid]["name"] == "After"
        # Re-based on the previous run's time, not a full copy: a couple of calls.
        assert sandbox.call_count("GET", "/api/v2/incremental") <= 4


async def test_an_agent_token_is_told_contact_sync_needs_an_admin() -> None:
    sandbox = ZendeskSandbox()
    async with bridge(sandbox) as b:
        r = await b.post(
            "contact_sync", {"auth": b.auth(access_token="zd-agent-oauth-token-0123456789")}
        )
        assert r.status_code == 403
        assert "admin" in r.json()["error"]["message"]
