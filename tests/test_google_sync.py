"""Contact sync from Google: sync tokens as checkpoints, the same parameters on every page,
expiry as a transparent full resync, and the zero-loss guarantee against the sandbox."""

from __future__ import annotations

import random
from typing import Any

import httpx

from talkdesk_bridge._tokens import decode_token
from talkdesk_sandbox._clock import ManualClock
from tests.test_google_support import (
    T0,
    TOKEN,
    RecordingTransport,
    assert_complete,
    auth,
    bridge,
    run_sync,
    sandbox,
)

DAY = 86_400.0


def cursor_of(checkpoint: str) -> Any:
    return decode_token(checkpoint, "checkpoint")["c"]


async def test_full_sync_joins_pages_and_hands_out_the_token_only_at_the_end() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=230)
    async with bridge(fake, clock, google_list_page_size=50, google_sync_page_size=100) as b:
        bodies = []
        meta: dict[str, Any] = {}
        while True:
            r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
            assert r.status_code == 200, r.text
            bodies.append(r.json())
            if "next_offset" not in r.json():
                break
            meta = {"offset": r.json()["next_offset"]}
    assert [len(body["contacts"]) for body in bodies] == [100, 100, 30]
    assert fake.call_count("GET", "/v1/people/me/connections") == 5
    # Pages before the last carry the run's (empty) start; the last one Google's sync token.
    assert [cursor_of(body["synchronization_checkpoint"]) for body in bodies[:-1]] == [None, None]
    assert isinstance(cursor_of(bodies[-1]["synchronization_checkpoint"]), str)
    view = {c["id"]: c for body in bodies for c in body["contacts"]}
    assert assert_complete(fake, view) == 230


async def test_every_page_repeats_the_sync_token_and_the_first_pages_parameters() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=40)
    recording = RecordingTransport(httpx.ASGITransport(app=fake.app))
    settings = {"google_list_page_size": 10, "google_sync_page_size": 10}
    async with bridge(fake, clock, transport=recording, **settings) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, view)
        for rid in list(fake.live())[:25]:
            fake.update_person(rid)
        clock.advance(60)
        recording.urls.clear()

        def deploy(page: int) -> None:
            # A changed page size mid-run must not change the run's parameters.
            b.connector.settings.google_list_page_size = 7

        checkpoint2, pages, _ = await run_sync(b, view, checkpoint, between_pages=deploy)
    seen = recording.urls
    assert pages == 3
    token = cursor_of(checkpoint)
    assert [u.params.get("syncToken") for u in seen] == [token] * 3
    assert {u.params["pageSize"] for u in seen} == {"10"}
    assert all(u.params["requestSyncToken"] == "true" for u in seen)
    assert [("pageToken" in u.params) for u in seen] == [False, True, True]
    assert cursor_of(checkpoint2) != token
    assert_complete(fake, view)


async def test_deletions_and_renames_reach_talkdesk_correctly() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=20)
    ids = list(fake.live())
    async with bridge(fake, clock) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, view)
        fake.delete_person(ids[0])
        renamed = fake.rename_person(ids[1])
        clock.advance(10)
        changed: dict[str, dict[str, Any]] = {}
        await run_sync(b, changed, checkpoint)
    # The stub is no contact; the renamed contact comes under its new name.
    assert set(changed) == {renamed}
    assert changed[renamed]["url"] == "https://contacts.google.com/person/" + renamed[7:]
    view.update(changed)
    assert_complete(fake, view)


async def test_an_expired_token_is_a_transparent_full_resync_in_the_same_run() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=60)
    async with bridge(fake, clock, google_list_page_size=25, google_sync_page_size=25) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, view)
        clock.advance(8 * DAY)
        fresh = fake.create_person()
        r = await b.post(
            "contact_sync", {"auth": auth(), "meta": {"synchronization_checkpoint": checkpoint}}
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["contacts"]) == 25  # the full copy's first page, at once
        checkpoint2, pages, _ = await run_sync(b, view, checkpoint)
    assert pages == 3 and fresh in view
    assert cursor_of(checkpoint2) not in (None, cursor_of(checkpoint))
    assert_complete(fake, view)
    # Expiry of the old documents (410) is read the same way.
    fake.expired_status = 410
    clock.advance(8 * DAY)
    async with bridge(fake, clock) as b:
        _, pages, _ = await run_sync(b, view, checkpoint2)
    assert pages == 1


async def test_quota_429s_are_paced_or_answered_503_with_retry_after() -> None:
    clock = ManualClock(T0 - T0 % 60 + 30)  # half-way through a minute
    fake = sandbox(clock)
    fake.seed(contacts=30)
    fake.rate_limit_burst(1)
    async with bridge(fake, clock, google_list_page_size=10, google_sync_page_size=30) as b:
        r = await b.post("contact_sync", {"auth": auth(), "meta": {}})
        # Google sends no Retry-After: the next minute starts in 30 s, past the 20 s budget.
        assert r.status_code == 503 and int(r.headers["retry-after"]) == 30
        view: dict[str, dict[str, Any]] = {}
        await run_sync(b, view)  # the budget waits the minute out, then the run completes
        assert_complete(fake, view)
        # The full-sync quota: a 429 too, and never a full sync in auth validation.
        fake.full_sync_quota.limit = 0
        fake.full_sync_quota.clear()
        r = await b.post("auth_validation", {"auth": auth()})
        assert r.status_code == 200


async def test_zero_loss_while_contacts_change_under_the_sync() -> None:
    """Initial sync while contacts are created, updated, renamed and deleted between pages,
    with a propagation delay, random 5xx and a 429 burst; incremental runs; then a token
    expiry and a run that must still leave Talkdesk complete."""
    clock = ManualClock(T0)
    fake = sandbox(clock, lag=120)
    fake.seed(contacts=800)
    rng = random.Random(7)

    def churn(page: int) -> None:
        live = list(fake.store.live())
        for _ in range(4):
            fake.create_person()
        for rid, _ in rng.sample(live, 4):
            fake.update_person(rid)
        rid, _ = rng.choice(live)
        fake.delete_person(rid)
        if page % 3 == 0:
            rid, _ = rng.choice([item for item in fake.store.live()])
            fake.rename_person(rid)
        if page == 2:
            fake.rate_limit_burst(2)
        clock.advance(rng.uniform(1, 40))

    fake.random_failures(0.08, statuses=(500, 503), seed=3)
    view: dict[str, dict[str, Any]] = {}
    async with bridge(fake, clock, google_list_page_size=60, google_sync_page_size=120) as b:
        checkpoint, pages, retried = await run_sync(b, view, between_pages=churn)
        assert pages >= 7 and retried >= 1
        for _ in range(2):  # Talkdesk's runs every 30 minutes, writes still going on
            clock.advance(1800)
            checkpoint, _, _ = await run_sync(b, view, checkpoint, between_pages=churn)
        fake.random_failures(0)
        clock.advance(1800)  # writes stopped; the propagation delay has passed
        checkpoint, _, _ = await run_sync(b, view, checkpoint)
        assert_complete(fake, view)
        # A week without syncs: the token expires while changes keep coming.
        clock.advance(8 * DAY)
        churn(1)
        fake.random_failures(0.08, statuses=(503,), seed=4)
        checkpoint, _, _ = await run_sync(b, view, checkpoint, between_pages=churn)
        fake.random_failures(0)
        clock.advance(1800)
        await run_sync(b, view, checkpoint)
    assert assert_complete(fake, view) > 800


async def _naive_pages(
    client: httpx.AsyncClient, token: str | None, *, keep_sync_token: bool
) -> tuple[list[list[dict[str, Any]]], httpx.Response]:
    """A naive People API reader: pages of 50, optionally dropping syncToken after page 1."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {
        "personFields": "names,emailAddresses,phoneNumbers,metadata",
        "pageSize": 50,
        "requestSyncToken": "true",
    }
    if token:
        params["syncToken"] = token
    while True:
        r = await client.get("/v1/people/me/connections", params=params)
        if r.status_code != 200:
            return pages, r
        pages.append(r.json().get("connections", []))
        if "nextPageToken" not in r.json():
            return pages, r
        params["pageToken"] = r.json()["nextPageToken"]
        if not keep_sync_token:
            params.pop("syncToken", None)


async def test_the_naive_designs_lose_or_corrupt_the_sync() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=200)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://g", headers=headers) as c:
        _, last = await _naive_pages(c, None, keep_sync_token=True)
        token = last.json()["nextSyncToken"]
        changed = [fake.update_person(rid)["resourceName"] for rid in list(fake.live())[:150]]
        # 1. Dropping the sync token on later pages: Google refuses page 2, the changes on
        #    pages 2 and 3 never arrive.
        pages, refused = await _naive_pages(c, token, keep_sync_token=False)
        assert refused.status_code == 400 and len(pages) == 1
        assert len({p["resourceName"] for p in pages[0]}) == 50 < len(changed)
        # 2. Handing out the new token before the last page is applied (read ahead, answer
        #    page 1 with the final token): Talkdesk stops after page 1 (a failed page), and
        #    its next run starts from that token: 100 changes are lost for good.
        pages, last = await _naive_pages(c, token, keep_sync_token=True)
        applied = {p["resourceName"] for p in pages[0]}
        later, _ = await _naive_pages(c, last.json()["nextSyncToken"], keep_sync_token=True)
        applied |= {p["resourceName"] for page in later for p in page}
        assert len(set(changed) - applied) == 100
    # The bridge, from the same token, with Talkdesk stopping after page 1 the same way.
    async with bridge(fake, clock, google_list_page_size=50, google_sync_page_size=50) as b:
        start = b.connector.sync.checkpoint(token, T0)
        got: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, got, start, stop_after=1)
        assert checkpoint == start  # page 1 still carries the run's start
        await run_sync(b, got, checkpoint)
    assert set(changed) <= set(got)
