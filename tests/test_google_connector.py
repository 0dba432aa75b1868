"""The Google connector's auth, errors, mapping, configuration and create_contact action."""

from __future__ import annotations

from typing import Any

import pytest

from talkdesk_bridge.connectors.google.mapping import to_contact
from talkdesk_sandbox._clock import ManualClock
from tests.test_google_support import T0, TOKEN, auth, bridge, run_sync, sandbox


async def test_auth_validation_proves_the_contacts_grant_without_a_full_sync() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock)
    fake.add_token("ya29.profile-only", {"userinfo.email"})
    async with bridge(fake, clock) as b:
        r = await b.post("auth_validation", {"auth": auth()})
        assert r.status_code == 200 and r.json() == {}
        assert fake.full_sync_quota.peek(fake.account).remaining == fake.full_sync_quota.limit
        r = await b.post("auth_validation", {"auth": auth("ya29.revoked")})
        assert r.status_code == 401
        r = await b.post("auth_validation", {"auth": auth("ya29.profile-only")})
        assert r.status_code == 403
        assert "https://www.googleapis.com/auth/contacts.readonly" in r.json()["error"]["message"]
        for bad in ("", "tok en", "t\u00e9", "x" * 5000, 12):
            r = await b.post("auth_validation", {"auth": {"access_token": bad}})
            assert r.status_code == 401 and "auth.access_token" in r.text
            assert str(bad) not in r.text or bad == ""
        # An upstream 401 is a 401 from contact sync too (Talkdesk refreshes the token).
        r = await b.post("contact_sync", {"auth": auth("ya29.expired"), "meta": {}})
        assert r.status_code == 401 and "ya29.expired" not in r.text


async def test_configuration_announces_oauth_contacts_and_the_action_only() -> None:
    clock = ManualClock(T0)
    async with bridge(sandbox(clock), clock) as b:
        r = await b.client.get("/google/configuration")
        assert r.status_code == 200
        integration = r.json()["integration"]
        assert integration["authentication_type"] == "oauth2"
        assert "contact_synchronization_endpoint" in integration
        assert "interaction_retrieval_endpoint" not in integration
        assert "agent_synchronization_endpoint" not in integration
        assert [a["name"] for a in r.json()["actions"]] == ["create_contact"]
        for path in ("interaction_update", "agent_sync"):
            assert (await b.post(path, {"auth": auth()})).status_code == 404


def test_mapping_prefers_canonical_phones_and_skips_placeholders() -> None:
    person: dict[str, Any] = {
        "resourceName": "people/c2638222672945904267",
        "names": [{"displayName": "Ada Lovelace", "metadata": {"primary": True}}],
        "emailAddresses": [
            {"value": "b@example.com"},
            {"value": "a@example.com", "metadata": {"primary": True}},
        ],
        "phoneNumbers": [
            {"value": "(415) 555-0100", "canonicalForm": "+14155550100"},
            {"value": "020 7946 0123"},
            {"value": "ask for Ada"},
        ],
        "organizations": [{"name": "Acme", "title": "CTO", "metadata": {"primary": True}}],
        "photos": [{"url": "https://lh3.example/placeholder", "default": True}],
        "addresses": [{"city": "London", "country": "UK"}],
        "urls": [{"value": "https://ada.example.com"}],
    }
    contact = to_contact(person, phone_region="GB")
    assert contact is not None
    assert contact.emails == ["a@example.com", "b@example.com"]
    assert contact.phones == ["+14155550100", "+442079460123", "ask for Ada"]
    assert (contact.company, contact.title, contact.photo_url) == ("Acme", "CTO", None)
    assert contact.address == "London, UK" and contact.websites == ["https://ada.example.com"]
    assert contact.url == "https://contacts.google.com/person/c2638222672945904267"
    only_phone = {"resourceName": "people/c1", "phoneNumbers": [{"value": "+351912345678"}]}
    unnamed = to_contact(only_phone, phone_region="US")
    assert unnamed is not None and unnamed.name == "+351912345678"
    assert (
        to_contact({"resourceName": "people/c1", "metadata": {"deleted": True}}, phone_region="US")
        is None
    )
    assert to_contact({"resourceName": "../admin"}, phone_region="US") is None


async def test_create_contact_pops_a_known_caller_and_never_duplicates_a_retry() -> None:
    clock = ManualClock(T0)
    fake = sandbox(clock, lag=300, write_seconds=0.01)
    fake.seed(contacts=20)
    known = next(iter(fake.live().values()))
    known_email = known["emailAddresses"][0]["value"]
    async with bridge(fake, clock) as b:
        body = {
            "auth": auth(),
            "meta": {},
            "data": {"name": "Ana Novak", "phone": "+1 415 555 0199"},
        }
        r = await b.post("actions/create_contact", body)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["contact_external_id"].startswith("people/c")
        assert created["contact_external_url"].startswith("https://contacts.google.com/person/c")
        assert created["contact_external_type"] == "contact"
        # A retry, while search does not show the new contact yet: the same contact.
        again = await b.post("actions/create_contact", body)
        assert again.status_code == 201
        assert again.json()["contact_external_id"] == created["contact_external_id"]
        # A known caller by email (search needs its warm-up first): popped, not duplicated.
        r = await b.post("actions/create_contact", {"auth": auth(), "data": {
            "name": "Someone", "email": known_email.upper()}})  # fmt: skip
        assert r.status_code == 201 and r.json()["contact_external_id"] == known["resourceName"]
        assert len(fake.live()) == 21
        # Concurrent creates for one user are serialized (Google refuses overlapping writes).
        import asyncio

        answers = await asyncio.gather(*(
            b.post("actions/create_contact", {"auth": auth(), "data": {"name": f"P {n}"}})
            for n in range(3)))  # fmt: skip
        assert [a.status_code for a in answers] == [201, 201, 201]
        assert len(fake.live()) == 24
        # Bad input is the contract's 400 naming the field; a read-only token names the scope.
        r = await b.post("actions/create_contact", {"auth": auth(), "data": {"name": ""}})
        assert r.status_code == 400 and "data.name" in r.json()["message"]
        r = await b.post("actions/create_contact", {"auth": auth(), "data": {"name": "X",
                         "email": "not an email"}})  # fmt: skip
        assert r.status_code == 400 and "data.email" in r.json()["message"]
        fake.add_token("ya29.readonly", {"contacts.readonly"})
        r = await b.post("actions/create_contact", {"auth": auth("ya29.readonly"),
                         "data": {"name": "X Y"}})  # fmt: skip
        assert r.status_code == 400
        assert "https://www.googleapis.com/auth/contacts" in r.json()["message"]
        r = await b.post(
            "actions/create_contact", {"auth": auth("ya29.gone"), "data": {"name": "Z"}}
        )
        assert r.status_code == 401
    view: dict[str, dict[str, Any]] = {}
    clock.advance(600)
    async with bridge(fake, clock) as b:
        await run_sync(b, view)
    assert created["contact_external_id"] in view


@pytest.mark.parametrize(
    "meta",
    [
        {"offset": "garbage"},
        {"synchronization_checkpoint": "garbage"},
    ],
)
async def test_forged_tokens_are_422(meta: dict[str, str]) -> None:
    clock = ManualClock(T0)
    async with bridge(sandbox(clock), clock) as b:
        r = await b.post("contact_sync", {"auth": auth(), "meta": meta})
        assert r.status_code == 422 and next(iter(meta)) in r.text
        assert TOKEN not in r.text
