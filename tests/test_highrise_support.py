"""Shared harness for the Highrise tests (the bridge in front of the Highrise sandbox), and the
sandbox's own behaviour: the awkward parts a connector must meet.

The connector's real HTTP code talks to `talkdesk_sandbox.highrise` over `httpx.ASGITransport`;
time is a `ManualClock` shared by the sandbox and the connector, whose `sleep` advances it.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from talkdesk_bridge import Settings
from talkdesk_bridge._phones import normalize_phone
from talkdesk_bridge.connectors.highrise import HighriseConnector
from talkdesk_bridge.connectors.highrise.xml import decode, many
from talkdesk_sandbox._clock import ManualClock
from talkdesk_sandbox.highrise import HighriseSandbox
from tests._support import ClockedBridge, clocked_bridge

T0 = 1_720_000_000.0
TOKEN = "hr-test-token-0123456789abcdef"
BASE = "https://acme.highrisehq.com"


def auth(token: str = TOKEN, account: str = "acme") -> dict[str, str]:
    return {"account": account, "api_token": token}


Bridge = ClockedBridge


def sandbox(clock: ManualClock, **options: Any) -> HighriseSandbox:
    options.setdefault("rate_limit", None)
    options.setdefault("email_search_limit", None)
    return HighriseSandbox(token=TOKEN, clock=clock, **options)


@contextlib.asynccontextmanager
async def bridge(
    fake: HighriseSandbox,
    clock: ManualClock,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AsyncIterator[Bridge]:
    settings = Settings(**{"connectors": ["highrise"], "highrise_base_url": BASE, **overrides})
    transport = transport or httpx.ASGITransport(app=fake.app)
    async with clocked_bridge("highrise", HighriseConnector, settings, clock, transport) as b:
        yield b


async def run_sync(
    b: Bridge,
    view: dict[str, dict[str, Any]],
    checkpoint: str | None = None,
    *,
    between_pages: Callable[[int], None] | None = None,
) -> tuple[str, int, int]:
    """Talkdesk's synchronizer: follow next_offset, upsert by id, come back after a 503 when
    told. Returns (last checkpoint, pages, 503s)."""
    meta: dict[str, Any] = {}
    if checkpoint:
        meta["synchronization_checkpoint"] = checkpoint
    pages = retried = 0
    while True:
        r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
        if r.status_code == 503:
            wait = int(r.headers["retry-after"])
            assert wait >= 1
            b.clock.advance(wait)
            retried += 1
            assert retried < 100, "the bridge keeps failing"
            continue
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        for contact in body["contacts"]:
            assert contact["name"].strip()
            view[contact["id"]] = contact
        if "next_offset" not in body:
            return body["synchronization_checkpoint"], pages, retried
        meta = {**meta, "offset": body["next_offset"]}
        if between_pages is not None:
            between_pages(pages)


def expected(person: dict[str, Any]) -> dict[str, Any]:
    """What Talkdesk must hold for a live Highrise person (from the sandbox's data)."""
    name = f"{person['first_name']} {person['last_name']}".strip()
    phones: list[str] = []
    for p in person["phones"]:
        if (value := normalize_phone(p["number"])) not in phones:
            phones.append(value)
    return {"name": name, "emails": [e["address"] for e in person["emails"]], "phones": phones,
            "title": person["title"]}  # fmt: skip


def held(contact: dict[str, Any]) -> dict[str, Any]:
    return {k: contact.get(k, [] if k in ("emails", "phones") else None)
            for k in ("name", "emails", "phones", "title")}  # fmt: skip


def assert_complete(fake: HighriseSandbox, view: dict[str, dict[str, Any]]) -> int:
    live = fake.live()
    missing = sorted(set(live) - set(view))
    assert not missing, f"{len(missing)} live people never reached Talkdesk"
    stale = [pid for pid, p in live.items() if held(view[pid]) != expected(p)]
    assert not stale, f"{len(stale)} people hold outdated data, e.g. {stale[:3]}"
    return len(live)


def basic(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:X".encode()).decode()}


@contextlib.asynccontextmanager
async def raw(fake: HighriseSandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=basic()) as c:
        yield c


# --- the sandbox's behaviour -------------------------------------------------------------


async def test_sandbox_speaks_highrise_xml() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=30)
    async with raw(fake) as c:
        r = await c.get("/people.xml", params={"since": "19700101000000"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
        assert b'type="array"' in r.content and b'nil="true"' in r.content
        assert b"<avatar_url" in r.content and b"<avatar-url" in r.content
        people = many(decode(r.content)["people"], "person")
        assert len(people) == 30
        stamps = [p["updated_at"] for p in people]
        assert stamps == sorted(stamps)
        me = await c.get("/me.xml")
        assert TOKEN.encode() in me.content  # why bodies are never logged
        empty = await c.get("/people.xml", params={"since": "20990101000000"})
        assert empty.content.strip().endswith(b'<people type="array"/>')
        bad = await c.get("/me.xml", headers=basic("wrong"))
        assert bad.status_code == 401


async def test_offsets_really_shift_when_a_person_is_updated_mid_walk() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, page_size=10)
    fake.seed(contacts=30)
    async with raw(fake) as c:
        since = {"since": "19700101000000"}
        first = many(decode((await c.get("/people.xml", params=since)).content)["people"], "person")
        fake.update_person(str(first[3]["id"]))  # moves to the end: everything shifts back one
        second = many(
            decode((await c.get("/people.xml", params={**since, "n": 10})).content)["people"],
            "person",
        )
        before = many(
            decode((await c.get("/people.xml", params=since)).content)["people"], "person"
        )
    assert second[0]["id"] != before[-1]["id"]
    # The person that was 11th is now 10th: offset 10 never shows it.
    assert before[-1]["id"] not in {p["id"] for p in first + second}


async def test_search_limits_and_error_shapes() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, email_search_limit=(2, 10.0), people_quota=31)
    fake.seed(contacts=30)
    person = next(iter(fake.live().values()))
    address = person["emails"][0]["address"]
    async with raw(fake) as c:
        for _ in range(2):
            r = await c.get("/people/search.xml", params={"criteria[email]": address})
            assert r.status_code == 200
            assert [p["id"] for p in many(decode(r.content)["people"], "person")] == [person["id"]]
        limited = await c.get("/people/search.xml", params={"criteria[email]": address})
        assert limited.status_code == 503 and int(limited.headers["retry-after"]) >= 1
        # Other calls are not limited by the email search's window.
        assert (await c.get("/users.xml")).status_code == 200
        xml = {"Content-Type": "application/xml"}
        bad = await c.post("/people.xml", content=b"<person><title>x</title></person>", headers=xml)
        assert bad.status_code == 422 and b"<errors><error>" in bad.content
        ok = await c.post(
            "/people.xml", content=b"<person><first-name>A</first-name></person>", headers=xml
        )
        assert ok.status_code == 201 and ok.headers["location"].endswith(".xml")
        full = await c.post(
            "/people.xml", content=b"<person><first-name>B</first-name></person>", headers=xml
        )
        assert full.status_code == 507
    fake.ssl_enabled = False
    async with raw(fake) as c:
        moved = await c.get("/me.xml")
        assert moved.status_code == 302 and moved.headers["location"].startswith("http://")
