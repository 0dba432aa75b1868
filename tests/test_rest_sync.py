"""Contact sync from the three sample company APIs: zero loss whatever the paging style
(page numbers that shift, an opaque cursor, keyset `Link` headers, and the keyset continuation
itself) while contacts change between pages, ties fill pages, commits land late, calls fail
and a 429 burst hits; and the proof that naive page-number paging over the same API loses
contacts."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from talkdesk_sandbox._clock import ManualClock
from tests.test_rest_support import (
    BASE,
    T0,
    assert_complete,
    bridge,
    headers,
    run_sync,
    sandbox,
    variant,
)

# Each style with pages of 50 (so a run has many), and the keyset API read through its own
# (time, id) continuation instead of its Link headers.
CASES: dict[str, tuple[str, dict[str, str]]] = {
    "pages": ("pages", {"page_size = 100 }": "page_size = 50 }"}),
    "cursor": (
        "cursor",
        {"page_size = 200": "page_size = 50", "lag_seconds = 120": "lag_seconds = 300"},
    ),
    "keyset-link": ("keyset", {"page_size = 100": "page_size = 50"}),
    "keyset-after-id": (
        "keyset",
        {
            'style = "link", size_param = "limit", page_size = 100, stable = true': (
                'style = "keyset", size_param = "limit", page_size = 50, '
                'after_id_param = "after_id"'
            )
        },
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_full_copy_then_cheap_incremental_runs(case: str, tmp_path: Path) -> None:
    style, changes = CASES[case]
    clock = ManualClock(T0)
    fake = sandbox(style, clock)
    fake.seed(contacts=230)
    async with bridge(fake, clock, mapping=variant(style, tmp_path, changes),
                      rest_sync_page_size=100) as b:  # fmt: skip
        view: dict[str, dict[str, Any]] = {}
        checkpoint, pages, _ = await run_sync(b, view)
        assert pages >= 2
        assert assert_complete(fake, view) == 230
        assert fake.call_count("GET") <= 16, fake.call_count("GET")  # ~one call per 50
        clock.advance(600)
        fake.reset_calls()
        again: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, again, checkpoint)
        assert again == {} and fake.call_count("GET") <= 2
        rid = next(iter(fake.live()))
        fake.update_contact(rid, title="Chief Listener")
        clock.advance(5)
        await run_sync(b, again, checkpoint)
        assert list(again) == [fake.public_id(rid)]


@pytest.mark.parametrize("case", list(CASES))
async def test_zero_loss_while_contacts_change_under_the_sync(case: str, tmp_path: Path) -> None:
    """Initial sync while contacts are created, updated (some as late commits) and deleted
    between pages, with list lag, random 503s, a 429 burst and same-instant bursts that fill
    pages; incremental runs while writes go on; after writes stop, Talkdesk holds every live
    contact, current."""
    style, changes = CASES[case]
    clock = ManualClock(T0)
    fake = sandbox(style, clock, lag=20)
    fake.seed(contacts=600)
    rng = random.Random(11)

    def churn(page: int) -> None:
        live = list(fake.store.live())
        for _ in range(3):
            fake.create_contact()
        for rid, _ in rng.sample(live, 5):
            fake.update_contact(rid)
        rid, _ = rng.choice(live)
        fake.update_contact(rid, delay=200)  # a late commit, inside the lag window
        fake.delete_contact(rng.choice(live)[0])
        if page % 4 == 0:
            for _ in range(70):  # a burst of same-instant writes: ties filling a page
                fake.create_contact()
        if page == 3:
            fake.rate_limit_burst(3)
        clock.advance(rng.uniform(0, 15))

    listing = {"pages": "/api/v1/contacts", "cursor": "/api/v1/customers"}.get(
        style, "/api/v1/people"
    )
    fake.random_failures(0.08, statuses=(503,), seed=3, path_prefix=listing)
    view: dict[str, dict[str, Any]] = {}
    mapping = variant(style, tmp_path, changes)
    async with bridge(fake, clock, mapping=mapping, rest_sync_page_size=100) as b:
        checkpoint, pages, _ = await run_sync(b, view, between_pages=churn)
        assert pages >= 5, pages
        assert any(s >= 1 for s in b.sleeps)  # a Retry-After waited inside a page's budget
        for _ in range(3):  # Talkdesk's runs every few minutes, writes still going on
            clock.advance(240)
            checkpoint, _, _ = await run_sync(b, view, checkpoint, between_pages=churn)
        fake.random_failures(0)
        fake.reset_faults()
        clock.advance(600)  # writes stopped; late commits and list lag have passed
        await run_sync(b, view, checkpoint)
    assert assert_complete(fake, view) > 600
    deleted = {cid for cid in view if cid not in {fake.public_id(r) for r in fake.live()}}
    assert deleted  # deletions are not announced by these APIs: they stay, as in Talkdesk


class ChurnTransport(httpx.AsyncBaseTransport):
    """Delegates to the sandbox, calling `before` ahead of every listing call past page 1:
    writes that land between the pages of one tie walk."""

    def __init__(self, inner: httpx.AsyncBaseTransport, before: Any) -> None:
        self.inner = inner
        self.before = before
        self.pages: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        if request.url.path.endswith("/contacts") and page > 1:
            self.pages.append(page)
            self.before()
        return await self.inner.handle_async_request(request)


async def test_ties_filling_pages_of_shifting_page_numbers_are_read_again() -> None:
    """260 contacts share one second and pages hold 100: the read walks that second by page
    number while tied contacts are updated (they leave the second, the rest shift back) and
    deleted between those very calls; a shifted listing is noticed and read again."""
    clock = ManualClock(T0)
    fake = sandbox("pages", clock)
    fake.seed(contacts=40)
    clock.advance(3600)
    tied = [fake.create_contact() for _ in range(260)]
    clock.advance(10)
    rng = random.Random(5)
    rounds = {"n": 0}

    def churn() -> None:
        rounds["n"] += 1
        if rounds["n"] > 6:
            return  # the writes calm down, so the walk can finish
        for rid in rng.sample([r for r in tied if r in fake.store], 2):
            fake.update_contact(rid)
        fake.delete_contact(rng.choice([r for r in tied if r in fake.store]))

    transport = ChurnTransport(httpx.ASGITransport(app=fake.app), churn)
    async with bridge(fake, clock, transport=transport, rest_sync_page_size=150) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint, _, _ = await run_sync(b, view)
        assert len(transport.pages) >= 4
        # Every contact still on that second arrived in this very run, not only in the next
        # one's lag window (which would hide a skip).
        second = int(T0 + 3600) * 1000
        still = {r for r, c in fake.live().items() if c["updated_ms"] // 1000 * 1000 == second}
        assert len(still) > 200 and not still - set(view)
        clock.advance(400)
        await run_sync(b, view, checkpoint)
    assert_complete(fake, view)


async def test_a_page_of_one_time_without_a_continuation_fails_loudly(tmp_path: Path) -> None:
    """The keyset style without after_id_param cannot get past a page of one second: the
    bridge says so (502) rather than skipping what is behind it."""
    clock = ManualClock(T0)
    fake = sandbox("keyset", clock)
    for _ in range(60):
        fake.create_contact()
    clock.advance(10)
    mapping = variant(
        "keyset",
        tmp_path,
        {'style = "link", size_param = "limit", page_size = 100, stable = true': (
            'style = "keyset", size_param = "limit", page_size = 50')},
    )  # fmt: skip
    async with bridge(fake, clock, mapping=mapping) as b:
        r = await b.post("contact_sync", {"meta": {}})
    assert r.status_code == 502
    assert "after_id_param" in r.json()["error"]["message"]


async def _naive_run(client: httpx.AsyncClient, since: str, between: Any) -> tuple[set[str], str]:
    """The naive reader: `updated_since` = the checkpoint, pages 1, 2, 3...; its next
    checkpoint is the newest `updated_at` it saw."""
    seen: set[str] = set()
    newest = since
    page = 0
    while True:
        page += 1
        params = {"updated_since": since, "sort": "updated_at", "page": page, "per_page": 20}
        data = (await client.get("/contacts", params=params)).json()["data"]
        for p in data:
            seen.add(str(p["id"]))
            newest = max(newest, p["updated_at"])
        if len(data) < 20:
            return seen, newest
        between(page)


async def test_naive_page_number_paging_loses_contacts(tmp_path: Path) -> None:
    def scenario() -> tuple[ManualClock, Any, Any]:
        clock = ManualClock(T0)
        fake = sandbox("pages", clock)
        fake.seed(contacts=100)
        clock.advance(60)
        fake.store.sync()
        order = [rid for _, rid in fake.index.sorted_keys("_order")]  # the API's own order

        def between(page: int) -> None:
            if page == 1:
                # Three contacts of the first page are edited by a colleague meanwhile.
                for rid in order[:3]:
                    fake.update_contact(rid)
                clock.advance(1)

        return clock, fake, between

    clock, fake, between = scenario()
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers(fake)) as c:
        seen, checkpoint = await _naive_run(c, "1970-01-01T00:00:00Z", between)
        clock.advance(60)
        later, _ = await _naive_run(c, checkpoint, lambda page: None)
    lost = set(fake.live()) - seen - later
    assert len(lost) >= 3, "the naive design should lose the contacts at the page boundary"

    # The bridge, against the same scenario, with the API's pages the same size.
    clock, fake, between = scenario()
    mapping = variant("pages", tmp_path, {"page_size = 100 }": "page_size = 20 }"})
    async with bridge(fake, clock, rest_sync_page_size=20, mapping=mapping) as b:
        view: dict[str, dict[str, Any]] = {}
        await run_sync(b, view, between_pages=between)
    assert_complete(fake, view)


async def test_an_api_that_caps_its_pages_below_page_size_is_still_read_to_the_end(
    tmp_path: Path,
) -> None:
    """The pages API serves at most 100 per page; a mapping asking for 150 must not take the
    first (short) page for the last."""
    clock = ManualClock(T0)
    fake = sandbox("pages", clock)
    fake.seed(contacts=450)
    mapping = variant("pages", tmp_path, {"page_size = 100 }": "page_size = 150 }"})
    async with bridge(fake, clock, mapping=mapping, rest_sync_page_size=1000) as b:
        view: dict[str, dict[str, Any]] = {}
        await run_sync(b, view)
    assert assert_complete(fake, view) == 450
