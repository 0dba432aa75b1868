"""Contact sync from Intercom: paging, checkpoints, offsets, and the zero-loss guarantee.

Talkdesk's view is an upsert by id of every contact it receives. After an initial run during
heavy writes (with search lag, ties, 5xx, a 429 burst and a refused cursor) and incremental runs
once writes stop and the lag has passed, that view must hold every live contact's latest data.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from talkdesk_bridge._phones import normalize_phone
from talkdesk_bridge._tokens import decode_token, encode_token
from talkdesk_bridge.connectors.intercom.sync import Position
from talkdesk_sandbox.intercom import FakeIntercom, ManualClock, error_body
from tests.test_intercom_support import (
    T0,
    TOKEN,
    Bridge,
    auth,
    bridge,
    live_contacts,
    run_sync,
)

DAY = 86_400


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def checkpoint_of(token: str) -> int:
    value = decode_token(token, "checkpoint")["cp"]
    assert isinstance(value, int)
    return value


def expected(contact: dict[str, Any]) -> dict[str, Any]:
    """What Talkdesk must hold for a live Intercom contact (computed independently)."""
    phone = normalize_phone(contact["phone"]) if contact["phone"] else None
    return {
        "name": contact["name"] or contact["email"] or phone or contact["id"],
        "emails": [contact["email"]] if contact["email"] else [],
        "phones": [phone] if phone else [],
    }


def held(view: dict[str, dict[str, Any]], cid: str) -> dict[str, Any]:
    c = view[cid]
    return {"name": c["name"], "emails": c.get("emails"), "phones": c.get("phones")}


async def assert_view_is_complete(fake: FakeIntercom, view: dict[str, dict[str, Any]]) -> int:
    live = await live_contacts(fake)
    missing = sorted(set(live) - set(view))
    assert not missing, f"{len(missing)} live contacts never reached Talkdesk"
    stale = [cid for cid, c in live.items() if held(view, cid) != expected(c)]
    assert not stale, f"{len(stale)} contacts hold outdated data, e.g. {stale[:3]}"
    return len(live)


# --- paging and checkpoints -------------------------------------------------------------------


async def sync_pages(b: Bridge) -> list[dict[str, Any]]:
    """Every page of one full run, as Talkdesk receives them."""
    bodies: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    while True:
        r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
        assert r.status_code == 200, r.text
        bodies.append(r.json())
        if "next_offset" not in r.json():
            return bodies
        meta = {"offset": r.json()["next_offset"]}


async def test_full_sync_joins_upstream_pages_and_carries_checkpoints(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(700)
    async with bridge(fake, clock, intercom_search_page_size=50, intercom_sync_page_size=120) as b:
        bodies = await sync_pages(b)
    sizes = [len(body["contacts"]) for body in bodies]
    assert sizes == [150, 150, 150, 150, 100]  # three 50-contact upstream pages per page
    assert fake.call_count("POST", "/contacts/search") == 14
    ids = [c["id"] for body in bodies for c in body["contacts"]]
    assert len(set(ids)) == 700 == len(ids)
    # Ascending by updated_at, as the contract asks.
    live = await live_contacts(fake)
    stamps = [live[i]["updated_at"] for i in ids]
    assert stamps == sorted(stamps)
    # Pages before the last keep the run's lower bound: an abandoned run is redone, not skipped.
    assert [checkpoint_of(body["synchronization_checkpoint"]) for body in bodies] == [
        0,
        0,
        0,
        0,
        T0 - 900,
    ]


async def test_hundreds_of_contacts_in_one_second_span_pages(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(400, updated_at=T0 - 60)
    fake.seed_contacts(30, updated_at=T0 - 61)
    fake.seed_contacts(30, updated_at=T0 - 59)
    view: dict[str, dict[str, Any]] = {}
    async with bridge(fake, clock, intercom_search_page_size=50, intercom_sync_page_size=40) as b:
        _, pages, _ = await run_sync(b, view)
    assert len(view) == 460 and pages == 10
    await assert_view_is_complete(fake, view)


async def test_incremental_sync_returns_what_changed(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    seeded = fake.seed_contacts(300, updated_at=None)
    view: dict[str, dict[str, Any]] = {}
    async with bridge(fake, clock, intercom_safety_window_seconds=60) as b:
        checkpoint, _, _ = await run_sync(b, view)
        clock.advance(3600)
        renamed = [seeded[5]["id"], seeded[250]["id"]]
        for cid in renamed:
            fake.update_contact(cid, name="Renamed Person", phone="+44 7700 900123")
        new = fake.add_contact(email="newcomer@example.com")
        changed: dict[str, dict[str, Any]] = {}
        checkpoint2, _, _ = await run_sync(b, changed, checkpoint)
        assert checkpoint_of(checkpoint2) == T0 + 3600 - 60
    assert {*renamed, new["id"]} <= set(changed)
    assert len(changed) < 300  # only what was updated since the checkpoint's day
    assert changed[renamed[0]]["name"] == "Renamed Person"
    assert changed[renamed[0]]["phones"] == ["+447700900123"]
    assert changed[new["id"]]["name"] == "newcomer@example.com"


async def test_a_naive_updated_at_filter_loses_contacts_later_on_the_checkpoint_day(
    clock: ManualClock,
) -> None:
    """Intercom's `>` on dates starts at the next day: `updated_at > checkpoint` skips the rest
    of the checkpoint's day. The bridge's superset query plus exact filter does not."""
    fake = FakeIntercom(token=TOKEN, clock=clock)
    checkpoint = T0 - 2 * DAY  # 10:46 in Lisbon, two days ago
    fake.seed_contacts(20, updated_at=checkpoint - 2 * DAY)
    later_that_day = [
        fake.add_contact(email=f"later{n}@example.com", updated_at=checkpoint + 60 * n)["id"]
        for n in range(1, 6)
    ]
    next_day = fake.add_contact(email="tomorrow@example.com", updated_at=checkpoint + DAY)["id"]
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url="https://api.intercom.io"
    ) as direct:
        r = await direct.post(
            "/contacts/search",
            headers=headers,
            json={
                "query": {"field": "updated_at", "operator": ">", "value": checkpoint},
                "sort": {"field": "updated_at", "order": "ascending"},
                "pagination": {"per_page": 150},
            },
        )
    naive = {c["id"] for c in r.json()["data"]}
    assert next_day in naive
    assert not naive & set(later_that_day), "the naive filter would have found them"
    view: dict[str, dict[str, Any]] = {}
    async with bridge(fake, clock) as b:
        await run_sync(b, view, encode_token({"cp": checkpoint}))
    assert set(later_that_day) | {next_day} == set(view)  # and nothing before the checkpoint


@pytest.mark.parametrize(("window", "found"), [(900.0, True), (0.0, False)])
async def test_search_lag_is_covered_by_the_safety_window(
    clock: ManualClock, window: float, found: bool
) -> None:
    """A write hidden by search lag during one run is picked up by the next, because the
    checkpoint trails the run's start by the window; without a window it would be lost."""
    fake = FakeIntercom(token=TOKEN, clock=clock, search_lag=120)
    fake.seed_contacts(50)
    late = fake.update_contact(fake.add_contact(email="late@example.com")["id"], name="Late")
    clock.advance(30)  # written 30 s ago: still invisible to search
    view: dict[str, dict[str, Any]] = {}
    async with bridge(fake, clock, intercom_safety_window_seconds=window) as b:
        checkpoint, _, _ = await run_sync(b, view)
        assert late["id"] not in view
        clock.advance(600)
        await run_sync(b, view, checkpoint)
    assert (late["id"] in view) is found


# --- offsets --------------------------------------------------------------------------------


async def test_the_same_offset_gives_the_same_page(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(400)

    async def second_page(b: Bridge) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        first = await b.post("contact_sync", {"auth": auth(), "meta": {}})
        offset = first.json()["next_offset"]
        again = [
            (await b.post("contact_sync", {"auth": auth(), "meta": {"offset": offset}})).json()
            for _ in range(2)
        ]
        assert again[0] == again[1]
        return offset, again[0]["contacts"], first.json()["contacts"]

    settings = {"intercom_search_page_size": 100, "intercom_sync_page_size": 100}
    async with bridge(fake, clock, **settings) as b:
        offset, page, first = await second_page(b)
    assert page and not {c["id"] for c in page} & {c["id"] for c in first}
    # Another worker (no shared cache) resumes at the very same place.
    async with bridge(fake, clock, **settings) as other:
        r = await other.post("contact_sync", {"auth": auth(), "meta": {"offset": offset}})
    assert r.json()["contacts"] == page


async def test_a_refused_cursor_restarts_from_the_last_second_without_loss(
    clock: ManualClock,
) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(200, updated_at=T0 - 500)  # one second, several pages
    fake.seed_contacts(200)
    view: dict[str, dict[str, Any]] = {}
    refused = error_body("client_error", "The starting_after cursor is invalid")

    def refuse(page: int) -> None:
        if page in (2, 4):
            fake.fail_next(1, status=400, path_prefix="/contacts/search", body=refused)

    async with bridge(fake, clock, intercom_search_page_size=50, intercom_sync_page_size=50) as b:
        await run_sync(b, view, between_pages=refuse)
    assert not fake.faults.pending()
    await assert_view_is_complete(fake, view)


async def test_a_cursor_refused_again_and_again_fails_instead_of_looping(
    clock: ManualClock,
) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(300, updated_at=T0 - 500)
    async with bridge(fake, clock, intercom_search_page_size=50, intercom_sync_page_size=50) as b:
        first = await b.post("contact_sync", {"auth": auth(), "meta": {}})
        refused = error_body("client_error", "The starting_after cursor is invalid")
        fake.fail_next(50, status=400, path_prefix="/contacts/search", body=refused)
        r = await b.post(
            "contact_sync", {"auth": auth(), "meta": {"offset": first.json()["next_offset"]}}
        )
    assert r.status_code == 400 or r.status_code == 502
    assert fake.call_count("POST", "/contacts/search") < 12


async def test_unusable_offsets_and_checkpoints_are_422(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    bad_key = encode_token({"l": 0, "u": T0, "c": T0, "q": 0, "s": None, "k": [1, "../x"], "r": 0})
    async with bridge(fake, clock) as b:
        for meta in (
            {"offset": "not-base64!!"},
            {"offset": encode_token({"cp": 1})},
            {"offset": bad_key},
            {
                "offset": encode_token(
                    {"l": -1, "u": T0, "c": T0, "q": 0, "s": None, "k": None, "r": 0}
                )
            },
            {"synchronization_checkpoint": encode_token({"w": 1})},
            {"synchronization_checkpoint": encode_token({"cp": "yesterday"})},
        ):
            r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
            assert r.status_code == 422, (meta, r.text)
            assert "meta." in r.json()["error"]["message"]
    assert fake.calls == []


async def test_503_mid_run_then_the_same_offset_resumes(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(500)
    view: dict[str, dict[str, Any]] = {}
    unavailable: list[httpx.Response] = []

    def outage(page: int) -> None:
        if page == 2:
            fake.fail_next(5, status=503, path_prefix="/contacts/search")  # > 4 attempts
        if page == 3:
            fake.rate_limit_burst(1)  # resets in up to 10 s: over a 5 s budget

    settings = {
        "intercom_search_page_size": 100,
        "intercom_sync_page_size": 100,
        "intercom_sync_budget_seconds": 5,
    }
    async with bridge(fake, clock, **settings) as b:

        def wait(response: httpx.Response) -> None:  # as Talkdesk would, before retrying
            unavailable.append(response)
            clock.advance(int(response.headers.get("retry-after", "1")))

        _, _, retried = await run_sync(b, view, between_pages=outage, on_unavailable=wait)
    assert retried == 2 and len(view) == 500
    assert 5 < int(unavailable[1].headers["retry-after"]) <= 10  # the window, not the budget


async def test_prefetch_reads_ahead_without_extra_calls(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(1000)
    view: dict[str, dict[str, Any]] = {}
    settings = {
        "intercom_search_page_size": 100,
        "intercom_sync_page_size": 100,
        "intercom_prefetch_pages": 3,
    }
    async with bridge(fake, clock, **settings) as b:
        _, pages, _ = await run_sync(b, view)
        assert fake.call_count("POST", "/contacts/search") == 10 == pages
        fetches = b.connector.sync._cache.futures()
    assert len(view) == 1000
    assert fetches and all(f.done() for f in fetches)  # closed with the app: nothing runs on


async def test_contact_fields_in_sync(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock, region="eu", app_id="ffee1234")
    acme = fake.add_company("Acme Inc.")
    rich = fake.add_contact(
        name="Ana Silva",
        email="ana@example.com",
        phone="+351 912 345 678",
        avatar="https://img.example.com/ana.png",
        avatar_shape="string",
        location={"city": "Porto", "region": "Porto", "country": "Portugal"},
        social_profiles=[{"name": "Twitter", "url": "https://twitter.com/anasilva"}],
        custom_attributes={"job_title": "Head of Support"},
        company_ids=["0" * 24, acme["id"]],
    )
    objecty = fake.add_contact(email="o@example.com", avatar="https://img.example.com/o.png")
    bare = fake.add_contact(
        role="lead", avatar="https://img.example.com/x.png", avatar_shape="null"
    )
    view: dict[str, dict[str, Any]] = {}
    async with bridge(fake, clock) as b:
        await run_sync(b, view)
    assert view[rich["id"]] == {
        "id": rich["id"],
        "name": "Ana Silva",
        "emails": ["ana@example.com"],
        "phones": ["+351912345678"],
        "photo_url": "https://img.example.com/ana.png",
        "address": "Porto, Portugal",
        "twitter": "anasilva",
        "title": "Head of Support",
        "company": "Acme Inc.",
        "url": f"https://app.eu.intercom.com/a/apps/ffee1234/users/{rich['id']}",
    }
    assert view[objecty["id"]]["photo_url"] == "https://img.example.com/o.png"
    assert "photo_url" not in view[bare["id"]] and view[bare["id"]]["name"] == bare["id"]
    assert fake.call_count("POST", "/companies/list") == 1


# --- lanes -----------------------------------------------------------------------------------


def local_midnights(days: int) -> list[int]:
    """The last `days` midnights of the fake's workspace (Europe/Lisbon), oldest first."""
    zone = ZoneInfo("Europe/Lisbon")
    today = datetime.fromtimestamp(T0, zone).date()
    return [
        int(datetime.combine(today - timedelta(days=n), datetime.min.time(), zone).timestamp())
        for n in range(days, 0, -1)
    ]


async def test_lanes_read_several_cursors_but_deliver_in_order(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock)
    for midnight in local_midnights(60):
        # Ties on every midnight and on the second before: wherever a lane boundary falls,
        # contacts sit exactly on it and right before it.
        fake.seed_contacts(12, updated_at=midnight)
        fake.seed_contacts(8, updated_at=midnight - 1)
    fake.seed_contacts(400)
    settings = {
        "intercom_search_page_size": 10,
        "intercom_sync_page_size": 25,
        "intercom_sync_chains": 3,
        "intercom_prefetch_pages": 3,
    }
    async with bridge(fake, clock, **settings) as b:
        bodies = await sync_pages(b)
    lanes = len(Position.decode(bodies[0]["next_offset"]).bounds) + 1
    assert 3 <= lanes <= 1600 // 200
    ids = [c["id"] for body in bodies for c in body["contacts"]]
    assert len(ids) == len(set(ids)) == 1600
    live = await live_contacts(fake)
    stamps = [live[i]["updated_at"] for i in ids]
    assert stamps == sorted(stamps)  # lanes are delivered one after the other
    probes = fake.call_count("POST", "/contacts/search") - 1600 // 10
    assert 0 < probes < 60  # one round of counting searches, plus a page per lane boundary


# --- the zero-loss scenario -------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        {"intercom_search_page_size": 50, "intercom_sync_chains": 1},
        {"intercom_search_page_size": 10, "intercom_sync_chains": 3},  # lanes
    ],
    ids=["one-cursor", "lanes"],
)
async def test_zero_loss_while_contacts_change_under_the_sync(
    clock: ManualClock, shape: dict[str, Any]
) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock, search_lag=90, seed=4)
    rng = random.Random(2024)
    fake.seed_contacts(500)  # spread over the past year
    fake.seed_contacts(300, updated_at=T0 - 1800)  # hundreds share one second...
    fake.seed_contacts(120, updated_at=T0 - 5 * 3600)  # ...and the day
    fake.seed_contacts(80, updated_at=T0 - 40)  # written moments ago: hidden by the lag
    for midnight in local_midnights(40):
        fake.seed_contacts(5, updated_at=midnight)  # ties on any lane boundary
    live_ids = list(await live_contacts(fake))
    writes = {"created": 0, "updated": 0, "deleted": 0}

    def write(page: int) -> None:
        """Talkdesk is slow between pages; the workspace keeps changing meanwhile."""
        clock.advance(rng.choice((0, 0, 1, 3)))
        for _ in range(rng.randint(2, 6)):  # often within the same second
            created = fake.add_contact(
                name=rng.choice((None, f"New {page}")),
                email=f"new{page}.{rng.random():.8f}@example.com",
                phone=rng.choice((None, "+1 415 555 0100", "(212) 555-0199")),
            )
            live_ids.append(created["id"])
            writes["created"] += 1
        for cid in rng.sample(live_ids, 8):  # behind and ahead of the cursor alike
            fields = rng.choice(
                (
                    {"name": f"Renamed {page}"},
                    {"email": f"moved{page}.{rng.random():.8f}@example.com"},
                    {"phone": f"+35191{rng.randrange(10**7):07d}"},
                    {"name": None, "phone": None},
                )
            )
            fake.update_contact(cid, **fields)
            writes["updated"] += 1
        for cid in rng.sample(live_ids, 2):
            fake.delete_contact(cid)
            live_ids.remove(cid)
            writes["deleted"] += 1
        if page == 2:
            fake.rate_limit_burst(3)  # a 429 burst: waited out within the budget
        if page == 4:
            fake.fail_next(6, status=503, path_prefix="/contacts/search")  # beyond retries
        if page == 6:
            fake.fail_next(
                1,
                status=400,
                path_prefix="/contacts/search",
                body=error_body("client_error", "The starting_after cursor is invalid"),
            )

    fake.random_failures(0.08, statuses=(500, 502, 503, 504), seed=9)
    view: dict[str, dict[str, Any]] = {}
    offsets: list[str] = []
    settings = {
        "intercom_sync_page_size": 100,
        "intercom_safety_window_seconds": 300,
        "intercom_prefetch_pages": 2,
        **shape,
    }
    async with bridge(fake, clock, **settings) as b:
        checkpoint, pages, retried = await run_sync(
            b,
            view,
            between_pages=write,
            on_unavailable=lambda r: clock.advance(int(r.headers.get("retry-after", "1"))),
            offsets=offsets,
        )
        lanes = len(Position.decode(offsets[0]).bounds) + 1
        assert (lanes > 2) is (shape["intercom_sync_chains"] > 1)
        assert pages >= 8 and retried >= 1
        assert any(wait > 1 for wait in b.sleeps)  # the 429 burst was waited out
        assert writes["created"] > 20 and writes["updated"] > 50 and writes["deleted"] > 10
        # Writes stop; the lag passes; Talkdesk's next scheduled runs.
        fake.random_failures(0)
        fake.reset_faults()
        clock.advance(1800)
        checkpoint, _, _ = await run_sync(b, view, checkpoint)
        clock.advance(1800)
        await run_sync(b, view, checkpoint)
    total = await assert_view_is_complete(fake, view)
    assert total == len(live_ids) > 1100


class FailingSearches(httpx.AsyncBaseTransport):
    """The fake, except that contact searches number `first`..`last` answer 503."""

    def __init__(self, fake: FakeIntercom, first: int, last: int) -> None:
        self.inner = httpx.ASGITransport(app=fake.app)
        self.first, self.last = first, last
        self.searches = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/contacts/search":
            self.searches += 1
            if self.first <= self.searches <= self.last:
                return httpx.Response(503, json=error_body("service_unavailable", "busy"))
        return await self.inner.handle_async_request(request)


async def test_a_failure_after_progress_keeps_the_progress(clock: ManualClock) -> None:
    """Upstream pages already read are delivered; Talkdesk resumes at the one that failed."""
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(120)
    settings = {"intercom_search_page_size": 30, "intercom_sync_page_size": 120}
    failing = FailingSearches(fake, first=2, last=5)  # four attempts at the second page
    async with bridge(fake, clock, transport=failing, **settings) as b:
        r = await b.post("contact_sync", {"auth": auth(), "meta": {}})
        assert r.status_code == 200
        assert len(r.json()["contacts"]) == 30 and "next_offset" in r.json()
        view = {c["id"]: c for c in r.json()["contacts"]}
        rest = {"offset": r.json()["next_offset"]}
        while True:
            r = await b.post("contact_sync", {"auth": auth(), "meta": rest})
            assert r.status_code == 200
            view.update({c["id"]: c for c in r.json()["contacts"]})
            if "next_offset" not in r.json():
                break
            rest = {"offset": r.json()["next_offset"]}
    assert len(view) == 120 and failing.searches == 4 + 4  # four pages, four failures
