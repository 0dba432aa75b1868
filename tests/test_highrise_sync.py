"""Contact sync from Highrise: keyset reads over `since=` that lose nobody while the offset
listing shifts under them, ties filling pages, late commits, faults and 503 bursts; and the
proof that naive offset paging over the same sandbox loses people."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from talkdesk_bridge.connectors.highrise.xml import decode, many
from talkdesk_sandbox._clock import ManualClock
from tests.test_highrise_support import (
    BASE,
    T0,
    assert_complete,
    basic,
    bridge,
    run_sync,
    sandbox,
)


async def test_full_copy_joins_pages_and_costs_about_one_call_per_page() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, page_size=100)
    fake.seed(contacts=450)
    async with bridge(fake, clock, highrise_sync_page_size=200) as b:
        view: dict[str, dict[str, Any]] = {}
        checkpoint, pages, _ = await run_sync(b, view)
        assert pages == 2  # upstream pages of ~100 join into Talkdesk pages of 200+
        assert assert_complete(fake, view) == 450
        calls = fake.call_count("GET", "/people.xml")
        assert calls <= 8, calls  # ~one listing call per 100 people, plus the end's check
        # An incremental run with nothing new is cheap and finds nothing.
        clock.advance(600)
        fake.reset_calls()
        again: dict[str, dict[str, Any]] = {}
        await run_sync(b, again, checkpoint)
        assert again == {} and fake.call_count("GET", "/people.xml") <= 2
        # One changed person comes in the next incremental run.
        pid = next(iter(fake.live()))
        fake.update_person(pid, title="Chief Listener")
        clock.advance(5)
        await run_sync(b, again, checkpoint)
        assert again[pid]["title"] == "Chief Listener"


class ChurnTransport(httpx.AsyncBaseTransport):
    """Delegates to the sandbox, calling `before` ahead of every offset (`n`) listing call:
    writes that land between the pages of one tie walk."""

    def __init__(self, inner: httpx.AsyncBaseTransport, before: Any) -> None:
        self.inner = inner
        self.before = before
        self.offsets: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/people.xml" and "n" in request.url.params:
            self.offsets.append(int(request.url.params["n"]))
            self.before()
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
async def test_ties_that_fill_whole_pages_page_by_offset_with_overlap(inclusive: bool) -> None:
    """130 people share one second (a bulk import) and the listing's pages are 25: the read
    pages that second by `n`, overlapping, while people in it are updated (they leave the
    second and shift the rest back) and deleted between those very calls."""
    clock = ManualClock(T0)
    fake = sandbox(clock, page_size=25, since_inclusive=inclusive)
    fake.seed(contacts=40)
    clock.advance(3600)
    tied = [fake.create_person() for _ in range(130)]
    clock.advance(10)
    rng = random.Random(5)

    def churn() -> None:
        for pid in rng.sample([p for p in tied if p in fake.store], 2):
            fake.update_person(pid)
        fake.delete_person(rng.choice([p for p in tied if p in fake.store]))

    transport = ChurnTransport(httpx.ASGITransport(app=fake.app), churn)
    async with bridge(
        fake, clock, transport=transport, highrise_sync_page_size=30,
        highrise_lag_seconds=60,
    ) as b:  # fmt: skip
        view: dict[str, dict[str, Any]] = {}
        checkpoint, pages, _ = await run_sync(b, view)
        assert pages >= 3 and len(transport.offsets) >= 5
        transport.before = lambda: None  # writes stop
        clock.advance(120)
        await run_sync(b, view, checkpoint)
    assert_complete(fake, view)
    assert set(view) - set(fake.live()) <= {p for p in tied if p not in fake.store}


async def test_zero_loss_while_people_change_under_the_sync() -> None:
    """Initial sync while people are created, updated (some as late commits) and deleted
    between pages, with list lag, random 5xx, a 503 + Retry-After burst and ties; incremental
    runs while writes go on; after writes stop, Talkdesk holds every live person, current."""
    clock = ManualClock(T0)
    fake = sandbox(clock, page_size=50, lag=20)
    fake.seed(contacts=900)
    rng = random.Random(11)

    def churn(page: int) -> None:
        live = list(fake.store.live())
        for _ in range(3):
            fake.create_person()
        for pid, _ in rng.sample(live, 5):
            fake.update_person(pid)
        pid, _ = rng.choice(live)
        fake.update_person(pid, delay=200)  # a late commit, inside the lag window
        fake.delete_person(rng.choice(live)[0])
        if page % 4 == 0:
            for _ in range(60):  # a burst of same-second writes: ties filling a page
                fake.create_person()
        if page == 3:
            fake.rate_limit_burst(3)
        clock.advance(rng.uniform(0, 15))

    fake.random_failures(0.08, statuses=(500, 503), seed=3, path_prefix="/people.xml")
    view: dict[str, dict[str, Any]] = {}
    async with bridge(fake, clock, highrise_sync_page_size=100, highrise_lag_seconds=300) as b:
        checkpoint, pages, _ = await run_sync(b, view, between_pages=churn)
        assert pages >= 6, pages
        assert any(s >= 1 for s in b.sleeps)  # a Retry-After waited inside a page's budget
        for _ in range(3):  # Talkdesk's runs every few minutes, writes still going on
            clock.advance(240)
            checkpoint, _, _ = await run_sync(b, view, checkpoint, between_pages=churn)
        fake.random_failures(0)
        fake.reset_faults()
        clock.advance(600)  # writes stopped; late commits and list lag have passed
        await run_sync(b, view, checkpoint)
    assert assert_complete(fake, view) > 900
    deleted = {pid for pid in view if pid not in fake.live()}
    assert all(not fake.store.get(pid) and fake.store.known(pid) for pid in deleted)


async def _naive_run(
    client: httpx.AsyncClient, since: str, between: Any
) -> tuple[dict[str, int], str]:
    """The naive reader: `since` = the checkpoint, offsets `n` = 0, 20, 40...; its next
    checkpoint is the newest `updated_at` it saw."""
    seen: dict[str, int] = {}
    newest = since
    n = page = 0
    while True:
        r = await client.get("/people.xml", params={"since": since, "n": n})
        assert r.status_code == 200
        people = many(decode(r.content)["people"], "person")
        for p in people:
            seen[str(p["id"])] = p["updated_at"]
            stamp = p["updated_at"].replace("-", "").replace(":", "").replace("T", "")[:14]
            newest = max(newest, stamp)
        if not people:
            return seen, newest
        n += len(people)
        page += 1
        between(page)


async def test_naive_offset_paging_over_since_loses_people() -> None:
    def scenario() -> tuple[ManualClock, Any, Any]:
        clock = ManualClock(T0)
        fake = sandbox(clock, page_size=20)
        fake.seed(contacts=100)
        clock.advance(60)
        order = sorted(fake.live(), key=lambda pid: (fake.live()[pid]["updated_at"], pid))

        def between(page: int) -> None:
            if page == 1:
                # Three people from the first page are edited by a colleague meanwhile.
                for pid in order[:3]:
                    fake.update_person(pid)
                clock.advance(1)

        return clock, fake, between

    clock, fake, between = scenario()
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=basic()) as c:
        seen, checkpoint = await _naive_run(c, "19700101000000", between)
        clock.advance(60)
        later, _ = await _naive_run(c, checkpoint, lambda page: None)
    lost = set(fake.live()) - set(seen) - set(later)
    assert len(lost) >= 3, "the naive design should lose the people at the page boundary"

    # The bridge, against the same scenario, with Talkdesk's pages the same size.
    clock, fake, between = scenario()
    async with bridge(fake, clock, highrise_sync_page_size=20) as b:
        view: dict[str, dict[str, Any]] = {}
        await run_sync(b, view, between_pages=between)
    assert_complete(fake, view)
