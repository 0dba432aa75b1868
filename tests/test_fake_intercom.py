"""Tests of the fake Intercom API itself (talkdesk_sandbox.intercom), driven over ASGI."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from talkdesk_sandbox.intercom import FakeIntercom, ManualClock

pytestmark = pytest.mark.asyncio

T0 = 1_720_000_000  # 2024-07-03T09:46:40Z
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
LISBON = ZoneInfo("Europe/Lisbon")


def lisbon(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=LISBON).timestamp())


def client_for(fake: FakeIntercom, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app),
        base_url="https://api.intercom.io",
        headers=AUTH if headers is None else headers,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fake(clock: ManualClock) -> FakeIntercom:
    return FakeIntercom(clock=clock)


@pytest_asyncio.fixture
async def client(fake: FakeIntercom) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(fake) as c:
        yield c


async def search(
    client: httpx.AsyncClient,
    query: Any,
    *,
    per_page: int | None = None,
    cursor: str | None = None,
    sort: tuple[str, str] | None = None,
    path: str = "/contacts/search",
) -> httpx.Response:
    body: dict[str, Any] = {"query": query, "pagination": {}}
    if per_page is not None:
        body["pagination"]["per_page"] = per_page
    if cursor is not None:
        body["pagination"]["starting_after"] = cursor
    if sort is not None:
        body["sort"] = {"field": sort[0], "order": sort[1]}
    return await client.post(path, json=body)


async def search_ids(client: httpx.AsyncClient, query: Any, **kw: Any) -> list[str]:
    response = await search(client, query, **kw)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["data"]]


async def page_all(
    client: httpx.AsyncClient, query: Any, per_page: int, sort: tuple[str, str]
) -> list[dict[str, Any]]:
    bodies, cursor = [], None
    while True:
        response = await search(client, query, per_page=per_page, cursor=cursor, sort=sort)
        assert response.status_code == 200, response.text
        bodies.append(response.json())
        nxt = response.json()["pages"]["next"]
        if nxt is None:
            return bodies
        cursor = nxt["starting_after"]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error.list"
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert body["errors"][0]["code"] == code
    return body


EVERYTHING = {"field": "updated_at", "operator": ">", "value": 0}


# -- auth, admins, routing --------------------------------------------------------------------


async def test_bad_token_gets_401_error_list_with_rate_headers(fake: FakeIntercom) -> None:
    async with client_for(fake, {"Authorization": "Bearer nope"}) as c:
        response = await c.get("/me")
    body = assert_error(response, 401, "unauthorized")
    assert body["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
        response.headers
    )
    async with client_for(fake, {}) as c:
        assert_error(await c.get("/contacts"), 401, "unauthorized")


async def test_me_admins_and_versions_seen(fake: FakeIntercom, client: httpx.AsyncClient) -> None:
    me = (await client.get("/me")).json()
    assert me["type"] == "admin" and me["id"] == fake.me_id
    assert me["app"] == {
        "type": "app",
        "id_code": "abc123de",
        "name": "Acme Support",
        "region": "US",
        "timezone": "Europe/Lisbon",
        "created_at": me["app"]["created_at"],
        "identity_verification": False,
    }
    fake.add_admin("Grace Hopper", "grace@example.com")
    admins = (await client.get("/admins")).json()
    assert admins["type"] == "admin.list"
    assert [a["name"] for a in admins["admins"]] == ["Ada Lovelace", "Grace Hopper"]
    async with client_for(fake, {"Authorization": f"Bearer {TOKEN}"}) as bare:
        await bare.get("/me")
    assert fake.versions_seen == ["2.14", "2.14", None]
    assert fake.calls == [("GET", "/me"), ("GET", "/admins"), ("GET", "/me")]


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/companies/nope"), 404, "not_found")
    assert_error(await client.delete("/contacts"), 405, "method_not_allowed")


# -- contacts ---------------------------------------------------------------------------------


async def test_contact_shape_avatar_variants_and_404(
    fake: FakeIntercom, client: httpx.AsyncClient
) -> None:
    ids = {
        shape: fake.add_contact(
            email=f"{shape}@example.com", avatar="https://img.example/a.png", avatar_shape=shape
        )["id"]
        for shape in ("object", "string", "null")
    }
    got = {s: (await client.get(f"/contacts/{cid}")).json() for s, cid in ids.items()}
    assert got["object"]["avatar"] == {"type": "avatar", "image_url": "https://img.example/a.png"}
    assert got["string"]["avatar"] == "https://img.example/a.png"
    assert got["null"]["avatar"] is None
    contact = got["object"]
    assert len(contact["id"]) == 24 and int(contact["id"], 16) >= 0
    assert contact["type"] == "contact" and contact["workspace_id"] == "abc123de"
    assert contact["created_at"] == contact["updated_at"] == T0
    assert contact["location"]["type"] == "location"
    assert contact["companies"]["type"] == "list" and contact["social_profiles"]["type"] == "list"
    assert_error(await client.get("/contacts/000000000000000000000000"), 404, "not_found")
    fake.delete_contact(ids["null"])
    assert_error(await client.get(f"/contacts/{ids['null']}"), 404, "not_found")


async def test_seeded_contacts_embed_at_most_ten_companies(fake: FakeIntercom) -> None:
    contacts = fake.seed_contacts(60)
    many = [c for c in contacts if c["companies"]["total_count"] > 10]
    assert many, "the seed data should include contacts with more than 10 companies"
    assert all(len(c["companies"]["data"]) == 10 and c["companies"]["has_more"] for c in many)
    assert {type(c["avatar"]).__name__ for c in contacts} == {"dict", "str", "NoneType"}
    assert any(c["name"] is None for c in contacts)


async def test_create_contact_and_409_on_duplicate(client: httpx.AsyncClient) -> None:
    created = await client.post("/contacts", json={"email": "Ana@Example.com", "name": "Ana"})
    assert created.status_code == 200
    first = created.json()
    assert first["role"] == "user" and first["email_domain"] == "Example.com"
    duplicate = await client.post("/contacts", json={"email": "ana@example.com"})
    body = assert_error(duplicate, 409, "conflict")
    assert body["errors"][0]["message"] == (
        f"A contact matching those details already exists with id={first['id']}"
    )
    assert_error(await client.post("/contacts", json={"name": "Nobody"}), 400, "parameter_invalid")
    assert_error(await client.post("/contacts", json={"role": "admin"}), 400, "parameter_invalid")


async def test_list_contacts_cursor_pagination(
    fake: FakeIntercom, client: httpx.AsyncClient
) -> None:
    seeded = [c["id"] for c in fake.seed_contacts(25)]
    seen, cursor, pages = [], None, []
    while True:
        params = {"per_page": 10} | ({"starting_after": cursor} if cursor else {})
        body = (await client.get("/contacts", params=params)).json()
        assert body["type"] == "list" and body["total_count"] == 25
        pages.append(body["pages"])
        seen += [c["id"] for c in body["data"]]
        if body["pages"]["next"] is None:
            break
        cursor = body["pages"]["next"]["starting_after"]
    assert seen == seeded
    assert [p["page"] for p in pages] == [1, 2, 3]
    assert pages[0] | {"next": None} == {
        "type": "pages",
        "page": 1,
        "per_page": 10,
        "total_pages": 3,
        "next": None,
    }
    default = (await client.get("/contacts")).json()
    assert len(default["data"]) == 10
    assert_error(await client.get("/contacts", params={"per_page": 151}), 400, "parameter_invalid")


async def test_notes(fake: FakeIntercom, client: httpx.AsyncClient) -> None:
    cid = fake.add_contact(email="n@example.com")["id"]
    response = await client.post(
        f"/contacts/{cid}/notes", json={"body": "Called back", "admin_id": fake.me_id}
    )
    note = response.json()
    assert note["type"] == "note" and note["body"] == "<p>Called back</p>"
    assert note["contact"] == {"type": "contact", "id": cid}
    assert note["author"]["type"] == "admin" and note["author"]["id"] == fake.me_id
    assert (await client.get(f"/contacts/{cid}")).json()["notes"]["total_count"] == 1
    bad_admin = await client.post(f"/contacts/{cid}/notes", json={"body": "x", "admin_id": "1"})
    assert_error(bad_admin, 404, "not_found")
    bad_contact = await client.post(
        "/contacts/ffffffffffffffffffffffff/notes", json={"body": "x", "admin_id": fake.me_id}
    )
    assert_error(bad_contact, 404, "not_found")


# -- search grammar ---------------------------------------------------------------------------


async def test_date_filters_are_day_granular_in_workspace_timezone(clock: ManualClock) -> None:
    fake = FakeIntercom(clock=clock, timezone="Europe/Lisbon")
    stamps = {
        "late_9th": lisbon(2024, 7, 9, 23, 30),  # 22:30Z on the 9th
        "early_10th": lisbon(2024, 7, 10, 0, 30),  # 23:30Z on the 9th: the 10th in Lisbon only
        "evening_10th": lisbon(2024, 7, 10, 18, 0),
        "just_11th": lisbon(2024, 7, 11, 0, 10),
    }
    ids = {
        k: fake.add_contact(email=f"{k}@example.com", updated_at=v)["id"] for k, v in stamps.items()
    }
    name = {v: k for k, v in ids.items()}
    x = stamps["evening_10th"]

    async with client_for(fake) as c:

        async def names(op: str) -> set[str]:
            query = {"field": "updated_at", "operator": op, "value": x}
            return {name[i] for i in await search_ids(c, query)}

        # ">" starts at the next local day: the checkpoint's own day is skipped entirely.
        assert await names(">") == {"just_11th"}
        assert await names("=") == {"early_10th", "evening_10th"}
        assert await names("<") == {"late_9th"}
        safe = {
            "operator": "OR",
            "value": [
                {"field": "updated_at", "operator": ">", "value": x},
                {"field": "updated_at", "operator": "=", "value": str(x)},
            ],
        }
        assert {name[i] for i in await search_ids(c, safe)} == {
            "early_10th",
            "evening_10th",
            "just_11th",
        }

    utc = FakeIntercom(clock=clock, timezone="UTC")
    for key, value in stamps.items():
        utc.add_contact(email=f"{key}@example.com", updated_at=value)
    async with client_for(utc) as c:
        query = {"field": "updated_at", "operator": "=", "value": x}
        found = (await search(c, query)).json()["data"]
        # In UTC the day boundaries move: 00:10 Lisbon on the 11th is still the 10th in UTC.
        assert {d["email"] for d in found} == {"evening_10th@example.com", "just_11th@example.com"}


@pytest.mark.parametrize("op", [">=", "<=", "!=", "IN", "~"])
async def test_unsupported_operators_on_dates_are_rejected(
    client: httpx.AsyncClient, op: str
) -> None:
    value: Any = [T0] if op == "IN" else T0
    response = await search(client, {"field": "created_at", "operator": op, "value": value})
    assert_error(response, 400, "parameter_invalid")


async def test_query_validation(client: httpx.AsyncClient) -> None:
    leaf = {"field": "email", "operator": "~", "value": "example"}
    assert (await search(client, {"operator": "OR", "value": [leaf] * 15})).status_code == 200
    assert_error(await search(client, {"operator": "OR", "value": [leaf] * 16}), 400, "bad_request")
    two_levels = {"operator": "AND", "value": [{"operator": "OR", "value": [leaf, leaf]}]}
    assert (await search(client, two_levels)).status_code == 200
    three_levels = {"operator": "AND", "value": [two_levels]}
    assert_error(await search(client, three_levels), 400, "bad_request")
    bad_field = {"field": "shoe_size", "operator": "=", "value": "9"}
    assert_error(await search(client, bad_field), 400, "parameter_invalid")
    bad_int = {"field": "created_at", "operator": ">", "value": "yesterday"}
    assert_error(await search(client, bad_int), 400, "parameter_invalid")
    assert_error(await search(client, leaf, per_page=151), 400, "parameter_invalid")
    assert_error(await search(client, leaf, cursor="not-a-cursor!"), 400, "client_error")
    assert_error(await search(client, leaf, sort=("email", "sideways")), 400, "parameter_invalid")
    assert_error(await client.post("/contacts/search", content=b"{"), 400, "bad_request")


async def test_string_integer_and_custom_attribute_filters(
    fake: FakeIntercom, client: httpx.AsyncClient
) -> None:
    a = fake.add_contact(
        email="zoe@acme.test", name="Zoë Smith", phone="+351912345678", owner_id=7,
        custom_attributes={"plan": "pro", "seats": 12},
    )["id"]  # fmt: skip
    b = fake.add_contact(email="li@example.com", role="lead", custom_attributes={"plan": "free"})[
        "id"
    ]

    async def ids(query: dict[str, Any]) -> set[str]:
        return set(await search_ids(client, query))

    assert await ids({"field": "email", "operator": "$", "value": "@ACME.test"}) == {a}
    assert await ids({"field": "name", "operator": "^", "value": "zoë"}) == {a}
    assert await ids({"field": "role", "operator": "IN", "value": ["lead"]}) == {b}
    assert await ids({"field": "role", "operator": "NIN", "value": ["lead"]}) == {a}
    assert await ids({"field": "name", "operator": "=", "value": None}) == {b}
    assert await ids({"field": "owner_id", "operator": ">=", "value": 7}) == {a}
    assert await ids({"field": "custom_attributes.plan", "operator": "=", "value": "free"}) == {b}
    assert await ids({"field": "custom_attributes.seats", "operator": ">", "value": 10}) == {a}
    assert await ids({"field": "email_domain", "operator": "!=", "value": "acme.test"}) == {b}


# -- search pagination ------------------------------------------------------------------------


async def test_cursor_pagination_over_ties_is_complete_and_ordered(
    fake: FakeIntercom, client: httpx.AsyncClient
) -> None:
    shared = T0 - 3600
    seeded = sorted(c["id"] for c in fake.seed_contacts(400, updated_at=shared))
    bodies = await page_all(client, EVERYTHING, 150, ("updated_at", "ascending"))
    ids = [c["id"] for b in bodies for c in b["data"]]
    assert ids == seeded  # every record once; ties on updated_at broken by id
    assert [b["pages"]["page"] for b in bodies] == [1, 2, 3]
    assert all(b["total_count"] == 400 and b["pages"]["total_pages"] == 3 for b in bodies)
    assert bodies[0]["pages"]["next"]["per_page"] == 150
    down = await page_all(client, EVERYTHING, 150, ("updated_at", "descending"))
    assert [c["id"] for b in down for c in b["data"]] == seeded[::-1]


async def test_sort_by_other_fields_uses_full_seconds(
    fake: FakeIntercom, client: httpx.AsyncClient
) -> None:
    for offset, mail in ((30, "b@example.com"), (10, "c@example.com"), (20, "a@example.com")):
        fake.add_contact(email=mail, updated_at=T0 + offset)
    by_time = await search(client, EVERYTHING, sort=("updated_at", "ascending"))
    assert [c["email"] for c in by_time.json()["data"]] == [
        "c@example.com",
        "a@example.com",
        "b@example.com",
    ]
    bodies = await page_all(client, EVERYTHING, 2, ("email", "descending"))
    assert [c["email"] for b in bodies for c in b["data"]] == [
        "c@example.com",
        "b@example.com",
        "a@example.com",
    ]


async def test_records_updated_between_pages_move(
    fake: FakeIntercom, clock: ManualClock, client: httpx.AsyncClient
) -> None:
    ids = [
        fake.add_contact(email=f"m{i}@example.com", updated_at=T0 - 100 + i)["id"] for i in range(5)
    ]
    sort = ("updated_at", "ascending")
    first = (await search(client, EVERYTHING, per_page=2, sort=sort)).json()
    assert [c["id"] for c in first["data"]] == ids[:2]
    clock.advance(5)
    fake.update_contact(ids[0], name="moved forward")  # now the newest record
    fake.update_contact(ids[3], updated_at=T0 - 1000)  # moved behind the cursor: skipped
    cursor = first["pages"]["next"]["starting_after"]
    rest: list[str] = []
    while cursor:
        body = (await search(client, EVERYTHING, per_page=2, cursor=cursor, sort=sort)).json()
        rest += [c["id"] for c in body["data"]]
        cursor = (body["pages"]["next"] or {}).get("starting_after")
    assert rest == [ids[2], ids[4], ids[0]]


# -- eventual consistency ---------------------------------------------------------------------


async def test_search_lag(clock: ManualClock) -> None:
    fake = FakeIntercom(clock=clock, search_lag=60)
    cid = fake.add_contact(email="late@example.com", name="Old name")["id"]
    by_email = {"field": "email", "operator": "=", "value": "late@example.com"}
    async with client_for(fake) as c:
        assert await search_ids(c, by_email) == []  # created, not yet indexed
        assert (await c.get(f"/contacts/{cid}")).status_code == 200  # direct reads are live
        assert [x["id"] for x in (await c.get("/contacts")).json()["data"]] == [cid]
        clock.advance(60)
        assert await search_ids(c, by_email) == [cid]

        clock.advance(100)
        fake.update_contact(cid, name="New name")
        stale = (await search(c, by_email)).json()["data"][0]
        assert stale["name"] == "Old name" and stale["updated_at"] == T0
        assert (await c.get(f"/contacts/{cid}")).json()["name"] == "New name"
        clock.advance(59)
        assert (await search(c, by_email)).json()["data"][0]["name"] == "Old name"
        clock.advance(1)
        fresh = (await search(c, by_email)).json()["data"][0]
        assert fresh["name"] == "New name" and fresh["updated_at"] == T0 + 160

        fake.delete_contact(cid)
        assert (await c.get(f"/contacts/{cid}")).status_code == 404
        assert await search_ids(c, by_email) == [cid]  # deletions are lagged too
        clock.advance(60)
        assert await search_ids(c, by_email) == []


async def test_seeded_contacts_count_as_written_at_their_updated_at(clock: ManualClock) -> None:
    fake = FakeIntercom(clock=clock, search_lag=60)
    fake.seed_contacts(5, updated_at=T0 - 3600)  # historic data: already indexed
    fake.seed_contacts(3, updated_at=T0)  # touched just now: still inside the lag
    async with client_for(fake) as c:
        assert (await search(c, EVERYTHING)).json()["total_count"] == 5
        assert (await c.get("/contacts")).json()["total_count"] == 8
        clock.advance(60)
        assert (await search(c, EVERYTHING)).json()["total_count"] == 8


async def test_changing_the_lag_rebuilds_the_view(clock: ManualClock) -> None:
    fake = FakeIntercom(clock=clock)
    fake.add_contact(email="x@example.com")
    fake.search_lag = 30
    async with client_for(fake) as c:
        assert await search_ids(c, EVERYTHING) == []
        fake.search_lag = 0
        assert len(await search_ids(c, EVERYTHING)) == 1


# -- rate limits and faults -------------------------------------------------------------------


async def test_rate_limit_window(clock: ManualClock) -> None:
    fake = FakeIntercom(clock=clock, rate_limit=(3, 10))
    async with client_for(fake) as c:
        responses = [await c.get("/me") for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
        assert all(r.headers["x-ratelimit-limit"] == "3" for r in responses)
        limited = responses[-1]
        assert_error(limited, 429, "rate_limit_exceeded")
        assert "retry-after" not in limited.headers
        reset = int(limited.headers["x-ratelimit-reset"])
        assert reset == T0 + 10 - T0 % 10 and reset > fake.now
        clock.set(reset)
        assert (await c.get("/me")).status_code == 200


async def test_fail_next_and_burst(fake: FakeIntercom, client: httpx.AsyncClient) -> None:
    fake.fail_next(2, status=503, path_prefix="/contacts")
    assert (await client.get("/me")).status_code == 200
    assert_error(await client.get("/contacts"), 503, "service_unavailable")
    assert_error(
        await client.post("/contacts/search", json={"query": EVERYTHING}),
        503,
        "service_unavailable",
    )
    assert (await client.get("/contacts")).status_code == 200

    fake.fail_next(1, status=502, body="<html>Bad Gateway</html>")
    proxied = await client.get("/me")
    assert proxied.status_code == 502 and proxied.text == "<html>Bad Gateway</html>"

    fake.rate_limit_burst(2)
    burst = [await client.get("/me") for _ in range(3)]
    assert [r.status_code for r in burst] == [429, 429, 200]
    assert burst[0].headers["x-ratelimit-remaining"] == "0"
    assert int(burst[0].headers["x-ratelimit-reset"]) > fake.now
    assert_error(burst[0], 429, "rate_limit_exceeded")
    assert fake.call_count("GET", "/contacts") == 2
    assert fake.call_counts[("GET", "/me")] == 5


async def test_random_failures_malformed_and_hang(
    fake: FakeIntercom, client: httpx.AsyncClient
) -> None:
    fake.random_failures(1.0, statuses=(500,), seed=1)
    assert_error(await client.get("/me"), 500, "server_error")
    fake.random_failures(0.0)
    assert (await client.get("/me")).status_code == 200

    fake.malformed_next(1, path_prefix="/admins")
    broken = await client.get("/admins")
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)
    assert (await client.get("/admins")).json()["type"] == "admin.list"

    fake.hang_next(1, 0.2, path_prefix="/me")
    started = time.perf_counter()
    assert (await client.get("/admins")).status_code == 200  # prefix does not match
    assert time.perf_counter() - started < 0.2
    assert (await client.get("/me")).status_code == 200
    assert time.perf_counter() - started >= 0.2

    fake.latency = 0.05
    started = time.perf_counter()
    assert (await client.get("/me")).status_code == 200
    assert time.perf_counter() - started >= 0.05


# -- conversations and tickets ----------------------------------------------------------------


async def test_conversations(fake: FakeIntercom, client: httpx.AsyncClient) -> None:
    ana = fake.add_contact(email="ana@example.com", external_id="u-1", name="Ana")["id"]
    other = fake.add_contact(email="bo@example.com")["id"]
    fake.add_conversation(ana, state="closed", admin_assignee_id=int(fake.me_id))
    fake.add_conversation(other)
    sent = await client.post(
        "/conversations", json={"from": {"type": "user", "id": ana}, "body": "Hello there"}
    )
    message = sent.json()
    assert message["type"] == "user_message" and message["message_type"] == "inapp"
    assert message["conversation_id"].isdigit()

    by_contact = {"field": "contact_ids", "operator": "=", "value": ana}
    body = (await search(client, by_contact, path="/conversations/search")).json()
    assert body["type"] == "conversation.list" and body["total_count"] == 2
    assert body["pages"]["per_page"] == 20
    conversation = body["conversations"][0]
    assert conversation["type"] == "conversation" and conversation["id"].isdigit()
    assert conversation["state"] == "closed" and conversation["open"] is False
    assert conversation["admin_assignee_id"] == int(fake.me_id)
    assert conversation["contacts"] == {
        "type": "contact.list",
        "contacts": [{"type": "contact", "id": ana, "external_id": "u-1"}],
    }
    assert conversation["source"]["body"].startswith("<p>")
    assert conversation["source"]["author"]["id"] == ana
    both = {
        "operator": "AND",
        "value": [by_contact, {"field": "open", "operator": "=", "value": True}],
    }
    found = (await search(client, both, path="/conversations/search")).json()["conversations"]
    assert [c["id"] for c in found] == [message["conversation_id"]]
    missing = {"from": {"type": "user", "id": "ffffffffffffffffffffffff"}, "body": "hi"}
    assert_error(await client.post("/conversations", json=missing), 404, "not_found")


async def test_ticket_state_shapes_and_ticket_api(
    fake: FakeIntercom, client: httpx.AsyncClient
) -> None:
    cid = fake.add_contact(email="t@example.com", external_id="u-9")["id"]
    new_shape = fake.add_ticket(cid, state="in_progress")
    old_shape = fake.add_ticket(cid, ticket_state_format="string", state="resolved")
    assert new_shape["ticket_state"]["category"] == "in_progress"

    by_contact = {"field": "contact_ids", "operator": "=", "value": cid}
    body = (
        await search(client, by_contact, path="/tickets/search", sort=("id", "ascending"))
    ).json()
    assert body["type"] == "ticket.list" and body["total_count"] == 2
    states = {t["id"]: t["ticket_state"] for t in body["tickets"]}
    assert states[new_shape["id"]] == {
        "type": "ticket_state",
        "id": states[new_shape["id"]]["id"],
        "category": "in_progress",
        "internal_label": "With support team",
        "external_label": "In progress",
    }
    assert states[old_shape["id"]] == "resolved"
    ticket = body["tickets"][0]
    assert ticket["type"] == "ticket" and ticket["category"] == "Customer"
    assert ticket["contacts"]["contacts"] == [{"type": "contact", "id": cid, "external_id": "u-9"}]
    assert isinstance(ticket["admin_assignee_id"], str) and ticket["open"] is True

    async with client_for(fake, AUTH | {"Intercom-Version": "2.11"}) as legacy:
        old = (await search(legacy, by_contact, path="/tickets/search")).json()["tickets"]
        assert {t["ticket_state"] for t in old} == {"in_progress", "resolved"}

    types = (await client.get("/ticket_types")).json()
    assert types["type"] == "list"
    assert {t["category"] for t in types["data"]} == {"Customer", "Back-office", "Tracker"}
    created = await client.post(
        "/tickets",
        json={
            "ticket_type_id": types["data"][0]["id"],
            "contacts": [{"id": cid}],
            "ticket_attributes": {"_default_title_": "Broken", "_default_description_": "Help"},
        },
    )
    made = created.json()
    assert made["ticket_state"]["category"] == "submitted"
    assert made["ticket_attributes"]["_default_title_"] == "Broken"
    assert made["ticket_id"].isdigit()
    unknown_type = {"ticket_type_id": "999", "contacts": [{"id": cid}]}
    assert_error(await client.post("/tickets", json=unknown_type), 400, "parameter_invalid")
    ghost = {"ticket_type_id": types["data"][0]["id"], "contacts": [{"id": "f" * 24}]}
    assert_error(await client.post("/tickets", json=ghost), 404, "not_found")


async def test_string_shape_for_the_whole_fake(clock: ManualClock) -> None:
    fake = FakeIntercom(clock=clock, ticket_state_format="string")
    ticket = fake.add_ticket(fake.add_contact(email="s@example.com")["id"])
    async with client_for(fake) as c:
        got = (await c.get(f"/tickets/{ticket['id']}")).json()
    assert got["ticket_state"] == "submitted"


# -- real server ------------------------------------------------------------------------------


async def test_serves_over_a_real_socket(fake: FakeIntercom) -> None:
    fake.seed_contacts(3)
    with fake.serve() as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as c:
            body = (await c.get("/contacts")).json()
    assert body["total_count"] == 3
