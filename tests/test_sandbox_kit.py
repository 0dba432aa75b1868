"""The vendor sandbox kit itself (`talkdesk_sandbox`): the versioned store and its lag, late
commits, the gateway's faults, rate windows and latency, the server thread, the CLI, seed data
and the registry. A minimal vendor ("Acme CRM") written on the kit, as a new sandbox would be,
drives the generic parts; the registry tests use the Intercom sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from talkdesk_bridge._phones import normalize_phone
from talkdesk_sandbox import (
    SANDBOXES,
    Call,
    Faker,
    ManualClock,
    RateLimiter,
    RateState,
    Reply,
    Sandbox,
    UnknownSandboxError,
    VendorSandbox,
    VersionedStore,
    json_response,
    load_sandbox,
    vendor_app,
)

T0 = 1_720_000_000.0
TOKEN = "acme-token"


# --- a minimal vendor on the kit ----------------------------------------------------------------


class AcmeCRM(VendorSandbox):
    """Bearer tokens, one rate window per token, `{"error": {...}}` bodies, X-Quota-* headers."""

    connector = "acme"

    def __init__(self, clock: ManualClock, **options: Any) -> None:
        super().__init__(clock=clock, **options)
        self.tokens = {TOKEN, "other-token"}
        self.people: VersionedStore[dict[str, Any]] = VersionedStore(clock, lag=30)

    def build_app(self) -> ASGIApp:
        async def create(request: Request) -> Response:
            body = await request.json()
            self.people.create(body["id"], {**body, "updated_at": self.now})
            return json_response({"id": body["id"]}, 201)

        async def listing(request: Request) -> Response:
            page = self.people.scan(limit=100)
            return json_response({"data": page.records, "total": page.total})

        routes = [
            Route("/people", create, methods=["POST"]),
            Route("/people", listing, methods=["GET"]),
        ]
        return vendor_app(self, routes)

    def authenticate(self, call: Call) -> str | None:
        token = call.headers.get("authorization", "").removeprefix("Bearer ")
        return token if token in self.tokens else None

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        return Reply.json({"error": {"status": status, "message": message or "failed"}}, status)

    def rate_headers(self, state: RateState) -> list[tuple[str, str]]:
        return [("X-Quota-Left", str(state.remaining))]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def acme(clock: ManualClock) -> AcmeCRM:
    return AcmeCRM(clock, rate_limit=(100, 60))


def client_for(app: ASGIApp, token: str = TOKEN) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://acme.test",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest_asyncio.fixture
async def client(acme: AcmeCRM) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(acme.app) as c:
        yield c


# --- the versioned store ------------------------------------------------------------------------


def store(clock: ManualClock, lag: float = 60) -> VersionedStore[dict[str, Any]]:
    return VersionedStore(clock, lag=lag)


def rec(name: str, updated_at: float) -> dict[str, Any]:
    return {"name": name, "updated_at": updated_at}


def test_writes_reach_visible_reads_after_the_lag(clock: ManualClock) -> None:
    s = store(clock)
    s.create("a", rec("Ana", T0))
    assert s.get("a") == rec("Ana", T0) and len(s) == 1  # live at once
    assert s.visible("a") is None and s.scan().records == []
    clock.advance(59)
    assert s.visible_count() == 0
    clock.advance(1)
    assert s.visible("a") == rec("Ana", T0)

    s.update("a", rec("Ana B", T0 + 60))
    assert s.get("a") == rec("Ana B", T0 + 60)
    assert s.visible("a") == rec("Ana", T0)  # the old version until the lag passes
    clock.advance(60)
    assert s.visible("a") == rec("Ana B", T0 + 60)

    s.delete("a")
    assert s.get("a") is None and "a" not in s
    assert s.visible("a") is not None and s.tombstones() == []
    clock.advance(60)
    assert s.visible("a") is None
    assert s.tombstones(since=T0) == [("a", T0 + 120)]
    assert [v.record is None for v in s.history("a")] == [False, False, True]
    with pytest.raises(KeyError):
        s.update("a", rec("x", 0))
    s.create("b", rec("B", 0))
    with pytest.raises(ValueError, match="already exists"):
        s.create("b", rec("B", 0))


def test_a_late_commit_is_visible_only_after_its_delay(clock: ManualClock) -> None:
    s = store(clock, lag=10)
    s.create("on-time", rec("On time", T0))
    s.create("late", rec("Late", T0), delay=300)  # stamped now, committed 5 minutes on
    assert s.history("late")[0].stamp == T0
    clock.advance(10)
    assert [r["name"] for r in s.scan().records] == ["On time"]
    clock.advance(289)
    assert s.visible("late") is None
    clock.advance(1)
    assert [r["name"] for r in s.scan().records] == ["Late", "On time"]  # (T0, id) ties

    # A late version never replaces one written after it.
    s.update("on-time", rec("slow", T0 + 300), delay=100)
    clock.advance(1)
    s.update("on-time", rec("fast", T0 + 301))
    clock.advance(200)
    assert s.visible("on-time") == rec("fast", T0 + 301)


def test_scan_pages_by_modified_then_id_and_the_lag_can_change(clock: ManualClock) -> None:
    s = store(clock, lag=0)
    for rid, at in (("c", 5), ("a", 5), ("b", 1), ("d", 9)):
        s.create(rid, rec(rid, at))
    first = s.scan(limit=2)
    assert [r["name"] for r in first.records] == ["b", "a"] and first.has_more
    rest = s.scan(after=s.key("a"), limit=10)
    assert [r["name"] for r in rest.records] == ["c", "d"] and not rest.has_more
    assert [r["name"] for r in s.scan(descending=True, limit=10).records] == ["d", "c", "a", "b"]
    s.lag = 120  # rebuilt from the histories: everything written just now is hidden again
    assert s.visible_count() == 0
    s.lag = 0
    assert s.visible_count() == 4


def test_bulk_load_counts_each_record_as_written_at_its_stamp(clock: ManualClock) -> None:
    s = store(clock, lag=60)
    s.load([("old", rec("Old", T0 - 3600), T0 - 3600), ("new", rec("New", T0), T0)])
    assert s.visible_count() == 1 and len(s) == 2
    clock.advance(60)
    assert s.visible_count() == 2
    s.create("x", rec("X", T0))
    s.delete("old")
    page = s.live_page(None, 1)
    assert [r["name"] for r in page.records] == ["New"] and page.total == 2
    assert [r["name"] for r in s.live_page(page.next_after, 5).records] == ["X"]
    assert s.known("old") and s.known_count() == 3


# --- the gateway: faults, rate windows, latency, calls -------------------------------------------


async def test_a_faulted_post_creates_nothing(acme: AcmeCRM, client: httpx.AsyncClient) -> None:
    acme.fail_next(2, status=503, path_prefix="/people", method="POST")
    for _ in range(2):
        r = await client.post("/people", json={"id": "p1"})
        assert r.status_code == 503
        assert r.json() == {"error": {"status": 503, "message": "failed"}}  # the vendor's shape
    assert len(acme.people) == 0 and acme.call_count("POST", "/people") == 2
    assert (await client.get("/people")).status_code == 200  # GETs were never matched
    assert (await client.post("/people", json={"id": "p1"})).status_code == 201
    assert len(acme.people) == 1 and not acme.faults.pending()

    acme.fail_next(1, status=502, body="<html>Bad Gateway</html>")
    proxied = await client.get("/people")
    assert proxied.status_code == 502 and proxied.text == "<html>Bad Gateway</html>"
    acme.random_failures(1.0, statuses=(500,), method="POST")
    assert (await client.post("/people", json={"id": "p2"})).status_code == 500
    assert (await client.get("/people")).status_code == 200
    acme.reset_faults()
    assert (await client.post("/people", json={"id": "p2"})).status_code == 201
    assert acme.calls[:2] == [("POST", "/people"), ("POST", "/people")]


async def test_answer_faults_run_the_route(acme: AcmeCRM, client: httpx.AsyncClient) -> None:
    acme.malformed_next(1, "/people", method="POST")
    truncated = await client.post("/people", json={"id": "p1"})
    assert truncated.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.text)
    acme.garble_next(1, "/people")
    garbled = await client.get("/people")
    assert garbled.status_code == 200 and b"\xff" in garbled.content
    with pytest.raises(UnicodeDecodeError):
        garbled.content.decode()
    assert len(acme.people) == 1  # the truncated create took effect
    with pytest.raises(ConnectionResetError):  # socket faults need serve()
        acme.reset_next(1)
        await client.get("/people")


async def test_rate_windows_per_token_with_the_vendors_headers(
    acme: AcmeCRM, clock: ManualClock
) -> None:
    acme.rate_limit = (3, 60)
    async with client_for(acme.app) as a, client_for(acme.app, "other-token") as b:
        answers = [await a.get("/people") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["x-quota-left"] for r in answers] == ["2", "1", "0", "0"]
        assert answers[3].json()["error"]["status"] == 429
        # The default 429 adds Retry-After: the rest of the window (aligned to the minute).
        assert answers[3].headers["retry-after"] == str(int(60 - T0 % 60))
        assert (await b.get("/people")).status_code == 200  # its own window
        clock.advance(60)
        assert (await a.get("/people")).headers["x-quota-left"] == "2"
        acme.rate_limit_burst(1)
        burst = await a.get("/people")
        assert burst.status_code == 429 and burst.headers["x-quota-left"] == "0"
    async with client_for(acme.app, "nope") as anonymous:
        denied = await anonymous.get("/people")
    assert denied.status_code == 401 and denied.json()["error"]["status"] == 401


def test_rate_limiter_windows(clock: ManualClock) -> None:
    aligned = RateLimiter(2, 10, clock)
    clock.set(1_000_003)
    assert [aligned.hit("k").allowed for _ in range(3)] == [True, True, False]
    state = aligned.peek("k")
    assert (state.remaining, state.reset, state.retry_after) == (0, 1_000_010, 7)
    assert aligned.peek("other").remaining == 2
    rolling = RateLimiter(1, 10, clock, aligned=False)
    assert rolling.hit().allowed and rolling.peek().reset == 1_000_013
    clock.advance(9)
    assert not rolling.hit().allowed
    clock.advance(1)
    assert rolling.hit().allowed


async def test_latency_and_hangs_delay_the_answer(acme: AcmeCRM, client: httpx.AsyncClient) -> None:
    acme.latency = 0.05
    started = time.perf_counter()
    assert (await client.get("/people")).status_code == 200
    assert time.perf_counter() - started >= 0.05
    acme.latency = 0
    acme.hang_next(1, 0.1, "/people", method="POST")
    started = time.perf_counter()
    await client.get("/people")
    assert time.perf_counter() - started < 0.1  # method does not match
    await client.post("/people", json={"id": "p1"})
    assert time.perf_counter() - started >= 0.1
    assert acme.call_counts[("GET", "/people")] == 2
    acme.reset_calls()
    assert acme.calls == []


# --- the server thread and the CLI --------------------------------------------------------------


async def test_serve_yields_a_base_url_and_socket_faults_work(acme: AcmeCRM) -> None:
    with acme.serve(port=0) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as c:
            assert (await c.post("/people", json={"id": "p1"})).status_code == 201
            acme.reset_next(1, "/people", method="POST", processed=False)
            with pytest.raises(httpx.TransportError):
                await c.post("/people", json={"id": "p2"})
            assert (await c.get("/people")).status_code == 200
            acme.garble_next(1, "/people")
            garbled = await c.get("/people")
            assert garbled.status_code == 200 and garbled.content.startswith(b"\xff")
    assert len(acme.people) == 1


def test_cli_prints_the_url_and_credentials_and_serves_until_stopped() -> None:
    args = ["intercom", "--port", "0", "--contacts", "15", "--token", "cli-token"]
    args += ["--latency-ms", "1", "--seed", "3", "--json"]
    with subprocess.Popen(
        [sys.executable, "-m", "talkdesk_sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            assert proc.stdout is not None
            line = json.loads(proc.stdout.readline())
            assert line["auth"] == {"access_token": "cli-token"}
            base_url = line["base_url"]
            assert line["env"] == {"TALKDESK_BRIDGE_INTERCOM_BASE_URL": base_url}
            auth = {"Authorization": "Bearer cli-token"}
            listed = httpx.get(f"{base_url}/contacts", headers=auth)
            assert listed.status_code == 200 and listed.json()["total_count"] == 15
            assert httpx.get(f"{base_url}/me").status_code == 401
        finally:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_refuses_an_unknown_vendor() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "talkdesk_sandbox", "nope"], capture_output=True, timeout=30
    )
    assert done.returncode == 2 and b"intercom" in done.stderr


# --- seed data ----------------------------------------------------------------------------------


def test_seed_people_are_deterministic_varied_and_parse_to_e164() -> None:
    people = Faker(7).people(400)
    assert people == Faker(7).people(400) and people != Faker(8).people(400)
    assert {len(p.emails) for p in people} == {1, 2, 3}
    assert {len(p.phones) for p in people} == {0, 1, 2, 3}
    phones = [phone for p in people for phone in p.phones]
    assert {p.style for p in phones} == {"e164", "international", "national", "extension", "idd"}
    assert any(p.number.startswith("00") for p in phones)
    assert any(p.extension and p.extension in p.number for p in phones)
    for phone in phones:  # every spelling means the number the bridge would send
        assert normalize_phone(phone.number) == phone.e164, phone
        if phone.style == "national":
            assert not phone.number.startswith(("+", "00"))
    emails = [e.address for p in people for e in p.emails]
    assert len(emails) == len(set(emails))
    assert any(p.company is None for p in people) and any(p.company for p in people)


# --- the registry -------------------------------------------------------------------------------


async def test_load_sandbox_builds_a_registered_sandbox(clock: ManualClock) -> None:
    assert set(SANDBOXES) >= {"intercom"}
    sandbox = load_sandbox("intercom", token="reg-token", latency=0.0, clock=clock, lag=30)
    assert isinstance(sandbox, Sandbox) and sandbox.connector == "intercom"
    sandbox.seed(contacts=30, seed=2)
    assert sandbox.bridge_env("http://h:1") == {"TALKDESK_BRIDGE_INTERCOM_BASE_URL": "http://h:1"}
    headers = {"Authorization": f"Bearer {sandbox.credentials()['access_token']}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app), base_url="https://api.intercom.io"
    ) as c:
        listed = (await c.get("/contacts", params={"per_page": 150}, headers=headers)).json()
        assert listed["total_count"] == 30
        assert len((await c.get("/admins", headers=headers)).json()["admins"]) > 1
        bad = {"Authorization": f"Bearer {sandbox.bad_credentials()['access_token']}"}
        assert (await c.get("/me", headers=bad)).status_code == 401
    phones = [c["phone"] for c in listed["data"] if c["phone"]]
    assert len({p[:2] for p in phones}) > 1  # mixed spellings: "+1...", "00...", "(4..."


def test_unknown_sandbox_names_list_the_known_ones() -> None:
    with pytest.raises(UnknownSandboxError, match=r"'zendsk'.*known: .*intercom") as caught:
        load_sandbox("zendsk")
    assert not isinstance(caught.value, KeyError)
    with pytest.raises(TypeError):
        load_sandbox("intercom", no_such_option=1)
