"""Fault injection: every Intercom endpoint of the bridge in front of a failing Intercom.

Each endpoint must answer its documented status within its time budget, as JSON, whatever
Intercom does: 200/201 when a fault is absorbed by a retry, 503 (with Retry-After when rate
limited) or 504 for what may pass, 502 for an unusable answer, never a 500 and never a 4xx for
an upstream fault. A create is never repeated once Intercom may have processed it.

- Answers that arrive (429 storms, 5xx bursts, truncated, non-JSON or wrongly shaped bodies) go
  over `httpx.ASGITransport` with a `ManualClock`: rate-limit waits and backoff cost no real
  time, and the budget is checked on the clock the bridge sleeps on.
- Socket faults (a hung call, a reset connection, a connection closed mid-body, a body that
  trickles in) go over a real socket to the served fake, through the connector's default
  transport, with small budgets measured in real time.

Then: partial answers when an optional or one of several calls fails, and a contact sync
interrupted by a mix of faults that Talkdesk resumes at the same offset without losing anyone.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from talkdesk_bridge import create_app
from talkdesk_bridge.connectors.intercom import IntercomConnector
from talkdesk_sandbox.intercom import FakeIntercom, ManualClock
from tests._support import advancing_sleep
from tests.test_intercom_support import (
    T0,
    TOKEN,
    auth,
    bridge,
    intercom_settings,
    live_contacts,
)
from tests.test_intercom_sync import assert_view_is_complete

CONTACT = "6685e6a1f3b9c2d4e5f60718"  # the caller whose interactions are looked up
ACTED_ON = "6685e6a1f3b9c2d4e5f60719"  # notes and tickets go here: interactions stay put
EMAIL = "ana.silva@example.com"
PHONE = "+14155550123"
HTML = "<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>"
MAINTENANCE = "<!doctype html><title>Down for maintenance</title>"
# Real-time slack over a budget: the bridge's own work, the event loop, a loaded machine.
SLACK = 0.35
# A hung upstream call outlives every budget below by far.
HANG = 1.5
TRICKLE = 2.0

# Budgets small enough to keep the socket table fast, large enough for one retry to fit.
SOCKET_SETTINGS: dict[str, Any] = {
    "intercom_timeout_seconds": 0.2,
    "intercom_request_budget_seconds": 0.6,
    "intercom_sync_budget_seconds": 0.6,
}
# Room for a retry even on a loaded machine: a tighter pair failed there (partial answers).
INTERACTION_SOCKET_SETTINGS: dict[str, Any] = {
    "intercom_timeout_seconds": 0.2,
    "intercom_interactions_budget_seconds": 0.8,
}


# --- the fake's data ----------------------------------------------------------------------------


def seed(fake: FakeIntercom, now: float) -> set[str]:
    """A caller with two conversations and a ticket, plus a crowd; the contacts' ids."""
    fake.add_contact(name="Ana Silva", email=EMAIL, phone=PHONE, id=CONTACT)
    fake.add_conversation(CONTACT, body="Card declined", created_at=int(now) - 100)
    fake.add_conversation(CONTACT, body="Invoice question", created_at=int(now) - 3000)
    fake.add_ticket(CONTACT, title="Cannot log in", created_at=int(now) - 200)
    fake.add_contact(name="Bo Lindqvist", email="bo@example.com", id=ACTED_ON)
    return {CONTACT, ACTED_ON, *(c["id"] for c in fake.seed_contacts(20))}


def customer_ticket_type(fake: FakeIntercom) -> str:
    return next(str(t["id"]) for t in fake.store.ticket_types() if t["category"] == "Customer")


def notes(fake: FakeIntercom) -> int:
    contact = fake.get_contact(ACTED_ON)
    assert contact is not None
    count = contact["notes"]["total_count"]
    assert isinstance(count, int)
    return count


def tickets(fake: FakeIntercom) -> int:
    return len(fake.store.ticket_index.records)


def contacts(fake: FakeIntercom) -> int:
    return fake.store.contact_count()


# --- the endpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    path: str
    # The upstream calls that carry the answer: (method, path) for the fake's path_prefix.
    targets: tuple[tuple[str, str], ...]
    request: Callable[[FakeIntercom], dict[str, Any]]
    budget_setting: str
    # Creates: the objects of the kind created so far (None for reads).
    created: Callable[[FakeIntercom], int] | None = None

    @property
    def create(self) -> bool:
        return self.created is not None

    @property
    def success(self) -> int:
        return 201 if self.create else 200

    def socket_settings(self) -> dict[str, Any]:
        if self.path == "interaction_update":
            return INTERACTION_SOCKET_SETTINGS
        return SOCKET_SETTINGS

    def __str__(self) -> str:
        return self.path


def _note(fake: FakeIntercom) -> dict[str, Any]:
    meta = {"contact_external_id": ACTED_ON, "agent_external_id": fake.me_id}
    return {"auth": auth(), "meta": meta, "data": {"body": "Called about the invoice"}}


def _ticket(fake: FakeIntercom) -> dict[str, Any]:
    data = {"title": "Missed call", "ticket_type_id": customer_ticket_type(fake)}
    return {"auth": auth(), "meta": {"contact_external_id": ACTED_ON}, "data": data}


def _contact(fake: FakeIntercom) -> dict[str, Any]:
    email = f"caller-{uuid.uuid4().hex[:12]}@example.com"
    return {"auth": auth(), "data": {"name": "New Caller", "email": email}}


REQUEST_BUDGET = "intercom_request_budget_seconds"
ENDPOINTS = (
    Endpoint("auth_validation", (("GET", "/me"),), lambda f: {"auth": auth()}, REQUEST_BUDGET),
    Endpoint(
        "contact_sync",
        (("POST", "/contacts/search"),),
        lambda f: {"auth": auth(), "meta": {}},
        "intercom_sync_budget_seconds",
    ),
    Endpoint(
        "interaction_update",
        (("POST", "/conversations/search"), ("POST", "/tickets/search")),
        lambda f: {"auth": auth(), "data": {"contact_external_id": CONTACT}},
        "intercom_interactions_budget_seconds",
    ),
    Endpoint("agent_sync", (("GET", "/admins"),), lambda f: {"auth": auth()}, REQUEST_BUDGET),
    Endpoint(
        "actions/create_note",
        (("POST", f"/contacts/{ACTED_ON}/notes"),),
        _note,
        REQUEST_BUDGET,
        created=notes,
    ),
    Endpoint("actions/create_ticket", (("POST", "/tickets"),), _ticket, REQUEST_BUDGET, tickets),
    Endpoint(
        "actions/create_contact", (("POST", "/contacts"),), _contact, REQUEST_BUDGET, contacts
    ),
)


async def check_success(
    endpoint: Endpoint, fake: FakeIntercom, r: httpx.Response, seeded: set[str]
) -> None:
    """The answer a fault-free call gives: the fault was absorbed, nothing was lost."""
    assert r.status_code == endpoint.success, (endpoint.path, r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    if endpoint.path == "auth_validation":
        assert body == {"region": "us"}
    elif endpoint.path == "contact_sync":
        got = [c["id"] for c in body["contacts"]]
        assert len(got) == len(set(got)) and "next_offset" not in body
        fake.reset_faults()
        assert seeded <= set(got) <= set(await live_contacts(fake))
    elif endpoint.path == "interaction_update":
        assert sorted(i["type"] for i in body) == ["conversation", "conversation", "ticket"]
    elif endpoint.path == "agent_sync":
        assert fake.me_id in {a["id"] for a in body["agents"]}
    elif endpoint.path == "actions/create_contact":
        assert body["contact_external_id"] and body["message"]
    else:
        assert body["external_id"] and body["message"]


def check_error(r: httpx.Response, status: int, *, retry_after: bool = False) -> None:
    """A documented upstream-fault status, as JSON with an error code, never a secret."""
    codes = {502: "upstream_failed", 503: "upstream_unavailable", 504: "upstream_timeout"}
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == codes[status] and isinstance(error["message"], str)
    assert error["message"].startswith("Intercom"), error
    assert TOKEN not in r.text
    if retry_after:
        assert int(r.headers["retry-after"]) >= 1


# --- answers that arrive: 429s, 5xx, bodies that are not what they should be -------------------


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[FakeIntercom, str, str], None]  # (fake, method, path)
    read: int  # the status a read endpoint answers
    # The status an action answers: 502 whenever the write reached Intercom unconfirmed, as
    # a 503/504 would invite Talkdesk to repeat it.
    create: int
    # Objects the faulted create leaves behind (None: not known when the answer comes).
    created: int | None = None
    retry_after: bool = False
    # Whether a create may be called again: only after a refusal that proves it never ran.
    create_retried: bool = False

    def __str__(self) -> str:
        return self.name


ANSWER_FAULTS = (
    Fault(
        "429 storm longer than the budget",
        lambda fake, method, path: fake.rate_limit_burst(100),
        read=503,
        create=503,
        created=0,
        retry_after=True,
        create_retried=True,
    ),
    Fault(
        "5xx burst shorter than the retries",
        lambda fake, method, path: fake.fail_next(2, 503, path, method=method),
        read=200,
        create=502,
        created=0,
    ),
    Fault(
        "5xx burst longer than the retries",
        lambda fake, method, path: fake.fail_next(10, 500, path, method=method),
        read=503,
        create=502,
        created=0,
    ),
    Fault(
        "502 HTML pages from a proxy",
        lambda fake, method, path: fake.fail_next(10, 502, path, HTML, method=method),
        read=503,
        create=502,
        created=0,
    ),
    Fault(
        "truncated JSON",
        lambda fake, method, path: fake.malformed_next(10, path, method=method),
        read=502,
        create=502,
        created=1,  # the fake runs the call, then cuts its answer in half
    ),
    Fault(
        "HTML instead of JSON",
        lambda fake, method, path: fake.fail_next(10, 200, path, MAINTENANCE, method=method),
        read=502,
        create=502,
        created=0,
    ),
    Fault(
        "JSON of the wrong shape",
        lambda fake, method, path: fake.fail_next(10, 200, path, "[]", method=method),
        read=502,
        create=502,
        created=0,
    ),
)


@pytest.mark.parametrize("fault", ANSWER_FAULTS, ids=str)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_answer_faults(endpoint: Endpoint, fault: Fault) -> None:
    clock = ManualClock(T0 + 4)  # the fake's 10 s rate-limit window resets in 6 s
    fake = FakeIntercom(token=TOKEN, clock=clock)
    seeded = seed(fake, T0)
    budget = getattr(intercom_settings(), endpoint.budget_setting)
    async with bridge(fake, clock) as b:
        body = endpoint.request(fake)
        before = endpoint.created(fake) if endpoint.created else 0
        for method, path in endpoint.targets:
            fault.inject(fake, method, path)
        started, real = clock(), time.perf_counter()
        r = await b.post(endpoint.path, body)
        waited, real = clock() - started, time.perf_counter() - real
        status = fault.create if endpoint.create else fault.read
        if status in (200, 201):
            await check_success(endpoint, fake, r, seeded)
        else:
            check_error(r, status, retry_after=fault.retry_after)
            if fault.retry_after:  # when the fake's 10 s window opens again, not the budget
                assert int(r.headers["retry-after"]) <= 10
    # Rate-limit waits and backoff fit the endpoint's budget (on the bridge's clock).
    assert waited <= budget and sum(b.sleeps) <= budget, (waited, b.sleeps)
    assert real < 1.0
    if endpoint.create:
        ((method, path),) = endpoint.targets
        calls = fake.calls.count((method, path))
        assert calls >= 1
        if not fault.create_retried:
            assert calls == 1, f"a create was repeated after {fault}"
        if fault.created is not None:
            assert endpoint.created is not None
            assert endpoint.created(fake) - before == fault.created


# --- socket faults over a served fake -----------------------------------------------------------


@dataclass
class ServedFake:
    fake: FakeIntercom
    url: str
    seeded: set[str]


@pytest.fixture(scope="module")
def served() -> Iterator[ServedFake]:
    """One served fake for the module (a server per test would cost more than the tests)."""
    fake = FakeIntercom(token=TOKEN)
    seeded = seed(fake, time.time())
    with fake.serve() as url:
        yield ServedFake(fake, url, seeded)


@pytest.fixture
def live(served: ServedFake) -> ServedFake:
    served.fake.reset_faults()
    served.fake.reset_calls()
    return served


@dataclass
class SocketBridge:
    client: httpx.AsyncClient
    connector: IntercomConnector
    sleeps: list[float]

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/intercom/{path}", json=body)


@contextlib.asynccontextmanager
async def socket_bridge(
    url: str, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[SocketBridge]:
    """The app in front of a served fake through the connector's own (default) transport.

    With `clock`, rate-limit windows and backoff run on it (waits cost no real time) while
    budgets and timeouts stay in real time.
    """
    settings = intercom_settings(intercom_base_url=url, **overrides)
    sleeps: list[float] = []
    timing: dict[str, Any] = {}
    if clock is not None:
        timing = {"clock": clock, "sleep": advancing_sleep(clock, sleeps)}
    connector = IntercomConnector(settings, **timing)
    app = create_app(settings, connectors={"intercom": connector})
    async with app.router.lifespan_context(app):
        asgi = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=asgi, base_url="https://bridge.test") as client:
            yield SocketBridge(client, connector, sleeps)


SOCKET_FAULTS = (
    Fault(
        "hung call, once",
        lambda fake, method, path: fake.hang_next(1, HANG, path, method=method),
        read=200,
        create=502,
    ),
    Fault(
        "hung calls",
        lambda fake, method, path: fake.hang_next(10, HANG, path, method=method),
        read=504,
        create=502,
    ),
    Fault(
        "connection reset, once",
        lambda fake, method, path: fake.reset_next(1, path, method=method),
        read=200,
        create=502,
        created=1,  # processed, then the connection died: exactly once, never twice
    ),
    Fault(
        "connection resets",
        lambda fake, method, path: fake.reset_next(20, path, method=method),
        read=503,
        create=502,
        created=1,
    ),
    Fault(
        "connection closed mid-body",
        lambda fake, method, path: fake.cut_next(20, path, method=method),
        read=503,
        create=502,
        created=1,
    ),
    Fault(
        "slow body, once",
        lambda fake, method, path: fake.trickle_next(1, TRICKLE, path, method=method),
        read=200,
        create=502,
        created=1,
    ),
    Fault(
        "slow bodies",
        lambda fake, method, path: fake.trickle_next(10, TRICKLE, path, method=method),
        read=504,
        create=502,
        created=1,
    ),
)


@pytest.mark.parametrize("fault", SOCKET_FAULTS, ids=str)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_socket_faults(endpoint: Endpoint, fault: Fault, live: ServedFake) -> None:
    fake = live.fake
    settings = endpoint.socket_settings()
    budget = getattr(intercom_settings(**settings), endpoint.budget_setting)
    async with socket_bridge(live.url, **settings) as b:
        body = endpoint.request(fake)
        before = endpoint.created(fake) if endpoint.created else 0
        for method, path in endpoint.targets:
            fault.inject(fake, method, path)
        started = time.perf_counter()
        r = await b.post(endpoint.path, body)
        elapsed = time.perf_counter() - started
        status = fault.create if endpoint.create else fault.read
        if status in (200, 201):
            await check_success(endpoint, fake, r, live.seeded)
        else:
            check_error(r, status)
    assert elapsed <= budget + SLACK, f"{endpoint} answered in {elapsed:.2f} s"
    if endpoint.create:
        ((method, path),) = endpoint.targets
        assert fake.calls.count((method, path)) == 1, f"a create was repeated after {fault}"
        if fault.created is not None:
            assert endpoint.created is not None
            assert endpoint.created(fake) - before == fault.created


# --- partial answers ----------------------------------------------------------------------------

ONE_SEARCH_FAULTS = (
    *(f for f in SOCKET_FAULTS if f.read != 200),
    *(f for f in ANSWER_FAULTS if f.read != 200 and not f.retry_after),
)


@pytest.mark.parametrize("fault", ONE_SEARCH_FAULTS, ids=str)
async def test_interactions_answer_with_what_they_have_when_one_search_fails(
    fault: Fault, live: ServedFake
) -> None:
    fake = live.fake
    settings = INTERACTION_SOCKET_SETTINGS
    budget = settings["intercom_interactions_budget_seconds"]
    async with socket_bridge(live.url, **settings) as b:
        fault.inject(fake, "POST", "/tickets/search")
        started = time.perf_counter()
        r = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_external_id": CONTACT}}
        )
        elapsed = time.perf_counter() - started
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    assert [i["type"] for i in r.json()] == ["conversation", "conversation"]
    assert elapsed <= budget + SLACK, elapsed


async def test_interactions_answer_without_links_when_me_hangs(live: ServedFake) -> None:
    fake = live.fake
    settings = INTERACTION_SOCKET_SETTINGS
    budget = settings["intercom_interactions_budget_seconds"]
    async with socket_bridge(live.url, **settings) as b:
        fake.hang_next(10, HANG, "/me")  # the app id makes links: optional
        started = time.perf_counter()
        r = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_external_id": CONTACT}}
        )
        elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    assert len(r.json()) == 3 and not any("url" in i for i in r.json())
    assert elapsed <= budget + SLACK, elapsed


async def test_interactions_by_email_and_phone_survive_one_hung_lookup(live: ServedFake) -> None:
    fake = live.fake
    # The defaults' proportions: one call may take longer than the whole budget (10 s vs 2 s).
    settings: dict[str, Any] = {
        "intercom_timeout_seconds": 5.0,
        "intercom_interactions_budget_seconds": 0.4,
    }
    async with socket_bridge(live.url, **settings) as b:
        await b.post("auth_validation", {"auth": auth()})  # the app id is cached
        fake.hang_next(1, HANG, "/contacts/search")  # the first of the two lookups
        started = time.perf_counter()
        r = await b.post(
            "interaction_update",
            {"auth": auth(), "data": {"contact_emails": [EMAIL], "contact_phones": [PHONE]}},
        )
        elapsed = time.perf_counter() - started
    assert elapsed <= 0.4 + SLACK, elapsed
    assert r.status_code == 200, r.text
    assert sorted(i["type"] for i in r.json()) == ["conversation", "conversation", "ticket"]


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda fake: fake.hang_next(10, HANG, "/me"), id="me hangs"),
        pytest.param(lambda fake: fake.fail_next(10, 503, "/me"), id="me unavailable"),
        pytest.param(lambda fake: fake.reset_next(20, "/me"), id="me resets"),
    ],
)
async def test_a_created_contact_is_answered_without_its_link_when_me_fails(
    inject: Callable[[FakeIntercom], None], live: ServedFake
) -> None:
    fake = live.fake
    budget = SOCKET_SETTINGS["intercom_request_budget_seconds"]
    async with socket_bridge(live.url, **SOCKET_SETTINGS) as b:
        before = contacts(fake)
        inject(fake)
        started = time.perf_counter()
        r = await b.post("actions/create_contact", _contact(fake))
        elapsed = time.perf_counter() - started
    assert r.status_code == 201, r.text
    assert r.json()["contact_external_id"] and "contact_external_url" not in r.json()
    assert contacts(fake) == before + 1 and fake.calls.count(("POST", "/contacts")) == 1
    assert elapsed <= budget + SLACK, elapsed


# --- a contact sync interrupted by faults ---------------------------------------------------------

SEARCH = "/contacts/search"


def sync_faults(fake: FakeIntercom) -> dict[int, Callable[[], None]]:
    """Before Talkdesk asks for page n: faults on the contact search (each stage outlasts the
    bridge's retries, so Talkdesk sees it)."""
    return {
        0: lambda: fake.fail_next(6, 503, SEARCH),
        1: lambda: fake.rate_limit_burst(3),
        2: lambda: fake.reset_next(6, SEARCH),
        3: lambda: fake.malformed_next(1, SEARCH),
        4: lambda: fake.cut_next(6, SEARCH),
        5: lambda: fake.hang_next(4, 0.8, SEARCH),
        6: lambda: fake.fail_next(1, 200, SEARCH, MAINTENANCE),
        7: lambda: fake.trickle_next(4, 0.8, SEARCH),
        8: lambda: fake.fail_next(8, 502, SEARCH, HTML),
    }


@pytest.mark.parametrize("prefetch", [0, 3], ids=["no read-ahead", "read-ahead"])
async def test_an_interrupted_contact_sync_resumes_at_the_same_offset_without_loss(
    prefetch: int,
) -> None:
    clock = ManualClock(T0)
    fake = FakeIntercom(token=TOKEN, clock=clock)
    fake.seed_contacts(600)
    settings: dict[str, Any] = {
        "intercom_search_page_size": 50,
        "intercom_sync_page_size": 50,
        "intercom_sync_budget_seconds": 0.6,
        "intercom_timeout_seconds": 0.2,
        "intercom_prefetch_pages": prefetch,
    }
    faults = sync_faults(fake)
    view: dict[str, dict[str, Any]] = {}
    failures: list[tuple[int, int]] = []  # (page, status)
    rate_limited: list[httpx.Response] = []
    with fake.serve() as url:
        async with socket_bridge(url, clock, **settings) as b:
            meta: dict[str, Any] = {}
            page = 0
            for _ in range(100):
                if page in faults:
                    faults.pop(page)()
                started = time.perf_counter()
                r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
                elapsed = time.perf_counter() - started
                assert elapsed <= 0.6 + SLACK, (page, r.status_code, elapsed)
                assert r.headers["content-type"] == "application/json"
                if r.status_code != 200:
                    assert r.status_code in (502, 503, 504), r.text
                    check_error(r, r.status_code)
                    failures.append((page, r.status_code))
                    if page == 1:
                        rate_limited.append(r)
                    # As Talkdesk: wait what the bridge asked, then the same offset again.
                    clock.advance(int(r.headers.get("retry-after", "1")))
                    continue
                body = r.json()
                ids = [c["id"] for c in body["contacts"]]
                assert len(ids) == len(set(ids)), "one contact twice in one page"
                view.update({c["id"]: c for c in body["contacts"]})
                page += 1
                if "next_offset" not in body:
                    break
                meta = {"offset": body["next_offset"]}
            else:
                raise AssertionError("the run did not end")
        fake.reset_faults()
        # Talkdesk's view (upsert by id) holds every live contact, as it is now.
        assert await assert_view_is_complete(fake, view) == len(view) == 600
    assert not faults, f"the run ended before stages {sorted(faults)} of the faults"
    if not prefetch:  # read-ahead may meet a fault before Talkdesk asks for its page
        # Garbled pages are asked again (reads), so they may not surface at all.
        assert {503, 504} <= {status for _, status in failures} <= {502, 503, 504}, failures
        # Every stage surfaced, but a single garbled page (3, 6), which a read asks again for.
        assert set(range(9)) - {3, 6} <= {p for p, _ in failures}, repr(failures)
        # The 429s: each answered 503 at once, saying when to come back (the window's reset).
        assert rate_limited and all(1 <= int(r.headers["retry-after"]) <= 10 for r in rate_limited)


# --- the fake's socket faults themselves ----------------------------------------------------------


async def test_the_fakes_socket_faults(live: ServedFake) -> None:
    fake = live.fake
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as client:
        before = notes(fake)
        fake.reset_next(1, f"/contacts/{ACTED_ON}/notes", method="POST")
        with pytest.raises(httpx.TransportError):
            await client.post(
                f"/contacts/{ACTED_ON}/notes", json={"body": "x", "admin_id": fake.me_id}
            )
        assert notes(fake) == before + 1  # processed before the reset
        fake.reset_next(1, "/admins", processed=False)
        with pytest.raises(httpx.TransportError):
            await client.get("/admins")
        fake.cut_next(1, "/admins")
        with pytest.raises(httpx.TransportError):
            await client.get("/admins")
        fake.trickle_next(1, 0.3, "/me", chunk=64)
        started = time.perf_counter()
        r = await client.get("/me", timeout=httpx.Timeout(0.2))  # no read waits 0.2 s
        assert r.status_code == 200 and r.json()["id"] == fake.me_id
        assert time.perf_counter() - started >= 0.3
        assert (await client.get("/admins")).status_code == 200
    # Over ASGI there is no connection to drop.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url="https://api.intercom.io"
    ) as client:
        fake.reset_next(1, "/admins")
        with pytest.raises(ConnectionResetError):
            await client.get("/admins", headers=headers)
