"""The `rest` connector's other features over the sample APIs: interactions with ids unique
per answer, lookups, actions whose values travel as JSON and percent-encoded path segments
only, agents, the three authentication types, and hostile values that never change the host;
and `talkdesk-bridge check` passing on every style."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from talkdesk_bridge import Settings, create_app
from talkdesk_bridge.checker import CheckOptions, run_check
from talkdesk_bridge.connectors.rest.client import WindowBudget, next_link
from talkdesk_sandbox._clock import ManualClock
from tests.test_rest_support import STYLES, T0, Bridge, bridge, sandbox


class Recorder(httpx.AsyncBaseTransport):
    """Delegates to the sandbox and keeps every request; `rewrite` may alter answers."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rewrite: Any = None) -> None:
        self.inner = inner
        self.rewrite = rewrite
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await request.aread()
        response = await self.inner.handle_async_request(request)
        if self.rewrite is not None:
            await response.aread()
            return self.rewrite(request, response)
        return response


def _with_history(fake: Any) -> tuple[str, dict[str, Any]]:
    return next(
        (rid, r)
        for rid, r in fake.live().items()
        if fake.tickets.get(rid) and fake.calls_log.get(rid) and r["phones"]
    )


@pytest.mark.parametrize("style", STYLES)
async def test_interactions_by_id_email_and_phone(style: str) -> None:
    clock = ManualClock(T0)
    fake = sandbox(style, clock)
    fake.seed(contacts=60)
    rid, record = _with_history(fake)
    cid = fake.public_id(rid)
    fake.add_ticket(rid, "Refund", state="waiting", urgency="P1")
    async with bridge(fake, clock) as b:
        answers = []
        for data in (
            {"contact_external_id": cid},
            {"contact_emails": [record["emails"][0].upper()]},
            {"contact_phones": [record["phones"][0]["number"]]},
        ):
            r = await b.post("interaction_update", {"meta": {}, "data": data})
            assert r.status_code == 200, r.text
            answers.append(r.json())
        only_calls = await b.post(
            "interaction_update",
            {"meta": {"interaction_types": ["call"]}, "data": {"contact_external_id": cid}},
        )
        nobody = await b.post(
            "interaction_update", {"meta": {}, "data": {"contact_emails": ["no@one.example"]}}
        )
    first = answers[0]
    assert answers[1] == first and answers[2] == first
    ids = [i["id"] for i in first]
    assert len(ids) == len(set(ids)) == len(fake.tickets[rid]) + len(fake.calls_log[rid])
    assert {i["id"].split("-")[0] for i in first} == {"ticket", "call"}
    assert [i["date"] for i in first] == sorted((i["date"] for i in first), reverse=True)
    refund = next(i for i in first if i["subject"] == "Refund")
    assert refund["status"] == "pending" and refund["priority"] == "urgent"
    assert {i["type"] for i in only_calls.json()} == {"call"}
    assert nobody.json() == []


async def _action(
    b: Bridge, name: str, meta: dict[str, Any], data: dict[str, Any]
) -> httpx.Response:
    return await b.post(f"actions/{name}", {"meta": meta, "data": data})


async def test_action_values_travel_as_json_and_path_slots_are_one_segment() -> None:
    clock = ManualClock(T0)
    fake = sandbox("cursor", clock)
    fake.seed(contacts=5)
    rid = next(iter(fake.live()))
    recorder = Recorder(httpx.ASGITransport(app=fake.app))
    hostile = 'He said "hi"}, {"admin": true} {body} \\ \u2028 ëvil {{x}}'
    async with bridge(fake, clock, transport=recorder) as b:
        meta = {"contact_external_id": fake.public_id(rid), "agent_external_id": "8"}
        r = await _action(b, "create_note", meta, {"body": hostile})
        assert r.status_code == 201, r.text
        assert r.json()["external_id"] and r.json()["message"].startswith("Note ")
        sent = recorder.requests[-1]
        assert orjson.loads(sent.content) == {"text": hostile, "author_id": "8"}
        assert fake.notes[rid][-1]["text"] == hostile
        for evil in ("../../admin?x=1#f", "http://evil.example/x", "a/b", "%2e%2e", " x y "):
            r = await _action(b, "create_note", {"contact_external_id": evil}, {"body": "b"})
            assert r.status_code < 500 or r.status_code in (502, 503, 504), r.text
            sent = recorder.requests[-1]
            assert sent.url.host == "api.acme.example"
            assert sent.url.raw_path.startswith(b"/api/v1/contacts/")
            assert sent.url.raw_path.count(b"/") == 5 and b"?" not in sent.url.raw_path
        calls = len(recorder.requests)
        for evil in ("..", ".", "x" * 300, "a\x00b"):
            r = await _action(b, "create_note", {"contact_external_id": evil}, {"body": "b"})
            assert r.status_code == 422 and "meta.contact_external_id" in r.text
        assert len(recorder.requests) == calls  # refused before any call
        missing = await _action(b, "create_note", {}, {"body": "b"})
        assert missing.status_code == 400 and "contact_external_id" in missing.text
        bad_email = await _action(b, "create_contact", {}, {"name": "N", "email": "nope"})
        assert bad_email.status_code == 400 and "data.email" in bad_email.text
        created = await _action(
            b, "create_contact", {}, {"name": "Casey Check", "email": "c@x.example",
                                      "phone": "(617) 555-0123"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        new = created.json()
        assert new["contact_external_id"].startswith("cus_")
        assert new["contact_external_url"].endswith(new["contact_external_id"])
        assert orjson.loads(recorder.requests[-1].content)["phone"] == "+16175550123"
        ticket = await _action(b, "create_ticket", {"contact_external_id": fake.public_id(rid)},
                               {"subject": "Printer", "priority": "high"})  # fmt: skip
        assert ticket.status_code == 201 and fake.tickets[rid][-1]["urgency"] == "P2"


async def test_agents_and_the_three_authentication_types() -> None:
    clock = ManualClock(T0)
    for style, fields in (
        ("pages", {"api_token"}),
        ("cursor", {"api_key"}),
        ("keyset", {"username", "password"}),
    ):
        fake = sandbox(style, clock)
        fake.seed(contacts=3)
        async with bridge(fake, clock) as b:
            config = (await b.client.get("/rest/configuration")).json()
            entries = config["integration"]["authentication_configuration"]
            assert {k for entry in entries for k in entry} == fields
            assert (await b.post("auth_validation", {})).status_code == 200
            b.auth = fake.bad_credentials()
            denied = await b.post("auth_validation", {})
            assert denied.status_code == 401
            assert fake.token not in denied.text
            b.auth = fake.credentials()
            agents = (await b.post("agent_sync", {"meta": {}})).json()
            assert [a["email"] for a in agents["agents"]][:1] == ["alex@acme.example"]


async def test_next_links_off_the_base_url_and_redirects_are_not_followed() -> None:
    clock = ManualClock(T0)
    fake = sandbox("keyset", clock)
    for _ in range(150):  # one second fills a page: the next link must be followed
        fake.create_contact()
    clock.advance(10)

    def off_host(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        link = response.headers.get("link")
        out = httpx.Response(response.status_code, headers=response.headers,
                             content=response.content)  # fmt: skip
        if link:
            out.headers["link"] = link.replace("api.acme.example", "evil.example")
        return out

    recorder = Recorder(httpx.ASGITransport(app=fake.app), off_host)
    async with bridge(fake, clock, transport=recorder) as b:
        r = await b.post("contact_sync", {"meta": {}})
    assert r.status_code == 502 and "off its base URL" in r.text
    assert {req.url.host for req in recorder.requests} == {"api.acme.example"}

    def redirect(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://evil.example/"})

    recorder = Recorder(httpx.ASGITransport(app=fake.app), redirect)
    async with bridge(fake, clock, transport=recorder) as b:
        r = await b.post("contact_sync", {"meta": {}})
    assert r.status_code == 502 and "redirects are not followed" in r.text
    assert {req.url.host for req in recorder.requests} == {"api.acme.example"}


def test_link_headers_and_the_rate_window() -> None:
    header = '<https://a.example/p?page=1>; rel="prev", <https://a.example/p?page=3>; rel="next"'
    assert next_link(header) == "https://a.example/p?page=3"
    assert next_link('<https://a.example/x>; rel="last"') is None
    assert next_link(None) is None


async def test_the_mapping_rate_limit_spaces_calls() -> None:
    budget = WindowBudget(10, 10.0)
    waits = [await budget.delay("acct", 100.0) for _ in range(12)]
    assert waits[:10] == [0.0] * 10 and waits[10] == pytest.approx(1.0)
    assert waits[11] == pytest.approx(2.0)
    assert await budget.delay("other", 100.0) == 0.0  # per account
    await budget.observe("acct", remaining=0, reset_at=130.0, now=101.0)
    assert await budget.delay("acct", 101.0) >= 29.0


@pytest.mark.parametrize("style", ["cursor", "keyset"])
async def test_check_passes_on_each_sample_api(style: str, tmp_path: Path) -> None:
    """`talkdesk-bridge check` (the pages API is checked through `demo` in
    test_demo_sandboxes)."""
    fake = sandbox(style, ManualClock(T0))
    fake.seed(contacts=120)
    settings = Settings(connectors=["rest"], rest_mapping=fake.mapping)
    app = create_app(settings, transports={"rest": httpx.ASGITransport(app=fake.app)})
    async with app.router.lifespan_context(app):
        report = await run_check(
            CheckOptions(
                url="https://bridge.test/rest",
                auth=fake.credentials(),
                actions=True,
                contacts_sample=4,
                store=tmp_path / "talkdesk.db",
            ),
            transport=httpx.ASGITransport(app=app),
        )
    assert not report.failed, [f for _, f in report.failures()]
    assert report.stats["contacts_full"] >= 120
    assert json.dumps(report.stats)  # figures are plain data


async def test_hostile_lookup_values_stay_in_their_slot() -> None:
    clock = ManualClock(T0)
    fake = sandbox("keyset", clock)  # lookups put the value in the path: /people/lookup/{value}
    fake.seed(contacts=5)
    recorder = Recorder(httpx.ASGITransport(app=fake.app))
    hostile = ["../../agents", "a@b/../../x?y#z", "http://evil.example/@x", "\u00e9@\u00e9.example"]
    async with bridge(fake, clock, transport=recorder) as b:
        for value in hostile:
            for data in (
                {"contact_emails": [value]},
                {"contact_external_id": value},
                {"contact_phones": [value]},
            ):
                r = await b.post("interaction_update", {"meta": {}, "data": data})
                assert r.status_code in (200, 422) or r.status_code in (502, 503), r.text
        for bad in ("..", "x\u0085y"):
            r = await b.post("interaction_update", {"data": {"contact_external_id": bad}})
            assert r.status_code == 422 and "data.contact_external_id" in r.text
    assert recorder.requests
    for request in recorder.requests:
        assert request.url.host == "api.acme.example"
        path = request.url.raw_path.split(b"?")[0]
        assert path.startswith(b"/api/v1/")
        assert not {b".", b".."} & set(path.split(b"/"))  # no dot segment a server would resolve
        assert path.count(b"/") <= 5
