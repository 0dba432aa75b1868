"""The Intercom connector through the HTTP service, against the fake Intercom API.

Auth and regions, error mapping, Intercom-Version, interactions (lookups, concurrency, the time
budget), actions, agents, retries and rate limits.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.cli import app as cli_app
from talkdesk_sandbox.intercom import FakeIntercom, ManualClock, error_body
from tests.test_intercom_support import T0, TOKEN, auth, bridge, intercom_settings

CONTACT = "6685e6a1f3b9c2d4e5f60718"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def fake(clock: ManualClock) -> FakeIntercom:
    return FakeIntercom(token=TOKEN, clock=clock)


def seed_person(fake: FakeIntercom, clock: ManualClock) -> dict[str, Any]:
    """A contact with three conversations and two tickets, at distinct times."""
    person = fake.add_contact(
        name="Ana Silva", email="ana.silva@example.com", phone="(415) 555-0123", id=CONTACT
    )
    fake.add_conversation(person["id"], body="<p>Oldest question</p>", created_at=T0 - 5000)
    fake.add_conversation(
        person["id"],
        body="<div>Card declined &amp; <b>urgent</b><script>x()</script></div>",
        created_at=T0 - 100,
        state="snoozed",
        priority="priority",
    )
    fake.add_conversation(
        person["id"],
        body="Closed one",
        subject="<p>Re: invoice</p>",
        created_at=T0 - 3000,
        state="closed",
    )
    fake.add_ticket(person["id"], title="Cannot log in", state="in_progress", created_at=T0 - 200)
    fake.add_ticket(
        person["id"],
        title="Refund",
        state="resolved",
        created_at=T0 - 4000,
        ticket_state_format="string",
    )
    other = fake.add_contact(name="Bo", email="bo@example.com")
    fake.add_conversation(other["id"], body="Not Ana's", created_at=T0)
    return person


# --- auth and regions -------------------------------------------------------------------------


async def test_auth_validation(fake: FakeIntercom, clock: ManualClock) -> None:
    async with bridge(fake, clock) as b:
        ok = await b.post("auth_validation", {"auth": auth()})
        assert ok.status_code == 200 and ok.json() == {"region": "us"}
        rejected = await b.post("auth_validation", {"auth": auth("revoked-token")})
        assert rejected.status_code == 401
        assert rejected.headers["content-type"] == "application/json"
        assert rejected.json()["error"]["code"] == "unauthorized"
        assert "Access Token Invalid" in rejected.json()["error"]["message"]
        missing = await b.post("auth_validation", {"auth": {}})
        assert missing.status_code == 401 and "auth.access_token" in missing.text
    assert fake.calls.count(("GET", "/me")) == 2


@pytest.mark.parametrize(
    ("region", "host"),
    [
        (None, "api.intercom.io"),
        ("", "api.intercom.io"),
        ("us", "api.intercom.io"),
        ("eu", "api.eu.intercom.io"),
        ("AU", "api.au.intercom.io"),
    ],
)
async def test_region_picks_the_regional_host(
    fake: FakeIntercom, clock: ManualClock, region: str | None, host: str
) -> None:
    fields = {} if region is None else {"region": region}
    async with bridge(fake, clock) as b:
        r = await b.post("auth_validation", {"auth": auth(**fields)})
        assert r.status_code == 200
        assert r.json() == {"region": (region or "us").lower()}
        await b.post("agent_sync", {"auth": auth(**fields)})
    assert {url.host for url in b.transport.urls} == {host}
    assert all(url.scheme == "https" for url in b.transport.urls)


@pytest.mark.parametrize(
    "region",
    [
        "xx",
        "eu.evil.example",
        "us/../admins",
        "us ",
        "\uff35\uff33",
        "e\u0075\u0301",
        3,
        True,
        ["us"],
    ],
)
async def test_bad_regions_are_refused_before_any_call(
    fake: FakeIntercom, clock: ManualClock, region: Any
) -> None:
    async with bridge(fake, clock) as b:
        for path, body in (
            ("auth_validation", {}),
            ("contact_sync", {"meta": {}}),
            ("agent_sync", {}),
            ("interaction_update", {"data": {"contact_external_id": CONTACT}}),
        ):
            r = await b.post(path, {"auth": {**auth(), "region": region}, **body})
            assert r.status_code == 401, r.text
            assert "auth.region" in r.json()["error"]["message"]
    assert b.transport.urls == [] and fake.calls == []


async def test_base_url_override_applies_to_every_region(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    async with bridge(fake, clock, intercom_base_url="http://intercom.test:8080/") as b:
        for region in ("us", "eu", "au"):
            r = await b.post("auth_validation", {"auth": auth(region=region)})
            assert r.status_code == 200
    assert {(u.host, u.port) for u in b.transport.urls} == {("intercom.test", 8080)}


def test_settings_reject_a_base_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="intercom_base_url"):
        Settings(intercom_base_url="ftp://example.com")


# --- errors -----------------------------------------------------------------------------------


async def test_upstream_401_is_401_from_every_endpoint(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    seed_person(fake, clock)
    bad = auth("revoked")
    requests = [
        ("auth_validation", {"auth": bad}),
        ("contact_sync", {"auth": bad, "meta": {}}),
        ("interaction_update", {"auth": bad, "data": {"contact_external_id": CONTACT}}),
        ("interaction_update", {"auth": bad, "data": {"contact_emails": ["ana@example.com"]}}),
        ("agent_sync", {"auth": bad}),
        (
            "actions/create_note",
            {"auth": bad, "meta": {"contact_external_id": CONTACT}, "data": {"body": "x"}},
        ),
        (
            "actions/create_ticket",
            {"auth": bad, "meta": {"contact_external_id": CONTACT}, "data": {"title": "x"}},
        ),
        ("actions/create_contact", {"auth": bad, "data": {"email": "new@example.com"}}),
    ]
    async with bridge(fake, clock) as b:
        for path, body in requests:
            r = await b.post(path, body)
            assert r.status_code == 401, (path, r.text)
            assert r.headers["content-type"] == "application/json"
            assert "revoked" not in r.text
        # A 401 in the middle of an otherwise good interaction fetch still wins.
        fake.fail_next(1, status=401, path_prefix="/tickets/search")
        r = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_external_id": CONTACT}}
        )
        assert r.status_code == 401


async def test_403_404_409_422_become_documented_statuses(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    seed_person(fake, clock)
    async with bridge(fake, clock) as b:
        fake.fail_next(1, status=403, path_prefix="/admins")
        r = await b.post("agent_sync", {"auth": auth()})
        assert (
            r.status_code == 403
            and "Intercom refused the request (403)" in r.json()["error"]["message"]
        )
        fake.fail_next(
            1,
            status=422,
            path_prefix="/contacts/search",
            body=error_body("data_invalid", "Query is invalid"),
        )
        r = await b.post("contact_sync", {"auth": auth(), "meta": {}})
        assert r.status_code == 422 and "Query is invalid" in r.json()["error"]["message"]
        fake.fail_next(1, status=404, path_prefix="/me")
        r = await b.post("auth_validation", {"auth": auth()})
        assert r.status_code == 404 and r.json()["error"]["message"]
        # Actions answer the contract's 400 with a message whatever the upstream refusal was.
        r = await b.post(
            "actions/create_note",
            {"auth": auth(), "meta": {"contact_external_id": "0" * 24}, "data": {"body": "x"}},
        )
        assert r.status_code == 400 and "User Not Found" in r.json()["message"]
        fake.fail_next(
            1,
            status=409,
            path_prefix="/tickets",
            body=error_body("conflict", "Ticket already being created"),
        )
        r = await b.post(
            "actions/create_ticket",
            {"auth": auth(), "meta": {"contact_external_id": CONTACT}, "data": {"title": "x"}},
        )
        assert r.status_code == 400 and "already being created" in r.json()["message"]


async def test_malformed_upstream_json_is_502(fake: FakeIntercom, clock: ManualClock) -> None:
    async with bridge(fake, clock) as b:
        fake.malformed_next(1, path_prefix="/admins")  # a read: asked again, and it works
        r = await b.post("agent_sync", {"auth": auth()})
        assert r.status_code == 200 and fake.call_count("GET", "/admins") == 2
        fake.malformed_next(10, path_prefix="/admins")
        r = await b.post("agent_sync", {"auth": auth()})
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_failed"


async def test_intercom_version_is_sent_on_every_call(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    person = seed_person(fake, clock)
    async with bridge(fake, clock) as b:
        await b.post("auth_validation", {"auth": auth()})
        await b.post("contact_sync", {"auth": auth(), "meta": {}})
        await b.post(
            "interaction_update",
            {"auth": auth(), "data": {"contact_emails": ["ana.silva@example.com"]}},
        )
        await b.post("agent_sync", {"auth": auth()})
        meta = {"contact_external_id": person["id"]}
        await b.post("actions/create_note", {"auth": auth(), "meta": meta, "data": {"body": "n"}})
        await b.post(
            "actions/create_ticket", {"auth": auth(), "meta": meta, "data": {"title": "t"}}
        )
        await b.post("actions/create_contact", {"auth": auth(), "data": {"email": "x@example.com"}})
        await b.post("auth_validation", {"auth": auth("bad")})
    assert len(fake.versions_seen) >= 9
    assert set(fake.versions_seen) == {"2.14"}


async def test_version_is_a_setting_and_old_ticket_states_still_map(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    seed_person(fake, clock)
    async with bridge(fake, clock, intercom_version="2.11") as b:
        r = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_external_id": CONTACT}}
        )
    assert set(fake.versions_seen) == {"2.11"}
    tickets = {i["subject"]: i["status"] for i in r.json() if i["type"] == "ticket"}
    assert tickets == {"Cannot log in": "open", "Refund": "solved"}


# --- interactions -----------------------------------------------------------------------------


async def test_interactions_by_id_both_types_newest_first(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    seed_person(fake, clock)
    async with bridge(fake, clock) as b:
        r = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_external_id": CONTACT}}
        )
    assert r.status_code == 200, r.text
    found = r.json()
    assert [(i["type"], i["subject"]) for i in found] == [
        ("conversation", "Card declined & urgent"),
        ("ticket", "Cannot log in"),
        ("conversation", "Re: invoice"),
        ("ticket", "Refund"),
        ("conversation", "Oldest question"),
    ]
    first = found[0]
    assert first["description"] == "Card declined & urgent"
    assert first["status"] == "pending" and first["priority"] == "high"
    assert first["date"] == time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(T0 - 100))
    assert (
        first["url"]
        == f"https://app.intercom.com/a/inbox/abc123de/inbox/conversation/{first['id']}"
    )
    assert [i["status"] for i in found] == ["pending", "open", "closed", "solved", "open"]
    assert all("<" not in (i.get("description") or "") for i in found)


async def test_interactions_type_filter_and_limit(fake: FakeIntercom, clock: ManualClock) -> None:
    seed_person(fake, clock)
    data = {"contact_external_id": CONTACT}
    async with bridge(fake, clock, intercom_interactions_limit=2) as b:
        r = await b.post(
            "interaction_update",
            {"auth": auth(), "meta": {"interaction_types": ["ticket"]}, "data": data},
        )
        assert {i["type"] for i in r.json()} == {"ticket"}
        assert fake.call_count("POST", "/conversations/search") == 0
        r = await b.post(
            "interaction_update",
            {"auth": auth(), "meta": {"interaction_types": ["call"]}, "data": data},
        )
        assert r.json() == []
        r = await b.post("interaction_update", {"auth": auth(), "data": data})
        assert [i["subject"] for i in r.json()] == ["Card declined & urgent", "Cannot log in"]


async def test_interactions_by_email_then_phone(fake: FakeIntercom, clock: ManualClock) -> None:
    seed_person(fake, clock)
    async with bridge(fake, clock) as b:
        by_email = await b.post(
            "interaction_update",
            {
                "auth": auth(),
                "data": {
                    "contact_emails": ["  Ana.Silva@Example.com "],
                    "contact_phones": ["+1 212 555 0100"],
                },
            },
        )
        assert by_email.status_code == 200 and len(by_email.json()) == 5
        # No email match: the phone, stored as "(415) 555-0123", is found from E.164.
        by_phone = await b.post(
            "interaction_update",
            {
                "auth": auth(),
                "data": {
                    "contact_emails": ["nobody@example.com"],
                    "contact_phones": ["+14155550123"],
                },
            },
        )
        assert [i["id"] for i in by_phone.json()] == [i["id"] for i in by_email.json()]
        unknown = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_phones": ["+442079460000"]}}
        )
        assert unknown.status_code == 200 and unknown.json() == []
        nothing = await b.post("interaction_update", {"auth": auth(), "data": {}})
        assert nothing.json() == []


@pytest.mark.parametrize(
    "hostile",
    [
        "../admins",
        "%2e%2e%2fadmins",
        "x?per_page=150",
        "abc#",
        "a@evil.example",
        "ab\r\ncd",
        "ab\u2024cd",
    ],
)
async def test_hostile_ids_never_reach_upstream(
    fake: FakeIntercom, clock: ManualClock, hostile: str
) -> None:
    seed_person(fake, clock)
    async with bridge(fake, clock) as b:
        r = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_external_id": hostile}}
        )
        assert r.status_code == 422 and "contact_external_id" in r.text
        for action, meta, data in (
            ("create_note", {"contact_external_id": hostile}, {"body": "x"}),
            ("create_ticket", {"contact_external_id": hostile}, {"title": "x"}),
            (
                "create_note",
                {"contact_external_id": CONTACT, "agent_external_id": hostile},
                {"body": "x"},
            ),
            (
                "create_ticket",
                {"contact_external_id": CONTACT},
                {"title": "x", "ticket_type_id": hostile},
            ),
        ):
            r = await b.post(f"actions/{action}", {"auth": auth(), "meta": meta, "data": data})
            assert r.status_code == 400 and r.json()["message"], r.text
    assert fake.calls == []


async def test_interactions_are_fetched_concurrently(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, latency=0.25)
    seed_person(fake, clock)
    with fake.serve() as url:
        async with bridge(fake, intercom_base_url=url, transport=httpx.AsyncHTTPTransport()) as b:
            await b.post("auth_validation", {"auth": auth()})  # the app id is now cached
            started = time.perf_counter()
            r = await b.post(
                "interaction_update", {"auth": auth(), "data": {"contact_external_id": CONTACT}}
            )
            elapsed = time.perf_counter() - started
    assert r.status_code == 200 and {i["type"] for i in r.json()} == {"conversation", "ticket"}
    assert elapsed < 0.45, f"two 0.25 s calls took {elapsed:.2f} s: not concurrent"


async def test_one_hung_call_does_not_hold_the_answer(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN)
    seed_person(fake, clock)
    with fake.serve() as url:
        async with bridge(fake, intercom_base_url=url, transport=httpx.AsyncHTTPTransport()) as b:
            await b.post("auth_validation", {"auth": auth()})
            fake.hang_next(1, 3.0, path_prefix="/tickets/search")
            started = time.perf_counter()
            r = await b.post(
                "interaction_update", {"auth": auth(), "data": {"contact_external_id": CONTACT}}
            )
            elapsed = time.perf_counter() - started
            assert r.status_code == 200, r.text
            assert {i["type"] for i in r.json()} == {"conversation"} and len(r.json()) == 3
            assert 1.9 <= elapsed < 2.6, elapsed
            # Everything hung: a timeout, not an empty answer.
            fake.hang_next(2, 3.0, path_prefix="/")
            r = await b.post(
                "interaction_update", {"auth": auth(), "data": {"contact_external_id": CONTACT}}
            )
            assert r.status_code == 504


# --- actions ----------------------------------------------------------------------------------


async def test_create_note_author_is_the_agent_else_the_tokens_admin(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    seed_person(fake, clock)
    grace = fake.add_admin("Grace Hopper", "grace@example.com")
    async with bridge(fake, clock) as b:
        own = await b.post(
            "actions/create_note",
            {
                "auth": auth(),
                "meta": {"contact_external_id": CONTACT},
                "data": {"body": "Called back"},
            },
        )
        by_agent = await b.post(
            "actions/create_note",
            {
                "auth": auth(),
                "meta": {"contact_external_id": CONTACT, "agent_external_id": grace["id"]},
                "data": {"body": "Promised a refund"},
            },
        )
        missing = await b.post(
            "actions/create_note", {"auth": auth(), "meta": {}, "data": {"body": "x"}}
        )
        empty = await b.post(
            "actions/create_note",
            {"auth": auth(), "meta": {"contact_external_id": CONTACT}, "data": {"body": " "}},
        )
    assert own.status_code == 201 and own.json()["message"] == "Note successfully created"
    assert by_agent.status_code == 201
    notes = fake.store._notes
    assert notes[own.json()["external_id"]]["author"]["id"] == fake.me_id
    assert notes[by_agent.json()["external_id"]]["author"]["id"] == grace["id"]
    assert notes[by_agent.json()["external_id"]]["body"] == "<p>Promised a refund</p>"
    assert missing.status_code == 400 and "meta.contact_external_id" in missing.json()["message"]
    assert empty.status_code == 400 and "data.body" in empty.json()["message"]


async def test_create_ticket(fake: FakeIntercom, clock: ManualClock) -> None:
    seed_person(fake, clock)
    types = {t["name"]: t["id"] for t in fake.store.ticket_types()}
    meta = {"contact_external_id": CONTACT}
    async with bridge(fake, clock) as b:
        default = await b.post(
            "actions/create_ticket",
            {
                "auth": auth(),
                "meta": meta,
                "data": {"title": "Call back", "description": "<b>Missed</b> call"},
            },
        )
        chosen = await b.post(
            "actions/create_ticket",
            {
                "auth": auth(),
                "meta": meta,
                "data": {"title": "Invoice", "ticket_type_id": types["Billing question"]},
            },
        )
        again = await b.post(
            "actions/create_ticket", {"auth": auth(), "meta": meta, "data": {"title": "Third"}}
        )
        unknown = await b.post(
            "actions/create_ticket",
            {"auth": auth(), "meta": meta, "data": {"title": "x", "ticket_type_id": "999"}},
        )
        no_title = await b.post("actions/create_ticket", {"auth": auth(), "meta": meta, "data": {}})
        no_contact = await b.post("actions/create_ticket", {"auth": auth(), "data": {"title": "x"}})
    assert default.status_code == 201 and chosen.status_code == 201 and again.status_code == 201
    first = fake.store.get_ticket(default.json()["external_id"])
    assert first is not None and first["ticket_type"]["name"] == "Bug report"  # first Customer type
    assert first["ticket_attributes"]["_default_description_"] == "<b>Missed</b> call"
    assert first["contacts"]["contacts"][0]["id"] == CONTACT
    second = fake.store.get_ticket(chosen.json()["external_id"])
    assert second is not None and second["ticket_type"]["name"] == "Billing question"
    assert fake.call_count("GET", "/ticket_types") == 1  # cached per account
    assert unknown.status_code == 400 and "Ticket type not found" in unknown.json()["message"]
    assert no_title.status_code == 400 and "data.title" in no_title.json()["message"]
    assert (
        no_contact.status_code == 400 and "meta.contact_external_id" in no_contact.json()["message"]
    )


async def test_create_ticket_without_a_customer_ticket_type(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock, default_ticket_types=False)
    fake.add_ticket_type("Internal", "Back-office")
    person = fake.add_contact(email="a@example.com")
    async with bridge(fake, clock) as b:
        r = await b.post(
            "actions/create_ticket",
            {"auth": auth(), "meta": {"contact_external_id": person["id"]}, "data": {"title": "x"}},
        )
    assert r.status_code == 400 and "ticket_type_id" in r.json()["message"]


async def test_create_contact_and_the_existing_contact_409(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    person = seed_person(fake, clock)
    async with bridge(fake, clock) as b:
        created = await b.post(
            "actions/create_contact",
            {
                "auth": auth(),
                "data": {
                    "name": "Caller",
                    "email": "caller@example.com",
                    "phone": "(212) 555-0101",
                },
            },
        )
        existing = await b.post(
            "actions/create_contact",
            {"auth": auth(), "data": {"name": "Ana", "email": "ana.silva@example.com"}},
        )
        phone_only = await b.post(
            "actions/create_contact", {"auth": auth(), "data": {"phone": "+351 912 345 678"}}
        )
        nothing = await b.post("actions/create_contact", {"auth": auth(), "data": {"name": " "}})
        bad_email = await b.post(
            "actions/create_contact", {"auth": auth(), "data": {"email": "not an email"}}
        )
    assert created.status_code == 201, created.text
    body = created.json()
    stored = fake.get_contact(body["contact_external_id"])
    assert stored is not None and stored["role"] == "lead" and stored["phone"] == "+12125550101"
    assert body["contact_external_type"] == "lead"
    assert (
        body["contact_external_url"]
        == f"https://app.intercom.com/a/apps/abc123de/users/{stored['id']}"
    )
    assert existing.status_code == 201
    assert existing.json()["contact_external_id"] == person["id"]
    assert existing.json()["contact_external_url"].endswith(f"/users/{person['id']}")
    assert phone_only.status_code == 201
    assert nothing.status_code == 400 and bad_email.status_code == 400


async def test_creates_are_never_retried_blindly_but_reads_are(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    seed_person(fake, clock)
    notes = f"/contacts/{CONTACT}/notes"
    async with bridge(fake, clock) as b:
        await b.post("auth_validation", {"auth": auth()})  # /me cached for the note's author
        fake.fail_next(1, status=503, path_prefix=notes)
        r = await b.post(
            "actions/create_note",
            {"auth": auth(), "meta": {"contact_external_id": CONTACT}, "data": {"body": "x"}},
        )
        assert r.status_code == 502 and "may have been applied" in r.json()["error"]["message"]
        assert fake.call_count("POST", notes) == 1
        fake.fail_next(1, status=500, path_prefix="/contacts", method="POST")
        r = await b.post(
            "actions/create_contact", {"auth": auth(), "data": {"email": "z@example.com"}}
        )
        assert r.status_code == 502 and fake.calls.count(("POST", "/contacts")) == 1
        # Reads: transient 5xx are retried with backoff, within the budget.
        fake.fail_next(3, status=502, path_prefix="/admins")
        r = await b.post("agent_sync", {"auth": auth()})
        assert r.status_code == 200 and fake.call_count("GET", "/admins") == 4
        assert len(b.sleeps) == 3 and b.sleeps == sorted(b.sleeps)
        fake.fail_next(10, status=503, path_prefix="/admins")
        r = await b.post("agent_sync", {"auth": auth()})
        assert r.status_code == 503 and fake.call_count("GET", "/admins") == 8  # 4 attempts


async def test_429_waits_for_the_reset_within_the_budget(
    fake: FakeIntercom, clock: ManualClock
) -> None:
    async with bridge(fake, clock) as b:
        clock.advance(4)  # the fake's 10 s window now resets in 6 s: within the 10 s budget
        fake.rate_limit_burst(1)
        r = await b.post("agent_sync", {"auth": auth()})
        assert r.status_code == 200
        assert len(b.sleeps) == 1 and 6 <= b.sleeps[0] <= 6.2
        assert clock() >= T0 + 10  # waited (on the manual clock) until the reset
    clock.set(T0 + 20)
    async with bridge(fake, clock, intercom_request_budget_seconds=5) as b:
        fake.rate_limit_burst(1)
        r = await b.post("agent_sync", {"auth": auth()})
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) == 10
        assert b.sleeps == []


async def test_rate_limit_headers_pace_calls_instead_of_hitting_429(clock: ManualClock) -> None:
    fake = FakeIntercom(token=TOKEN, clock=clock, rate_limit=(12, 10))
    async with bridge(fake, clock) as b:
        for _ in range(20):
            r = await b.post("agent_sync", {"auth": auth()})
            assert r.status_code == 200
    assert b.sleeps, "the tail of the window was not paced"
    assert fake.call_count() <= 21  # at most the one 429 that taught the window


# --- agents, configuration, lifecycle ---------------------------------------------------------


async def test_agents(fake: FakeIntercom, clock: ManualClock) -> None:
    fake.add_admin("Grace Hopper", "grace@example.com")
    fake.add_admin(None, "nameless@example.com")
    async with bridge(fake, clock) as b:
        r = await b.post("agent_sync", {"auth": auth()})
        later = await b.post("agent_sync", {"auth": auth(), "meta": {"offset": 1}})
    agents = r.json()["agents"]
    assert "next_offset" not in r.json()
    assert agents[0] == {
        "id": fake.me_id,
        "name": "Ada Lovelace",
        "email": "ada@abc123de.example.com",
    }
    assert all(isinstance(v, str) and v for a in agents for v in a.values())
    assert later.json() == {"agents": []}


def test_configuration_auth_choice() -> None:
    runner = CliRunner()
    base = ["configuration", "intercom", "--public-url", "https://bridge.example.com"]
    custom = runner.invoke(cli_app, [*base, "--auth", "custom"])
    assert custom.exit_code == 0, custom.output
    doc = json.loads(custom.output)["integration"]
    assert doc["authentication_type"] == "custom"
    fields = {k: v for f in doc["authentication_configuration"] for k, v in f.items()}
    assert fields["access_token"]["type"] == "input" and fields["access_token"]["mandatory"]
    assert fields["region"]["mandatory"] is False
    assert doc["interaction_types"] == ["conversation", "ticket"]
    oauth = runner.invoke(cli_app, [*base, "--auth", "oauth2"])
    doc = json.loads(oauth.output)["integration"]
    assert doc["authentication_type"] == "oauth2"
    fields = {k: v for f in doc["authentication_configuration"] for k, v in f.items()}
    assert fields["access_token"]["type"] == "oauth"
    actions = json.loads(oauth.output)["actions"]
    assert {a["name"] for a in actions} == {"create_note", "create_ticket", "create_contact"}
    assert all(a["provider"] == "intercom" and a["display"].islower() for a in actions)
    wrong = runner.invoke(cli_app, [*base, "--auth", "basic"])
    assert wrong.exit_code == 2
    sql = runner.invoke(
        cli_app,
        ["configuration", "sql", "--public-url", "https://b.example.com", "--auth", "oauth2"],
    )
    assert sql.exit_code == 2


async def test_enabled_by_default_through_the_app_factory(fake: FakeIntercom) -> None:
    """No Intercom settings at all: the connector is built by the registry, real hosts."""
    settings = Settings()
    assert settings.intercom_base_url is None
    fake.add_contact(email="one@example.com")
    app = create_app(settings, transports={"intercom": httpx.ASGITransport(app=fake.app)})
    assert "intercom" in app.state.connectors
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://b.test") as c,
    ):
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["connectors"]["intercom"] == "ok"
        r = await c.post("/intercom/contact_sync", json={"auth": auth(), "meta": {}})
        assert r.status_code == 200 and len(r.json()["contacts"]) == 1
        config = await c.get("/intercom/configuration")
        assert config.json()["integration"]["authentication_type"] == "custom"


async def test_no_credentials_in_logs_or_answers(
    fake: FakeIntercom, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seed_person(fake, clock)
    bodies: list[str] = []
    async with bridge(fake, clock, intercom_request_budget_seconds=1) as b:
        fake.fail_next(
            2,
            status=503,
            path_prefix="/admins",
            body=error_body("service_unavailable", f"token {TOKEN} is fine"),
        )
        bodies.append((await b.post("agent_sync", {"auth": auth()})).text)
        fake.rate_limit_burst(1)
        bodies.append((await b.post("agent_sync", {"auth": auth()})).text)
        clock.advance(10)  # past the window the 429 spent
        fake.fail_next(
            1,
            status=404,
            path_prefix="/contacts",
            body=error_body("not_found", f"nothing for {TOKEN}"),
        )
        bodies.append(
            (
                await b.post(
                    "interaction_update", {"auth": auth(), "data": {"contact_emails": ["a@b.c"]}}
                )
            ).text
        )
        bodies.append((await b.post("auth_validation", {"auth": auth(TOKEN + "x")})).text)
    assert all(TOKEN not in body for body in bodies)
    assert TOKEN not in caplog.text
    assert "[redacted]" in bodies[2]
    assert TOKEN not in repr(b.connector.client.session(auth()))


def test_settings_defaults() -> None:
    settings = intercom_settings()
    assert settings.intercom_version == "2.14"
    assert settings.intercom_interactions_budget_seconds == 2.0
    assert settings.intercom_safety_window_seconds == 900.0


async def test_lookup_survives_one_failed_search(fake: FakeIntercom, clock: ManualClock) -> None:
    seed_person(fake, clock)
    async with bridge(fake, clock, intercom_retry_attempts=1) as b:
        await b.post("auth_validation", {"auth": auth()})  # caches /me: no call of its own
        fake.fail_next(1, status=500, path_prefix="/contacts/search")
        r = await b.post(
            "interaction_update",
            {
                "auth": auth(),
                "data": {
                    "contact_emails": ["ana.silva@example.com"],
                    "contact_phones": ["+14155550123"],
                },
            },
        )
    assert r.status_code == 200 and len(r.json()) == 5
    assert fake.call_count("GET", "/me") == 1


async def test_fake_lists_only_companies_with_contacts(fake: FakeIntercom) -> None:
    """The listing the connector reads company names from (vendor: POST /companies/list)."""
    used = [fake.add_company(f"Company {n}") for n in range(4)]
    fake.add_company("No contacts")
    fake.add_contact(email="a@example.com", company_ids=[c["id"] for c in used])
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url="https://api.intercom.io"
    ) as c:
        first = (await c.post("/companies/list", params={"per_page": 3}, headers=headers)).json()
        second = await c.post("/companies/list", params={"per_page": 3, "page": 2}, headers=headers)
        bad = await c.post("/companies/list", params={"page": "0"}, headers=headers)
    assert first["total_count"] == 4 and first["pages"]["total_pages"] == 2
    assert [x["name"] for x in first["data"]] == ["Company 0", "Company 1", "Company 2"]
    assert [x["name"] for x in second.json()["data"]] == ["Company 3"]
    assert first["data"][0]["user_count"] == 1
    assert bad.status_code == 400
