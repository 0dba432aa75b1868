"""The HubSpot connector against its sandbox: auth and scopes, rate limits, interactions,
actions and agents."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from talkdesk_bridge import Settings
from talkdesk_bridge._configuration import build_configuration
from talkdesk_bridge._errors import UpstreamRejected, UpstreamUnavailable
from talkdesk_bridge.connectors.hubspot import HubSpotConnector
from talkdesk_bridge.connectors.hubspot.client import DailyLimit, ScopeMissing, refine
from talkdesk_sandbox._clock import ManualClock
from tests.test_hubspot_support import T0, RecordingTransport, auth, bridge, sandbox


def _response(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers=headers)


# -- auth -----------------------------------------------------------------------------------


async def test_auth_validation_reads_account_info_and_one_cheap_read_per_scope() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    async with bridge(fake, clock) as b:
        r = await b.post("auth_validation", {"auth": auth()})
        assert r.status_code == 200 and r.json() == {}
        assert fake.call_count("GET", "/account-info/v3/details") == 1
        assert fake.call_count("GET", "/crm/v3/owners") == 1
        bad = await b.post("auth_validation", {"auth": fake.bad_credentials()})
        assert bad.status_code == 401
        fake.add_token("pat-na1-no-owners", ["crm.objects.contacts.read", "tickets"])
        scoped = await b.post("auth_validation", {"auth": auth("pat-na1-no-owners")})
        assert scoped.status_code == 403
        assert "crm.objects.owners.read" in scoped.json()["error"]["message"]


async def test_expired_oauth_tokens_are_a_401_so_talkdesk_refreshes() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=3)
    fake.add_token("oauth-access-token-1", expires_in=1800)
    async with bridge(fake, clock, hubspot_auth_type="oauth2") as b:
        ok = await b.post("contact_sync", {"auth": auth("oauth-access-token-1"), "meta": {}})
        assert ok.status_code == 200
        clock.advance(1801)
        r = await b.post("contact_sync", {"auth": auth("oauth-access-token-1"), "meta": {}})
        assert r.status_code == 401
        assert "expired" in r.json()["error"]["message"]
        assert "oauth-access-token-1" not in r.text


async def test_hostile_credentials_are_a_401_naming_the_field_and_never_sent() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    async with bridge(fake, clock) as b:
        for value in ("tok\r\nX-Evil: 1", "x" * 5000, "ünïcode", "", 7, None):
            r = await b.post("auth_validation", {"auth": {"access_token": value}})
            assert r.status_code == 401, (value, r.text)
            assert "auth.access_token" in r.json()["error"]["message"]
    assert fake.calls == []


def test_the_oauth_setting_emits_the_oauth_form() -> None:
    for kind, expected in (("custom", "input"), ("oauth2", "oauth")):
        connector = HubSpotConnector(Settings(hubspot_auth_type=kind), serving=False)
        document = build_configuration(connector, "https://bridge.example/")
        dumped = orjson.dumps(document.model_dump() if hasattr(document, "model_dump")
                              else document).decode()  # fmt: skip
        assert f'"authentication_type":"{kind}"' in dumped
        assert f'"type":"{expected}"' in dumped


# -- HubSpot's reading of failures ------------------------------------------------------------


def test_refine_reads_hubspots_429s_and_missing_scopes() -> None:
    generic = UpstreamUnavailable("x", retry_after=1.0, upstream_status=429)
    search = refine(_response(429, {"message": "You have reached your secondly limit."}),
                    generic, T0)  # fmt: skip
    assert isinstance(search, UpstreamUnavailable) and search.retry_after == 1.0
    bucket = refine(
        _response(429, {"policyName": "TEN_SECONDLY_ROLLING", "message": "ten secondly"},
                  **{"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}),
        generic, T0,
    )  # fmt: skip
    assert bucket.retry_after == 10.0 and bucket.retriable
    daily = refine(_response(429, {"policyName": "DAILY", "errorType": "RATE_LIMIT"}), generic,
                   86_400 * 20_000 + 3600)  # fmt: skip
    assert isinstance(daily, DailyLimit) and not daily.retriable
    assert daily.retry_after == 86_400 - 3600
    scope = refine(
        _response(403, {"category": "MISSING_SCOPES", "errors": [
            {"context": {"requiredGranularScopes": ["tickets"]}}]}),
        UpstreamRejected("x", upstream_status=403), T0,
    )  # fmt: skip
    assert isinstance(scope, ScopeMissing) and "tickets" in scope.message


async def test_a_daily_limit_is_a_503_with_retry_after_until_the_portals_midnight() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, daily_limit=4)
    fake.seed(contacts=3)
    async with bridge(fake, clock) as b:
        assert (await b.post("auth_validation", {"auth": auth()})).status_code == 200
        r = await b.post("agent_sync", {"auth": auth(), "meta": {}})
        assert r.status_code == 503
        wait = int(r.headers["retry-after"])
        # Midnight in the portal's time zone (account info: US/Eastern), not UTC's.
        local = datetime.fromtimestamp(T0, ZoneInfo("US/Eastern"))
        midnight = datetime.combine(local.date() + timedelta(days=1), time.min, local.tzinfo)
        assert abs(wait - (midnight.timestamp() - T0)) <= 1
        assert fake.call_count("GET", "/crm/v3/owners") == 2  # not retried in the request


async def test_the_ten_second_bucket_is_paced_from_hubspots_headers() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, rate_limit=(20, 10))
    fake.seed(contacts=3000)
    async with bridge(fake, clock, hubspot_sync_page_size=10_000,
                      hubspot_sync_budget_seconds=300) as b:  # fmt: skip
        r = await b.post("contact_sync", {"auth": auth(), "meta": {}})
        assert r.status_code == 200, r.text
    assert len(r.json()["contacts"]) == 3000
    assert sum(b.sleeps) > 0  # it waited for windows instead of failing


# -- interactions --------------------------------------------------------------------------


async def test_interactions_by_id_one_association_read_then_batch_reads_newest_first() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=3)
    cid = next(iter(fake.live()))
    day = 86_400_000
    now = int(T0 * 1000)
    fake.add_object(
        "calls",
        cid,
        {
            "hs_call_title": "Old call",
            "hs_call_status": "NO_ANSWER",
            "hs_timestamp": str(now - 9 * day),
        },
        touch=False,
    )
    fake.add_object(
        "tickets",
        cid,
        {
            "subject": "Broken",
            "hs_pipeline": "0",
            "hs_pipeline_stage": "4",
            "hs_ticket_priority": "URGENT",
            "createdate": str(now - day),
        },
        at=now - day,
        touch=False,
    )
    fake.add_object("notes", cid, {"hs_note_body": "<p>Newest &amp; best</p>",
                                   "hs_timestamp": str(now)}, touch=False)  # fmt: skip
    recording = RecordingTransport(httpx.ASGITransport(app=fake.app))
    async with bridge(fake, clock, transport=recording) as b:
        r = await b.post("interaction_update", {"auth": auth(),
                                                "data": {"contact_external_id": cid}})  # fmt: skip
        assert r.status_code == 200, r.text
        found = r.json()
        dates = [i["date"] for i in found]
        assert dates == sorted(dates, reverse=True)
        assert found[0]["type"] == "note" and found[0]["subject"] == "Newest & best"
        ticket = next(i for i in found if i["subject"] == "Broken")
        assert ticket["status"] == "closed" and ticket["priority"] == "urgent"
        assert ticket["url"].endswith("/record/0-5/" + ticket["id"])
        call = next(i for i in found if i["subject"] == "Old call")
        assert call["status"] == "closed"
        gets = [q for q in recording.requests if q.url.path.endswith("/contacts/" + cid)]
        assert len(gets) == 1 and "associations" in gets[0].url.params
        reads = [q for q in recording.requests if q.url.path.endswith("/batch/read")]
        assert all(orjson.loads(q.content)["properties"] for q in reads)
        only = await b.post("interaction_update", {
            "auth": auth(), "meta": {"interaction_types": ["ticket"]},
            "data": {"contact_external_id": cid}})  # fmt: skip
        assert {i["type"] for i in only.json()} == {"ticket"}


async def test_interactions_find_the_contact_by_email_additional_email_and_phone() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, lag=0)
    cid = fake.create_contact({"firstname": "Ana", "email": "ana@example.com",
                               "hs_additional_emails": "ana.old@example.com",
                               "phone": "+1 (415) 555-0132"})  # fmt: skip
    fake.add_object("notes", cid, {"hs_note_body": "hello", "hs_timestamp": str(int(T0 * 1000))})
    async with bridge(fake, clock) as b:
        for data in ({"contact_emails": ["ANA@example.com"]},
                     {"contact_emails": ["ana.old@example.com"]},
                     {"contact_phones": ["415-555-0132"]}):  # fmt: skip
            r = await b.post("interaction_update", {"auth": auth(), "data": data})
            assert r.status_code == 200, r.text
            assert [i["subject"] for i in r.json()] == ["hello"], data
        none = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_emails": ["x@y.z"]}}
        )
        assert none.status_code == 200 and none.json() == []
        bad = await b.post(
            "interaction_update", {"auth": auth(), "data": {"contact_external_id": "../1"}}
        )
        assert bad.status_code == 422


# -- actions -------------------------------------------------------------------------------


async def test_actions_create_and_associate_in_one_request() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=2)
    cid = next(iter(fake.live()))
    recording = RecordingTransport(httpx.ASGITransport(app=fake.app))
    async with bridge(fake, clock, transport=recording) as b:
        meta = {"contact_external_id": cid, "agent_external_id": "70001"}
        note = await b.post(
            "actions/create_note", {"auth": auth(), "meta": meta, "data": {"body": "Called back"}}
        )
        assert note.status_code == 201, note.text
        call = await b.post(
            "actions/log_call",
            {
                "auth": auth(),
                "meta": meta,
                "data": {
                    "title": "Inbound call",
                    "duration_seconds": 75,
                    "direction": "inbound",
                    "from_number": "(415) 555-0100",
                    "recording_url": "https://rec.example/1",
                },
            },
        )
        assert call.status_code == 201, call.text
        for n in range(2):
            ticket = await b.post(
                "actions/create_ticket",
                {
                    "auth": auth(),
                    "meta": meta,
                    "data": {"subject": f"Help {n}", "priority": "high"},
                },
            )
            assert ticket.status_code == 201, ticket.text
        missing = await b.post("actions/create_note", {"auth": auth(), "meta": meta, "data": {}})
        assert missing.status_code == 400 and "data.body" in missing.json()["message"]
        bad = await b.post(
            "actions/log_call",
            {"auth": auth(), "meta": meta, "data": {"title": "x", "direction": "up"}},
        )
        assert bad.status_code == 400
    creates = {q.url.path.rsplit("/", 1)[1]: orjson.loads(q.content) for q in recording.requests
               if q.method == "POST" and not q.url.path.endswith("read")}  # fmt: skip
    type_ids = {k: v["associations"][0]["types"][0]["associationTypeId"]
                for k, v in creates.items()}  # fmt: skip
    assert type_ids == {"notes": 202, "calls": 194, "tickets": 16}
    assert creates["calls"]["properties"]["hs_call_duration"] == "75000"
    assert creates["calls"]["properties"]["hs_call_from_number"] == "+14155550100"
    assert creates["notes"]["properties"]["hubspot_owner_id"] == "70001"
    assert creates["tickets"]["properties"]["hs_pipeline_stage"] == "1"
    assert fake.call_count("GET", "/crm/v3/pipelines/tickets") == 1  # cached per portal
    assert len(fake.associations[cid]["notes"]) >= 1


async def test_create_contact_pops_the_existing_contact_on_409() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    existing = fake.create_contact({"firstname": "Bo", "email": "bo@example.com"})
    async with bridge(fake, clock) as b:
        r = await b.post(
            "actions/create_contact",
            {"auth": auth(), "meta": {}, "data": {"name": "Bo Jo", "email": "bo@example.com"}},
        )
        assert r.status_code == 201, r.text
        assert r.json()["contact_external_id"] == existing
        assert r.json()["message"] == "Contact already exists"
        new = await b.post(
            "actions/create_contact",
            {"auth": auth(), "meta": {}, "data": {"name": "Cy Twombly", "phone": "4155550111"}},
        )
        assert new.status_code == 201
        body = new.json()
        assert body["contact_external_type"] == "contact"
        assert body["contact_external_url"].endswith("/record/0-1/" + body["contact_external_id"])
        assert fake.live()[body["contact_external_id"]]["lastname"] == "Twombly"
        bad = await b.post(
            "actions/create_contact",
            {"auth": auth(), "meta": {}, "data": {"name": "X", "email": "not an email"}},
        )
        assert bad.status_code == 400


async def test_a_missing_write_scope_is_the_contracts_400_naming_it() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    cid = fake.create_contact({"firstname": "Al"})
    fake.add_token("pat-na1-readonly", ["crm.objects.contacts.read"])
    async with bridge(fake, clock) as b:
        r = await b.post(
            "actions/create_note",
            {
                "auth": auth("pat-na1-readonly"),
                "meta": {"contact_external_id": cid},
                "data": {"body": "x"},
            },
        )
    assert r.status_code == 400
    assert "crm.objects.contacts.write" in r.json()["message"]


# -- agents --------------------------------------------------------------------------------


async def test_agents_are_active_person_owners_with_integer_paging() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    for n in range(230):
        fake.add_owner(f"User{n}", "Agent", f"user{n}@portal.example")
    async with bridge(fake, clock) as b:
        agents: list[dict[str, Any]] = []
        meta: dict[str, Any] = {}
        pages = 0
        while True:
            r = await b.post("agent_sync", {"auth": auth(), "meta": meta})
            assert r.status_code == 200, r.text
            agents += r.json()["agents"]
            pages += 1
            if r.json().get("next_offset") is None:
                break
            assert isinstance(r.json()["next_offset"], int)
            meta = {"offset": r.json()["next_offset"]}
    ids = [a["id"] for a in agents]
    assert pages == 3 and len(ids) == len(set(ids)) == 234
    assert "70100" not in ids and "70200" not in ids  # the queue, the deactivated user
