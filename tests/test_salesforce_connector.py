"""The Salesforce connector over the sandbox: auth and instance resolution, errors, interactions,
actions and agents."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.connectors.salesforce import SalesforceConnector
from talkdesk_sandbox.salesforce import ManualClock, SalesforceSandbox
from tests.test_salesforce_support import BASE, T0, Recording, bridge


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def sandbox(clock: ManualClock) -> SalesforceSandbox:
    return SalesforceSandbox(clock=clock)


# --- auth ---------------------------------------------------------------------------------


async def test_auth_validation_returns_the_instance_from_userinfo(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    async with bridge(sandbox, clock) as b:
        r = await b.post("auth_validation", {"auth": b.auth})
        assert r.status_code == 200 and r.json() == {"instance_url": BASE}
        r = await b.post("auth_validation", {"auth": sandbox.bad_credentials()})
        assert r.status_code == 401  # userinfo's 403 Bad_OAuth_Token is a rejected token
        assert sandbox.bad_credentials()["access_token"] not in r.text


async def test_instance_url_is_resolved_once_and_cached_per_token(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    async with bridge(sandbox, clock) as b:
        for _ in range(3):
            r = await b.post("agent_sync", {"auth": b.auth, "meta": {}})
            assert r.status_code == 200
        assert sandbox.call_count("GET", "/services/oauth2/userinfo") == 1
        # With instance_url stored by Talkdesk, userinfo is not needed at all.
        r = await b.post("agent_sync", {"auth": {**b.auth, "instance_url": BASE}, "meta": {}})
        assert r.status_code == 200
        assert sandbox.call_count("GET", "/services/oauth2/userinfo") == 1


@pytest.mark.parametrize(
    "instance",
    ["https://evilsalesforce.com", "https://salesforce.com.evil.example", "https://127.0.0.1",
     "https://acme.my.salesforce.com", "http://sf.sandbox.test", 7, ["x"]],
)  # fmt: skip
async def test_a_foreign_instance_url_never_receives_the_token(
    sandbox: SalesforceSandbox, clock: ManualClock, instance: Any
) -> None:
    async with bridge(sandbox, clock) as b:
        r = await b.post("contact_sync", {"auth": {**b.auth, "instance_url": instance}, "meta": {}})
        assert r.status_code == 401
        assert "auth.instance_url" in r.json()["error"]["message"]
        assert not b.transport.requests


async def test_without_a_base_url_only_salesforce_hosts_are_called(clock: ManualClock) -> None:
    """Production settings: userinfo naming a foreign host is refused, a real-looking one is
    called (here answered by the sandbox through the test transport)."""
    for named, status in (("https://evil.example", 502), ("https://acme.my.salesforce.com", 200)):
        sandbox = SalesforceSandbox(clock=clock, instance_url=named)
        settings = Settings(connectors=["salesforce"])
        transport = Recording(httpx.ASGITransport(app=sandbox.app))
        connector = SalesforceConnector(settings, transport=transport)
        app = create_app(settings, connectors={"salesforce": connector})
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://bridge.test"
            ) as client,
        ):
            r = await client.post(
                "/salesforce/auth_validation", json={"auth": sandbox.credentials()}
            )
        assert r.status_code == status, r.text
        hosts = {req.url.host for req in transport.requests}
        assert hosts <= {"login.salesforce.com", "acme.my.salesforce.com"}
        if status == 200:
            assert r.json() == {"instance_url": named}


async def test_expired_session_is_401_and_limits_are_503_not_401(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    async with bridge(sandbox, clock) as b:
        auth = {**b.auth, "instance_url": BASE}
        sandbox.expire(sandbox.token)
        r = await b.post("contact_sync", {"auth": auth, "meta": {}})
        assert r.status_code == 401 and "Session expired or invalid" in r.text
        sandbox.sessions[sandbox.token].expires_at = float("inf")
        sandbox.limit_burst(10)
        r = await b.post("contact_sync", {"auth": auth, "meta": {}})
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 30
        assert "limit" in r.json()["error"]["message"].lower()


async def test_an_echoed_token_never_reaches_talkdesk(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    """A fault body quoting the session (a misbehaving proxy) is scrubbed from the message."""
    async with bridge(sandbox, clock) as b:
        body = [{"errorCode": "INVALID_FIELD", "message": f"bad token {sandbox.token} here"}]
        sandbox.fail_next(1, 400, "/services/data/v62.0/query", body=body)
        r = await b.post("agent_sync", {"auth": {**b.auth, "instance_url": BASE}, "meta": {}})
        assert r.status_code == 502 and sandbox.token not in r.text
        assert "[redacted]" in r.text


async def test_the_token_endpoint_and_refresh(sandbox: SalesforceSandbox) -> None:
    code = sandbox.authorization_code()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app), base_url=BASE
    ) as c:
        r = await c.post(
            "/services/oauth2/token", data={"grant_type": "authorization_code", "code": code}
        )
        body = r.json()
        assert r.status_code == 200 and isinstance(body["issued_at"], str)
        assert "expires_in" not in body and body["refresh_token"]
        r = await c.post(
            "/services/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        )
        assert r.status_code == 200 and "refresh_token" not in r.json()
        r = await c.post(
            "/services/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "x"}
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        r = await c.get("/services/data/v62.0/", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"
        r = await c.get(
            "/services/data/v20.0/", headers={"Authorization": f"Bearer {sandbox.token}"}
        )
        assert r.status_code == 410
        r = await c.get(
            "/services/data/v62.0/", headers={"Authorization": f"Bearer {sandbox.token}"}
        )
        assert r.headers["sforce-limit-info"].startswith("api-usage=")


# --- interactions -------------------------------------------------------------------------


def people_with_history(sandbox: SalesforceSandbox) -> tuple[str, str]:
    org = sandbox.org
    contact = sandbox.add_contact(FirstName="Ana", LastName="Silva", Email="ana@example.com",
                                  Phone="(415) 555-0132")  # fmt: skip
    lead = sandbox.add_lead(LastName="Lee", Email="lee@example.com", MobilePhone="+44 7700 900123")
    for n in range(3):
        sandbox.add("Task", Subject=f"Call {n}", WhoId=contact, Status="Completed",
                    TaskSubtype="Call", CreatedDate=T0 - 100 * n)  # fmt: skip
    old = sandbox.add("Task", Subject="Archived call", WhoId=contact, Status="Completed",
                      CreatedDate=T0 - 10_000)  # fmt: skip
    org.archive(old)
    gone = sandbox.add("Task", Subject="Deleted", WhoId=contact, CreatedDate=T0 - 50)
    org.delete(gone)
    sandbox.add("Event", Subject="Demo", WhoId=contact, StartDateTime=T0 - 30, CreatedDate=T0 - 900)
    sandbox.add("Case", Subject="Broken", ContactId=contact, Status="On Hold", Priority="High",
                CreatedDate=T0 - 10)  # fmt: skip
    sandbox.add("Task", Subject="Lead call", WhoId=lead, Status="Waiting on someone else",
                CreatedDate=T0 - 5)  # fmt: skip
    return contact, lead


async def test_interactions_by_id_in_one_composite_round_trip(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    contact, _ = people_with_history(sandbox)
    async with bridge(sandbox, clock) as b:
        auth = {**b.auth, "instance_url": BASE}
        r = await b.post(
            "interaction_update", {"auth": auth, "data": {"contact_external_id": contact}}
        )
        assert r.status_code == 200, r.text
        got = r.json()
        assert [i["subject"] for i in got] == [
            "Call 0", "Case 00001001: Broken", "Demo", "Call 1", "Call 2", "Archived call",
        ]  # fmt: skip
        case = got[1]
        assert (case["type"], case["status"], case["priority"]) == ("case", "pending", "high")
        assert got[0]["status"] == "closed" and got[2]["type"] == "event"
        assert case["url"] == f"{BASE}/{case['id']}"
        assert [r.url.path for r in b.transport.requests] == ["/services/data/v62.0/composite"]


async def test_interactions_by_email_then_by_phone_with_search_lag(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    _contact, _lead = people_with_history(sandbox)
    async with bridge(sandbox, clock) as b:
        auth = {**b.auth, "instance_url": BASE}
        r = await b.post(
            "interaction_update", {"auth": auth, "data": {"contact_emails": ["lee@example.com"]}}
        )
        assert [i["subject"] for i in r.json()] == ["Lead call"]
        assert r.json()[0]["status"] == "pending"
        # The search index has not seen the new rows yet: a phone lookup finds nothing...
        phone = {"contact_phones": ["+14155550132"], "contact_emails": ["nobody@example.com"]}
        r = await b.post("interaction_update", {"auth": auth, "data": phone})
        assert r.status_code == 200 and r.json() == []
        clock.advance(300)  # ...until it catches up
        r = await b.post("interaction_update", {"auth": auth, "data": phone})
        assert len(r.json()) == 6
        searches = [
            q.url.params["q"] for q in b.transport.requests if q.url.path.endswith("/search")
        ]
        assert searches[-1].startswith('FIND {"14155550132" OR "4155550132"} IN PHONE FIELDS')


async def test_hostile_lookup_values_are_escaped(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    people_with_history(sandbox)
    async with bridge(sandbox, clock) as b:
        auth = {**b.auth, "instance_url": BASE}
        data = {"contact_emails": ["x' OR Email != '@x", "a@b\\'c"], "contact_phones": ["} OR {*"]}
        r = await b.post("interaction_update", {"auth": auth, "data": data})
        assert r.status_code == 200 and r.json() == []
        r = await b.post(
            "interaction_update", {"auth": auth, "data": {"contact_external_id": "003' OR"}}
        )
        assert r.status_code == 422 and "contact_external_id" in r.text


# --- actions ------------------------------------------------------------------------------


async def test_log_call_creates_a_call_task_once_per_call_id(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    contact, _ = people_with_history(sandbox)
    agent = sandbox.admin_id
    async with bridge(sandbox, clock) as b:
        auth = {**b.auth, "instance_url": BASE}
        body = {
            "auth": auth,
            "meta": {"contact_external_id": contact, "agent_external_id": agent},
            "data": {"subject": "Inbound call", "description": "asked about invoice",
                     "duration_seconds": "95", "direction": "inbound", "call_id": "td-call-1"},
        }  # fmt: skip
        r = await b.post("actions/log_call", body)
        assert r.status_code == 201, r.text
        task_id = r.json()["external_id"]
        task = sandbox.org.get(task_id)
        assert task is not None
        assert (task["TaskSubtype"], task["Status"], task["IsClosed"], task["WhoId"]) == (
            "Call", "Completed", True, contact,
        )  # fmt: skip
        assert (task["OwnerId"], task["CallDurationInSeconds"], task["CallType"]) == (
            agent,
            95,
            "Inbound",
        )
        assert task["CallObject"] == "td-call-1"
        again = await b.post("actions/log_call", body)  # Talkdesk's retry after a timeout
        assert again.status_code == 201 and again.json()["external_id"] == task_id
        assert sandbox.call_count("POST", "/services/data/v62.0/sobjects/Task") == 1
        r = await b.post("actions/log_call", {**body, "data": {"description": "no subject"}})
        assert r.status_code == 400 and "data.subject" in r.json()["message"]
        r = await b.post(
            "actions/log_call", {**body, "data": {"subject": "x", "direction": "sideways"}}
        )
        assert r.status_code == 400 and "data.direction" in r.json()["message"]


async def test_create_case_and_validation_errors(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    contact, lead = people_with_history(sandbox)
    async with bridge(sandbox, clock) as b:
        auth = {**b.auth, "instance_url": BASE}
        r = await b.post("actions/create_case", {
            "auth": auth, "meta": {"contact_external_id": contact},
            "data": {"subject": "Refund", "priority": "high"}})  # fmt: skip
        assert r.status_code == 201, r.text
        case = sandbox.org.get(r.json()["external_id"])
        assert case and (case["ContactId"], case["Origin"], case["Priority"]) == (
            contact,
            "Phone",
            "High",
        )
        meta = {"contact_external_id": lead}
        r = await b.post(
            "actions/create_case", {"auth": auth, "meta": meta, "data": {"subject": "Lead case"}}
        )
        assert r.status_code == 201
        assert sandbox.org.get(r.json()["external_id"])["ContactId"] is None  # type: ignore[index]
        r = await b.post("actions/create_case", {"auth": auth, "data": {"subject": "x" * 300}})
        assert r.status_code == 400 and "data.subject" in r.json()["message"]
        # Salesforce's own validation message reaches Talkdesk as the action's message.
        r = await b.post("actions/create_contact", {"auth": auth, "data": {"name": "A" * 100}})
        assert r.status_code == 400 and "LastName" in r.json()["message"]


async def test_create_contact_pops_the_duplicate(
    sandbox: SalesforceSandbox, clock: ManualClock
) -> None:
    contact, _ = people_with_history(sandbox)
    async with bridge(sandbox, clock) as b:
        auth = {**b.auth, "instance_url": BASE}
        data = {"name": "Rui Costa", "email": "rui@example.com", "phone": "415 555 0199"}
        r = await b.post("actions/create_contact", {"auth": auth, "data": data})
        assert r.status_code == 201, r.text
        created = r.json()
        row = sandbox.org.get(created["contact_external_id"])
        assert row and (row["FirstName"], row["LastName"], row["Phone"]) == (
            "Rui",
            "Costa",
            "+14155550199",
        )
        assert created["contact_external_type"] == "Contact"
        r = await b.post(
            "actions/create_contact",
            {"auth": auth, "data": {"name": "Ana S", "email": "ana@example.com"}},
        )
        assert r.status_code == 201 and r.json()["contact_external_id"] == contact
        assert r.json()["message"] == "Contact already exists"
        r = await b.post(
            "actions/create_contact", {"auth": auth, "data": {"email": "x@example.com"}}
        )
        assert r.status_code == 400 and "data.name" in r.json()["message"]


# --- agents -------------------------------------------------------------------------------


async def test_agents_page_by_id_keyset(sandbox: SalesforceSandbox, clock: ManualClock) -> None:
    for n in range(7):
        sandbox.add("User", FirstName=f"U{n}", LastName="Agent", Email=f"u{n}@example.com")
    sandbox.add("User", LastName="Gone", Email="gone@example.com", IsActive=False)
    sandbox.add(
        "User", LastName="Portal", Email="portal@example.com", UserType="PowerCustomerSuccess"
    )
    async with bridge(sandbox, clock, salesforce_agents_page_size=3) as b:
        auth = {**b.auth, "instance_url": BASE}
        seen: list[str] = []
        meta: dict[str, Any] = {}
        while True:
            r = await b.post("agent_sync", {"auth": auth, "meta": meta})
            assert r.status_code == 200, r.text
            seen.extend(a["email"] for a in r.json()["agents"])
            if r.json().get("next_offset") is None:
                break
            assert isinstance(r.json()["next_offset"], int)
            meta = {"offset": r.json()["next_offset"]}
        assert sorted(seen) == sorted(
            ["admin@example.com"] + [f"u{n}@example.com" for n in range(7)]
        )
        queries = [q.url.params.get("q", "") for q in b.transport.requests]
        assert not any("OFFSET" in q for q in queries)
        # A user deactivated mid-sync shifts nobody: positions count every standard User.
        r = await b.post("agent_sync", {"auth": auth, "meta": {}})
        first = r.json()
        sandbox.org.update(first["agents"][0]["id"], {"IsActive": False}, checked=False)
        r = await b.post("agent_sync", {"auth": auth, "meta": {"offset": first["next_offset"]}})
        assert r.json()["agents"][0]["email"] == seen[3]
        r = await b.post("agent_sync", {"auth": auth, "meta": {"offset": 10**9}})
        assert r.status_code == 200 and r.json() == {"agents": []}
