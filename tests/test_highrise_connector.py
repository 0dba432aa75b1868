"""The Highrise connector end to end against the sandbox: auth, mapping, interactions, actions,
agents, hostile values and hostile XML."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from talkdesk_bridge.connectors.highrise.mapping import to_contact
from talkdesk_bridge.connectors.highrise.xml import decode
from talkdesk_sandbox._clock import ManualClock
from tests.test_highrise_support import T0, TOKEN, auth, bridge, sandbox

BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<user><id type="integer">1</id><name>&lol3;</name></user>'
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE user [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<people type="array"><person><id type="integer">5</id><first-name>&xxe;</first-name>'
    b"</person></people>"
)


async def test_auth_validation_and_rejections(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    caplog.set_level(logging.DEBUG)
    async with bridge(fake, clock) as b:
        r = await b.post("auth_validation", {"auth": auth()})
        assert r.status_code == 200 and r.json() == {}
        r = await b.post("auth_validation", {"auth": auth("revoked-token")})
        assert r.status_code == 401
        for account in ("evil.com/x", "a b", "acme.evil", "x@y", "-acme", "", "ä"):
            r = await b.post("auth_validation", {"auth": auth(account=account)})
            assert r.status_code == 401 and "auth.account" in r.text
        r = await b.post("auth_validation", {"auth": {"account": "acme", "api_token": "a\nb"}})
        assert r.status_code == 401 and "auth.api_token" in r.text
        for path in ("contact_sync", "interaction_update", "agent_sync"):
            data = {"contact_external_id": "1001"}
            r = await b.post(path, {"auth": auth("revoked-token"), "data": data})
            assert r.status_code == 401, path
        # Wrong scheme for the account's SSL setting: a 302, never followed.
        fake.ssl_enabled = False
        r = await b.post("auth_validation", {"auth": auth()})
        assert r.status_code == 502 and "redirect" in r.json()["error"]["message"]
        assert fake.call_count("GET", "/me.xml") == 3
    assert all(TOKEN not in rec.getMessage() for rec in caplog.records)


async def test_hostile_xml_from_upstream_is_refused_without_effect() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.seed(contacts=3)
    async with bridge(fake, clock, highrise_retry_attempts=1) as b:
        fake.fail_next(1, status=200, path_prefix="/me.xml", body=BOMB)
        r = await b.post("auth_validation", {"auth": auth()})
        assert r.status_code == 502 and "XML" in r.json()["error"]["message"]
        fake.fail_next(1, status=200, path_prefix="/people.xml", body=XXE)
        r = await b.post("contact_sync", {"auth": auth()})
        assert r.status_code == 502 and "root:" not in r.text
    for body in (BOMB, XXE, b"<a><b></a>", b"\xff\xfe<"):
        with pytest.raises(ValueError):
            decode(body)


def test_mapping_tolerates_highrise_shapes() -> None:
    person = decode(
        b'<person><id type="integer">7</id><first-name nil="true"/><last-name></last-name>'
        b"<company-name>Globex</company-name><avatar-url>https://x.example/a.png</avatar-url>"
        b'<contact-data><email-addresses type="array"/><phone-numbers>'
        b"<phone-number><number>(415) 555-0132</number></phone-number>"
        b"<phone-number><number>call me</number></phone-number></phone-numbers>"
        b"<addresses><address><street>1 Main St</street><city>Springfield</city>"
        b"<state>IL</state><zip>62701</zip><country>USA</country></address></addresses>"
        b"<twitter-accounts><twitter-account><username>@globex</username></twitter-account>"
        b"</twitter-accounts></contact-data></person>"
    )["person"]
    contact = to_contact(person, web="https://acme.highrisehq.com", phone_region="US")
    assert contact is not None
    assert contact.name == "Globex"  # no first or last name: the company
    assert contact.phones == ["+14155550132", "call me"]
    assert contact.photo_url == "https://x.example/a.png"
    assert contact.address == "1 Main St, Springfield, IL 62701, USA"
    assert contact.twitter == "globex"
    assert contact.url == "https://acme.highrisehq.com/people/7"
    only_email = {"id": 8, "contact_data": {"email_addresses": [{"address": "a@b.example"}]}}
    mapped = to_contact(only_email, web="w", phone_region="US")
    assert mapped is not None and mapped.name == "a@b.example"
    assert to_contact({"id": "../1"}, web="w", phone_region="US") is None


async def test_interactions_notes_emails_tasks_newest_first() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, email_search_limit=(2, 10.0))
    fake.seed(contacts=5)
    pid = next(iter(fake.live()))
    person = fake.live()[pid]
    fake.notes.pop(int(pid), None)
    fake.emails.pop(int(pid), None)
    for i in range(30):
        fake.add_note(int(pid), f"Note {i}\nmore text", created=T0 - 1000 + i * 10)
    fake.add_email(int(pid), "Re: invoice", "Body of the email", created=T0 - 5)
    fake.add_task(int(pid), "Call back", due=T0 + 3600)
    fake.add_task(int(pid), "Someone else's", due=T0 + 3600, owner=102)
    async with bridge(fake, clock) as b:
        body: dict[str, Any] = {
            "auth": auth(),
            "meta": {"interaction_types": ["note", "email", "task"]},
            "data": {"contact_external_id": pid},
        }
        r = await b.post("interaction_update", body)
        assert r.status_code == 200, r.text
        items = r.json()
        assert len(items) == 20
        assert items[0]["type"] == "task" and items[0]["status"] == "open"
        assert items[1]["id"].startswith("email-") and items[1]["subject"] == "Re: invoice"
        notes = [i for i in items if i["type"] == "note"]
        assert notes[0]["subject"] == "Note 29" and "more text" in notes[0]["description"]
        assert [i["date"] for i in items[1:]] == sorted(
            (i["date"] for i in items[1:]), reverse=True
        )
        assert not any("Someone else" in i["subject"] for i in items)
        # By email, then by phone when email search's own limit is spent.
        email = person["emails"][0]["address"]
        by_email = {**body, "data": {"contact_emails": [email.upper()]}}
        for _ in range(2):
            r = await b.post("interaction_update", by_email)
            assert r.status_code == 200 and len(r.json()) == 20
        if person["phones"]:
            both = {
                **body,
                "data": {
                    "contact_emails": [email],
                    "contact_phones": [person["phones"][0]["number"]],
                },
            }
            r = await b.post("interaction_update", both)
            assert r.status_code == 200 and len(r.json()) == 20
        r = await b.post("interaction_update", {**body, "data": {"contact_emails": ["x@y.z"]}})
        assert r.status_code == 200 and r.json() == []
        # A person deleted since the sync: nothing, not an error.
        fake.delete_person(pid)
        r = await b.post("interaction_update", body)
        assert r.status_code == 200 and r.json() == []


async def test_actions_note_task_contact() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, people_quota=7)
    fake.seed(contacts=5)
    pid = next(iter(fake.live()))
    async with bridge(fake, clock) as b:

        async def act(name: str, data: dict[str, Any], **meta: Any) -> Any:
            return await b.post(f"actions/{name}", {"auth": auth(), "meta": meta, "data": data})

        r = await act("create_note", {"body": "Called <about> & more"}, contact_external_id=pid)
        assert r.status_code == 201, r.text
        note_id = r.json()["external_id"]
        assert any(
            n["body"] == "Called <about> & more" and str(n["id"]) == note_id
            for n in fake.notes[int(pid)]
        )
        assert (await act("create_note", {"body": "x"})).status_code == 400
        assert (await act("create_note", {}, contact_external_id=pid)).status_code == 400
        r = await act("create_note", {"body": "x"}, contact_external_id="../../users")
        assert r.status_code == 400 and "contact_external_id" in r.text
        r = await act(
            "create_task",
            {"body": "Send quote", "due": "2024-07-20"},
            contact_external_id=pid,
            agent_external_id="102",
        )
        assert r.status_code == 201, r.text
        task = fake.tasks[int(pid)][-1]
        assert task["frame"] == "specific" and task["owner_id"] == 102
        r = await act("create_task", {"body": "Today"}, agent_external_id="999")
        assert r.status_code == 201
        assert fake.tasks[0][-1]["frame"] == "today" and fake.tasks[0][-1]["owner_id"] == 101
        assert (await act("create_task", {"body": "x", "due": "soon"})).status_code == 400
        # create_contact: an existing email pops that person instead of a duplicate.
        email = fake.live()[pid]["emails"][0]["address"]
        r = await act("create_contact", {"name": "Dup Person", "email": email})
        assert r.status_code == 201 and r.json()["contact_external_id"] == pid
        r = await act(
            "create_contact",
            {"name": "Ana Nova", "email": "ana@new.example", "phone": "(415) 555-0100"},
        )
        assert r.status_code == 201, r.text
        new = r.json()
        assert new["contact_external_type"] == "person"
        assert new["contact_external_url"].endswith(f"/people/{new['contact_external_id']}")
        created = fake.live()[new["contact_external_id"]]
        assert created["phones"][0]["number"] == "+14155550100"
        # 422 and 507 are the contract's 400 with a message; a POST is never repeated.
        fake.fail_next(1, status=500, path_prefix="/notes.xml")
        r = await act("create_note", {"body": "once"}, contact_external_id=pid)
        assert r.status_code == 502 and "may have been applied" in r.text
        assert fake.call_count("POST", "/notes.xml") == 2  # the first note, then once
        r = await act("create_contact", {"name": "Two", "email": "two@new.example"})
        assert r.status_code == 201
        r = await act("create_contact", {"name": "Three", "email": "three@new.example"})
        assert r.status_code == 400 and "plan" in r.json()["message"]
        # A rate-limit 503 was refused before any work: waited out, then done once.
        fake.rate_limit_burst(1)
        r = await act("create_note", {"body": "after a wait"}, contact_external_id=pid)
        assert r.status_code == 201 and b.sleeps and b.sleeps[-1] >= 1
        assert sum(n["body"] == "after a wait" for n in fake.notes[int(pid)]) == 1


async def test_agents_are_the_accounts_users() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    async with bridge(fake, clock) as b:
        r = await b.post("agent_sync", {"auth": auth()})
        assert r.status_code == 200
        agents = r.json()["agents"]
        assert [a["id"] for a in agents] == ["101", "102", "103"]
        assert agents[0] == {"id": "101", "name": "Alex Owner", "email": "alex@acme.example"}
        r = await b.client.get("/highrise/configuration")
        integration = r.json()["integration"]
        assert integration["authentication_type"] == "custom"
        fields = {k: v for f in integration["authentication_configuration"] for k, v in f.items()}
        assert set(fields) == {"account", "api_token"}
        assert fields["account"]["format"] == "https://{{account}}.highrisehq.com"
