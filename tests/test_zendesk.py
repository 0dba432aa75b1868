"""The Zendesk connector against the Zendesk sandbox: auth, configuration, interactions,
actions and agents (contact sync: test_zendesk_sync.py)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.connectors.zendesk import ZendeskConnector
from talkdesk_sandbox._clock import ManualClock
from talkdesk_sandbox.zendesk import ZendeskSandbox
from tests.test_zendesk_support import T0, bridge

ADMIN = "zd-admin-oauth-token-0123456789"
AGENT = "zd-agent-oauth-token-0123456789"


# --- the sandbox's own awkward parts ---------------------------------------------------------


async def test_sandbox_users_me_is_200_for_anonymous_callers() -> None:
    sandbox = ZendeskSandbox()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app), base_url="https://acme.zendesk.com"
    ) as c:
        r = await c.get("/api/v2/users/me.json")
        assert r.status_code == 200 and r.json()["user"]["id"] is None
        password = base64.b64encode(b"admin@acme.example:hunter2").decode()
        r = await c.get("/api/v2/users/me", headers={"Authorization": f"Basic {password}"})
        assert r.status_code == 200 and r.json()["user"]["id"] is None
        r = await c.get("/api/v2/users/me", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json() == {"error": "Couldn't authenticate you"}
        r = await c.get(
            "/api/v2/incremental/users/cursor?start_time=0",
            headers={"Authorization": f"Bearer {AGENT}"},
        )
        assert r.status_code == 403
        r = await c.get(
            "/api/v2/incremental/users/cursor",
            params={"start_time": int(sandbox.now) - 10},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert r.status_code == 400 and r.json()["error"] == "StartTimeTooRecent"


async def test_sandbox_search_plus_trap_and_idempotent_replay() -> None:
    sandbox = ZendeskSandbox()
    uid = sandbox.add_user("Rui", phone="+14155550132")
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app),
        base_url="https://acme.zendesk.com",
        headers=headers,
    ) as c:
        raw = await c.get("/api/v2/users/search.json?query=phone:+14155550132")  # + unencoded
        assert raw.json()["users"] == []
        encoded = await c.get("/api/v2/users/search.json", params={"query": "phone:+14155550132"})
        assert [u["id"] for u in encoded.json()["users"]] == [int(uid)]
        body = {"ticket": {"subject": "Hi", "comment": {"body": "x"}, "requester_id": int(uid)}}
        first = await c.post("/api/v2/tickets.json", json=body, headers={"Idempotency-Key": "k1"})
        again = await c.post("/api/v2/tickets.json", json=body, headers={"Idempotency-Key": "k1"})
        assert first.headers["x-idempotency-lookup"] == "miss"
        assert again.headers["x-idempotency-lookup"] == "hit"
        assert first.json()["ticket"]["id"] == again.json()["ticket"]["id"]


# --- auth and configuration ---------------------------------------------------------------


def _fields(config: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for entry in config["integration"]["authentication_configuration"]
        for k, v in entry.items()
    }


async def test_auth_validation_accepts_only_a_real_admin() -> None:
    sandbox = ZendeskSandbox()
    sandbox.tokens["anonymous-looking-token"] = "anonymous"  # a credential Zendesk ignores
    async with bridge(sandbox) as b:
        ok = await b.post("auth_validation", {"auth": b.auth()})
        assert ok.status_code == 200 and ok.json() == {}
        anonymous = await b.post(
            "auth_validation", {"auth": b.auth(access_token="anonymous-looking-token")}
        )
        assert anonymous.status_code == 401  # a 200 with a null user id proves nothing
        agent = await b.post("auth_validation", {"auth": b.auth(access_token=AGENT)})
        assert agent.status_code == 403 and "admin" in agent.json()["error"]["message"]
        revoked = await b.post("auth_validation", {"auth": sandbox.bad_credentials()})
        assert revoked.status_code == 401
        scopeless = await b.post(
            "auth_validation", {"auth": b.auth(access_token="zd-scopeless-oauth-token-0123")}
        )
        assert scopeless.status_code == 401 and "scope" in scopeless.json()["error"]["message"]
        # Every endpoint: an upstream 401 is a 401.
        for endpoint, body in (
            ("contact_sync", {}),
            ("agent_sync", {}),
            ("interaction_update", {"data": {"contact_external_id": "1001"}}),
        ):
            r = await b.post(endpoint, {"auth": sandbox.bad_credentials(), **body})
            assert r.status_code == 401, endpoint


@pytest.mark.parametrize(
    "subdomain",
    [
        "evil.com",
        "acme.zendesk.com",
        "a/b",
        "acme?x=1",
        "acme#",
        "-acme",
        "ac me",
        "é",
        "x" * 64,
        "",
        "acme@evil",
    ],
)
async def test_a_subdomain_is_one_dns_label_or_401(subdomain: str) -> None:
    sandbox = ZendeskSandbox()
    async with bridge(sandbox) as b:
        r = await b.post("auth_validation", {"auth": b.auth(subdomain=subdomain)})
        assert r.status_code == 401
        assert "auth.subdomain" in r.json()["error"]["message"]
        assert sandbox.calls == []


async def test_the_default_host_is_the_subdomain() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"user": {"id": 7, "role": "admin"}})

    settings = Settings(connectors=["zendesk"])
    connector = ZendeskConnector(settings, transport=httpx.MockTransport(handler))
    await connector.start()
    try:
        await connector.validate_auth({"subdomain": "Acme", "access_token": ADMIN})
    finally:
        await connector.close()
    assert seen == ["https://acme.zendesk.com/api/v2/users/me"]


async def test_legacy_api_token_form_uses_basic_email_token() -> None:
    sandbox = ZendeskSandbox()
    async with bridge(sandbox, zendesk_auth_type="api_token") as b:
        config = (await b.client.get("/zendesk/configuration")).json()
        auth_config = _fields(config)
        assert config["integration"]["authentication_type"] == "custom"
        assert set(auth_config) == {"subdomain", "email", "api_token"}
        assert "2027-04-30" in auth_config["api_token"]["help"]
        good = {
            "subdomain": "acme",
            "email": "admin@acme.example",
            "api_token": "zd-api-token-0123456789",
        }
        assert (await b.post("auth_validation", {"auth": good})).status_code == 200
        bad = {**good, "api_token": "wrong-token"}
        r = await b.post("auth_validation", {"auth": bad})
        assert r.status_code == 401 and "wrong-token" not in r.text


async def test_configuration_defaults_to_oauth_with_the_subdomain_format() -> None:
    async with bridge(ZendeskSandbox()) as b:
        config = (await b.client.get("/zendesk/configuration")).json()
    integration = config["integration"]
    assert integration["authentication_type"] == "oauth2"
    fields = _fields(config)
    assert fields["subdomain"]["format"] == "https://{{subdomain}}.zendesk.com"
    assert fields["access_token"]["type"] == "oauth"
    assert {a["name"] for a in config["actions"]} == {"create_ticket", "add_note", "create_contact"}


# --- interactions -------------------------------------------------------------------------


def _interactions(b: Any, data: dict[str, Any]) -> Any:
    return b.post(
        "interaction_update",
        {"auth": b.auth(), "meta": {"interaction_types": ["ticket"]}, "data": data},
    )


async def test_tickets_by_id_email_and_phone_newest_first_mapped() -> None:
    clock = ManualClock(T0)
    sandbox = ZendeskSandbox(clock=clock, lag=900)  # search lags; the tickets list does not
    uid = sandbox.add_user(
        "Ana", email="ana@example.com", phone="+14155550132", emails=("ana2@example.org",)
    )
    statuses = ["new", "open", "pending", "hold", "solved", "closed"]
    for n, status in enumerate(statuses):
        clock.advance(60)
        sandbox.add_ticket(
            uid,
            f"T{n}",
            description=f"<p>Body <b>{n}</b></p>",
            status=status,
            priority=None if n == 0 else "high",
        )
    async with bridge(sandbox, clock, zendesk_interactions_limit=4) as b:
        by_id = (await _interactions(b, {"contact_external_id": uid})).json()
        assert [i["subject"] for i in by_id] == ["T5", "T4", "T3", "T2"]
        assert [i["status"] for i in by_id] == ["closed", "solved", "pending", "pending"]
        assert by_id[0]["description"] == "Body 5" and by_id[0]["priority"] == "high"
        assert by_id[0]["url"].startswith("https://acme.zendesk.com/agent/tickets/")
        assert by_id[0]["date"].endswith(" UTC") and len(by_id[0]["date"]) == 23
        assert (
            await _interactions(b, {"contact_emails": ["ana2@example.org"]})
        ).json() == []  # lag
        clock.advance(900)
        assert (await _interactions(b, {"contact_emails": ["ANA2@example.org"]})).json() == by_id
        by_phone = await _interactions(b, {"contact_phones": ["(415) 555-0132"]})
        assert by_phone.json() == by_id
        wide = await bridge_limit(sandbox, clock, uid)
        assert wide[-1]["status"] == "new" and wide[-1]["priority"] == "none"
        unknown = await _interactions(b, {"contact_external_id": "999999"})
        assert unknown.status_code == 200 and unknown.json() == []
        bad = await _interactions(b, {"contact_external_id": "../users/me"})
        assert bad.status_code == 422


async def bridge_limit(
    sandbox: ZendeskSandbox, clock: ManualClock, uid: str
) -> list[dict[str, Any]]:
    async with bridge(sandbox, clock) as b:
        r = await _interactions(b, {"contact_external_id": uid})
        return list(r.json())


# --- actions ------------------------------------------------------------------------------


def _action(b: Any, name: str, data: dict[str, Any], meta: dict[str, Any] | None = None) -> Any:
    return b.post(f"actions/{name}", {"auth": b.auth(), "meta": meta or {}, "data": data})


async def test_create_ticket_for_the_contact_or_a_caller_assigned_to_the_agent() -> None:
    sandbox = ZendeskSandbox()
    uid = sandbox.add_user("Ana", email="ana@example.com")
    async with bridge(sandbox) as b:
        meta = {"contact_external_id": uid, "agent_external_id": sandbox.agent_id}
        r = await _action(b, "create_ticket", {"subject": "Missed call", "priority": "High"}, meta)
        assert r.status_code == 201, r.text
        ticket = sandbox.tickets[int(r.json()["external_id"])]
        assert ticket["requester_id"] == int(uid) and ticket["priority"] == "high"
        assert ticket["assignee_id"] == int(sandbox.agent_id)
        caller = {"subject": "Call", "name": "Rui", "phone": "(415) 555-0100"}
        r = await _action(b, "create_ticket", caller, {"agent_external_id": uid})  # no assignee
        assert r.status_code == 201
        ticket = sandbox.tickets[int(r.json()["external_id"])]
        requester = sandbox.user(str(ticket["requester_id"]))
        assert requester is not None and requester["phone"] == "+14155550100"
        assert ticket["assignee_id"] is None
        missing = await _action(
            b, "create_ticket", {"description": "no subject"}, {"contact_external_id": uid}
        )
        assert missing.status_code == 400 and "data.subject" in missing.json()["message"]
        bad = await _action(
            b, "create_ticket", {"subject": "x", "priority": "asap"}, {"contact_external_id": uid}
        )
        assert bad.status_code == 400 and "data.priority" in bad.json()["message"]


async def test_a_retried_ticket_create_is_replayed_not_duplicated() -> None:
    sandbox = ZendeskSandbox()
    uid = sandbox.add_user("Ana", email="ana@example.com")
    with sandbox.serve() as url:
        settings = Settings(connectors=["zendesk"], zendesk_base_url=url)
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="https://b") as c,
        ):
            sandbox.reset_next(1, "/api/v2/tickets", method="POST", processed=True)
            r = await c.post(
                "/zendesk/actions/create_ticket",
                json={
                    "auth": sandbox.credentials(),
                    "meta": {"contact_external_id": uid},
                    "data": {"subject": "Once"},
                },
            )
            assert r.status_code == 201, r.text
    assert [t["subject"] for t in sandbox.tickets.values()] == ["Once"]
    assert sandbox.call_count("POST", "/api/v2/tickets") == 2


async def test_add_note_goes_to_the_latest_unsolved_ticket_else_a_new_one() -> None:
    clock = ManualClock(T0)
    sandbox = ZendeskSandbox(clock=clock)
    uid = sandbox.add_user("Ana", email="ana@example.com")
    older = sandbox.add_ticket(uid, "Older", status="open")
    clock.advance(60)
    newer = sandbox.add_ticket(uid, "Newer", status="hold")
    clock.advance(60)
    sandbox.add_ticket(uid, "Done", status="solved")
    async with bridge(sandbox, clock) as b:
        r = await _action(b, "add_note", {"body": "Called back"}, {"contact_external_id": uid})
        assert r.status_code == 201 and r.json()["external_id"] == str(newer)
        assert sandbox.tickets[newer]["comments"][-1] == {"body": "Called back", "public": False}
        assert len(sandbox.tickets[older]["comments"]) == 1
        other = sandbox.add_user("Rui", email="rui@example.com")
        r = await _action(
            b, "add_note", {"body": "First call\nmore"}, {"contact_external_id": other}
        )
        created = sandbox.tickets[int(r.json()["external_id"])]
        assert created["requester_id"] == int(other) and created["comments"][0]["public"] is False
        missing = await _action(b, "add_note", {"body": " "}, {"contact_external_id": uid})
        assert missing.status_code == 400 and "data.body" in missing.json()["message"]
        nobody = await _action(b, "add_note", {"body": "x"})
        assert nobody.status_code == 400 and "meta.contact_external_id" in nobody.json()["message"]


async def test_create_contact_pops_an_existing_caller_instead_of_duplicating() -> None:
    sandbox = ZendeskSandbox()
    uid = sandbox.add_user("Ana", email="ana@example.com")
    async with bridge(sandbox) as b:
        r = await _action(b, "create_contact", {"name": "Ana S.", "email": "ANA@example.com"})
        assert r.status_code == 201
        assert r.json()["contact_external_id"] == uid
        assert r.json()["contact_external_url"] == f"https://acme.zendesk.com/agent/users/{uid}"
        r = await _action(b, "create_contact", {"name": "New Caller", "phone": "+44 20 7946 0958"})
        new = sandbox.user(r.json()["contact_external_id"])
        assert new is not None and new["phone"] == "+442079460958" and new["role"] == "end-user"
        missing = await _action(b, "create_contact", {"email": "x@example.com"})
        assert missing.status_code == 400 and "data.name" in missing.json()["message"]


# --- agents -------------------------------------------------------------------------------


async def test_agents_are_agents_and_admins_paged_by_integer_offset() -> None:
    sandbox = ZendeskSandbox()
    for n in range(1203):
        sandbox.add_user(f"Agent {n}", email=f"agent{n}@acme.example", role="agent")
    sandbox.add_user("Customer", email="c@example.com")
    async with bridge(sandbox) as b:
        first = (await b.post("agent_sync", {"auth": b.auth()})).json()
        assert len(first["agents"]) == 1000 and first["next_offset"] == 1000
        second = (await b.post("agent_sync", {"auth": b.auth(), "meta": {"offset": 1000}})).json()
        assert "next_offset" not in second
    ids = [a["id"] for a in first["agents"] + second["agents"]]
    assert len(ids) == len(set(ids)) == 1205
    assert sandbox.admin_id in ids and all(a["email"] for a in second["agents"])
