"""Contact sync from HubSpot: the id-keyset full copy, the lagged id walk of each window, and
the zero-loss guarantee against the sandbox, where the naive search design loses contacts."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from talkdesk_sandbox._clock import ManualClock
from tests.test_hubspot_support import (
    T0,
    TOKEN,
    RecordingTransport,
    assert_complete,
    auth,
    bridge,
    missing_or_stale,
    run_sync,
    sandbox,
)

SEARCH = "/crm/v3/objects/contacts/search"
LIST = "/crm/v3/objects/contacts"


def _searches(recording: RecordingTransport) -> list[dict[str, Any]]:
    return [orjson.loads(r.content) for r in recording.requests if r.url.path == SEARCH]


async def test_full_copy_walks_the_id_keyset_list_and_never_searches() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=450)
    recording = RecordingTransport(httpx.ASGITransport(app=fake.app))
    async with bridge(fake, clock, transport=recording, hubspot_sync_page_size=200) as b:
        view: dict[str, dict[str, Any]] = {}
        _, pages, _ = await run_sync(b, view)
    assert pages == 3
    assert not _searches(recording)
    lists = [r.url for r in recording.requests if r.url.path == LIST]
    assert [u.params.get("limit") for u in lists] == ["100"] * 5
    # Each page resumes at the id HubSpot named as the next record.
    assert [("after" in u.params) for u in lists] == [False, True, True, True, True]
    assert assert_complete(fake, view) == 450
    contact = view[next(iter(fake.live()))]
    assert contact["url"].startswith("https://app.hubspot.com/contacts/4412345/record/0-1/")


async def test_incremental_walks_ids_in_a_fixed_window_and_never_pages_with_after() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, lag=20)
    fake.seed(contacts=600)
    recording = RecordingTransport(httpx.ASGITransport(app=fake.app))
    async with bridge(fake, clock, transport=recording, hubspot_sync_page_size=250) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, view)
        clock.advance(60)
        for cid in list(fake.live())[:500]:
            fake.update_contact(cid)  # all in one millisecond
        clock.advance(60)
        recording.requests.clear()
        _, pages, _ = await run_sync(b, view, checkpoint)
    bodies = _searches(recording)
    assert pages == 2 and len(bodies) == 3
    assert all("after" not in body for body in bodies)
    assert all(body["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
               for body in bodies)  # fmt: skip
    windows = {tuple(f["value"] for f in body["filterGroups"][0]["filters"][:2]) for body in bodies}
    assert len(windows) == 1  # one fixed window for the whole run
    ids = [body["filterGroups"][0]["filters"][2:] for body in bodies]
    assert ids[0] == [] and all(f[0]["operator"] == "GT" for f in ids[1:])
    assert_complete(fake, view)


async def test_merged_contacts_reach_talkdesk_under_the_surviving_id() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, lag=5)
    fake.seed(contacts=30)
    a, b_id = list(fake.live())[:2]
    async with bridge(fake, clock) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, view)
        clock.advance(10)
        survivor = fake.merge_contacts(a, b_id)
        clock.advance(30)
        changed: dict[str, dict[str, Any]] = {}
        await run_sync(b, changed, checkpoint)
    assert survivor in changed and int(survivor) > int(a)
    assert set(fake.live()[survivor]["hs_merged_object_ids"].split(";")) == {a, b_id}
    merged = changed[survivor]
    assert set(view[a]["emails"]) | set(view[b_id]["emails"]) <= set(merged["emails"])
    view.update(changed)
    assert_complete(fake, view)


async def test_a_header_less_search_429_is_waited_out_and_searches_stay_under_5_a_second() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, lag=1)
    fake.seed(contacts=2500)
    async with bridge(fake, clock, hubspot_sync_page_size=10_000) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, view)
        for cid in list(fake.live()):
            fake.update_contact(cid)
        clock.advance(30)
        fake.reset_calls()
        fake.fail_next(3, status=429, path_prefix=SEARCH)
        stamps: list[float] = []
        original = fake.record

        def record(call: Any) -> None:
            if call.path == SEARCH:
                stamps.append(clock())
            original(call)

        fake.record = record  # type: ignore[method-assign]
        _, _, retried = await run_sync(b, view, checkpoint)
    assert retried == 0  # the bridge waited, Talkdesk saw no error
    assert len(stamps) >= 13 + 3
    # Never more than 5 searches in any one second of the portal's clock.
    assert all(stamps[i + 5] - stamps[i] >= 1.0 for i in range(len(stamps) - 5))
    assert_complete(fake, view)


async def test_forged_or_foreign_tokens_are_a_422() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=5)
    async with bridge(fake, clock) as b:
        for meta in ({"offset": "garbage"}, {"synchronization_checkpoint": "x" * 40}):
            r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
            assert r.status_code == 422, r.text
            assert "meta." in r.json()["error"]["message"]


# -- the scenario -------------------------------------------------------------------------


async def test_zero_loss_through_writes_merges_ties_faults_and_more_than_the_cap() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, lag=30, rate_limit=(190, 10))
    fake.seed(contacts=10_600)
    ids = list(fake.live())
    async with bridge(fake, clock, hubspot_sync_page_size=1000) as b:
        view: dict[str, dict[str, Any]] = {}

        def busy(page: int) -> None:
            # Between Talkdesk's pages: writes ahead of and behind the cursor, new contacts,
            # a merge, an archive, failures and a 429 burst.
            clock.advance(3)
            fake.create_contact()
            fake.update_contact(ids[page * 7])
            fake.update_contact(ids[-page - 1])
            if page == 2:
                fake.merge_contacts(ids[5], ids[9000])
                fake.archive_contact(ids[6])
                fake.fail_next(2, status=503, path_prefix=LIST)
            if page == 4:
                fake.rate_limit_burst(2)

        checkpoint, pages, _ = await run_sync(b, view, between_pages=busy)
        assert pages == 11

        # More than the search cap changed in one millisecond, plus merges and archives.
        clock.advance(120)
        live = [cid for cid in fake.live()]
        for cid in live[:10_300]:
            fake.update_contact(cid)
        fake.merge_contacts(live[10], live[10_500])
        fake.archive_contact(live[11])
        clock.advance(5)  # search has not indexed much of it yet

        def walking(page: int) -> None:
            clock.advance(2)
            current = list(fake.live())
            fake.update_contact(current[page * 50])  # behind the walk
            fake.update_contact(current[-page * 3])  # ahead of it
            fake.create_contact()
            if page == 3:
                fake.fail_next(3, status=429, path_prefix=SEARCH)  # header-less
                fake.fail_next(1, status=502, path_prefix=SEARCH)

        checkpoint, pages, _ = await run_sync(b, view, checkpoint, between_pages=walking)
        for _ in range(2):
            clock.advance(60)
            checkpoint, _, _ = await run_sync(b, view, checkpoint)
    assert assert_complete(fake, view) > 10_600
    assert fake.call_count("POST", SEARCH) > 10_000 // 200


async def test_the_naive_search_design_loses_contacts_against_the_same_sandbox() -> None:
    """`lastmodifieddate GT newest_seen`, sorted by it, paged with `after`: the cap stops it
    inside one millisecond, GT then drops that millisecond's rest, and an edit while paging
    shifts records past the offset."""
    clock = ManualClock(T0)
    fake = sandbox(clock, lag=0)
    fake.seed(contacts=10_600)
    view = {cid: {} for cid in fake.live()}
    newest = int(T0 * 1000)
    clock.advance(60)
    for cid in list(fake.live())[:10_300]:
        fake.update_contact(cid)
    clock.advance(1)
    transport = httpx.ASGITransport(app=fake.app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    naive: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(transport=transport, base_url="https://api.hubapi.test") as c:
        for _ in range(5):  # restart from the bookmark after each stop
            since, after = newest, None
            while True:
                body: dict[str, Any] = {
                    "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate",
                                                   "operator": "GT", "value": str(since)}]}],
                    "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                    "properties": ["firstname", "lastname", "lastmodifieddate"],
                    "limit": 200,
                }  # fmt: skip
                if after:
                    body["after"] = after
                r = await c.post(SEARCH, json=body, headers=headers)
                if r.status_code == 429:
                    clock.advance(1)
                    continue
                if r.status_code == 400:
                    break  # past 10,000: restart from the bookmark
                assert r.status_code == 200, r.text
                found = r.json()
                for record in found["results"]:
                    naive[record["id"]] = record
                    stamp = record["properties"]["lastmodifieddate"]
                    newest = max(newest, _ms(stamp))
                if after == "400":
                    fake.update_contact(found["results"][0]["id"])  # an edit while paging
                after = found.get("paging", {}).get("next", {}).get("after")
                if not after:
                    break
    updated = {cid for cid, props in fake.live().items() if _ms(props["lastmodifieddate"])
               > int(T0 * 1000)}  # fmt: skip
    lost = updated - set(naive)
    assert len(updated) >= 10_300
    # The rest of the capped millisecond, and the record the edit shifted past the offset.
    assert len(lost) > 200, f"the naive design lost only {len(lost)}"
    assert missing_or_stale(fake, view)[0] == 0  # the loss is of updates, not a bad baseline


def _ms(text: str) -> int:
    from talkdesk_bridge.connectors.hubspot.mapping import ms_of

    stamp = ms_of(text)
    assert stamp is not None
    return stamp


async def test_the_lag_window_is_what_catches_writes_search_had_not_indexed() -> None:
    found = {}
    for lag in (0.0, 900.0):
        clock = ManualClock(T0)
        fake = sandbox(clock, lag=30)
        fake.seed(contacts=60)
        async with bridge(fake, clock, hubspot_lag_seconds=lag) as b:
            view: dict[str, dict[str, Any]] = {}
            checkpoint, _, _ = await run_sync(b, view)
            clock.advance(60)
            changed = [fake.update_contact(cid)["id"] for cid in list(fake.live())[:10]]
            clock.advance(5)  # not in search's index yet
            checkpoint, _, _ = await run_sync(b, view, checkpoint)
            clock.advance(60)
            await run_sync(b, view, checkpoint)
        found[lag] = missing_or_stale(fake, view)
        assert changed
    assert found[0.0] == (0, 10)  # the writes search showed late are lost without it
    assert found[900.0] == (0, 0)
