"""Intercom objects -> Talkdesk contacts and interactions (pure functions), and id checks."""

from __future__ import annotations

from typing import Any

import pytest

from talkdesk_bridge.connectors.intercom.client import checked_id
from talkdesk_bridge.connectors.intercom.mapping import (
    conversation_interaction,
    format_date,
    plain_text,
    ticket_interaction,
    ticket_state_category,
    to_contact,
)


def contact(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "contact",
        "id": "6685e6a1f3b9c2d4e5f60718",
        "name": None,
        "email": None,
        "phone": None,
        "avatar": None,
        "location": {"type": "location", "country": None, "region": None, "city": None},
        "social_profiles": {"type": "list", "data": []},
        "custom_attributes": {},
        "companies": {"type": "list", "data": [], "total_count": 0, "has_more": False},
        "updated_at": 1_720_000_000,
    }
    base.update(fields)
    return base


def test_plain_text_strips_tags_and_unescapes_entities() -> None:
    html = (
        "<p>Hello&nbsp;<b>Ana</b> &amp; team,</p><p>it&#39;s &lt;broken&gt;"
        "<br>again</p><script>alert(1)</script><style>p{}</style>"
    )
    assert plain_text(html) == "Hello Ana & team, it's <broken> again"  # nbsp: a space
    assert plain_text("  just   text ") == "just text"
    assert plain_text(None) == "" and plain_text("") == ""
    assert plain_text("<p>unclosed <i>tags") == "unclosed tags"


def test_contact_name_falls_back_to_email_then_phone_then_id() -> None:
    assert to_contact(contact(name="Ana"), phone_region="US").name == "Ana"  # type: ignore[union-attr]
    by_email = to_contact(contact(name="  ", email="ana@example.com"), phone_region="US")
    assert by_email is not None and by_email.name == "ana@example.com"
    by_phone = to_contact(contact(phone="(415) 555-0123"), phone_region="US")
    assert by_phone is not None and by_phone.name == "+14155550123"
    assert by_phone.phones == ["+14155550123"]
    bare = to_contact(contact(), phone_region="US")
    assert bare is not None and bare.name == "6685e6a1f3b9c2d4e5f60718"
    assert to_contact(contact(id=None), phone_region="US") is None


def test_contact_phones_use_the_default_region() -> None:
    lisbon = to_contact(contact(phone="912 345 678"), phone_region="PT")
    assert lisbon is not None and lisbon.phones == ["+351912345678"]


@pytest.mark.parametrize(
    ("avatar", "expected"),
    [
        (
            {"type": "avatar", "image_url": "https://img.example.com/a.png"},
            "https://img.example.com/a.png",
        ),
        ("https://img.example.com/b.png", "https://img.example.com/b.png"),
        (None, None),
        ({"type": "avatar", "image_url": None}, None),
    ],
)
def test_avatar_as_object_string_or_null(avatar: Any, expected: str | None) -> None:
    mapped = to_contact(contact(avatar=avatar), phone_region="US")
    assert mapped is not None and mapped.photo_url == expected


def test_contact_details() -> None:
    raw = contact(
        name="Ana Silva",
        email="ana@example.com",
        location={"country": "Portugal", "region": "Lisbon", "city": "Lisbon"},
        social_profiles={
            "type": "list",
            "data": [
                {"type": "social_profile", "name": "Facebook", "url": "https://facebook.com/ana"},
                {
                    "type": "social_profile",
                    "name": "Twitter",
                    "url": "https://twitter.com/anasilva/",
                },
            ],
        },
        custom_attributes={"job_title": "CTO", "plan": "pro"},
        companies={
            "type": "list",
            "data": [{"type": "company", "id": "c2"}, {"type": "company", "id": "c1"}],
        },
    )
    mapped = to_contact(
        raw,
        phone_region="US",
        url=lambda cid: f"https://app.example.com/{cid}",
        companies={"c1": "Acme", "c2": "Globex"},
    )
    assert mapped is not None
    assert mapped.model_dump(exclude_none=True) == {
        "id": "6685e6a1f3b9c2d4e5f60718",
        "name": "Ana Silva",
        "emails": ["ana@example.com"],
        "phones": [],  # always a list, empty when unknown
        "address": "Lisbon, Portugal",
        "twitter": "anasilva",
        "title": "CTO",
        "company": "Globex",
        "url": "https://app.example.com/6685e6a1f3b9c2d4e5f60718",
    }
    # Odd shapes are left out, not fatal.
    odd = to_contact(
        contact(
            location=None, social_profiles=[{"name": "X", "url": "@ana"}], custom_attributes=[]
        ),
        phone_region="US",
    )
    assert odd is not None and odd.twitter == "ana" and odd.address is None and odd.title is None


def test_ticket_state_as_string_or_object() -> None:
    assert ticket_state_category("in_progress") == "in_progress"
    assert ticket_state_category({"type": "ticket_state", "category": "resolved"}) == "resolved"
    assert ticket_state_category(None) is None and ticket_state_category(3) is None


def test_format_date() -> None:
    assert format_date(1_353_520_431) == ("2012-11-21 17:53:51 UTC", 1_353_520_431)
    assert format_date("1353520431")[0] == "2012-11-21 17:53:51 UTC"


def conversation(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "1001",
        "title": None,
        "created_at": 1_720_000_000,
        "state": "open",
        "priority": "not_priority",
        "source": {"type": "conversation", "subject": "", "body": "<p>Hi</p>"},
    }
    base.update(fields)
    return base


def test_conversation_subject_order_and_statuses() -> None:
    link = "https://app.intercom.com/a/inbox/app/inbox/conversation/{}".format
    titled = conversation_interaction(conversation(title="Refund <b>now</b>"), link=link)
    assert titled is not None and titled[1].subject == "Refund now"
    subject = conversation_interaction(
        conversation(source={"subject": "<p>Invoice &amp; VAT</p>", "body": "<p>x</p>"}), link=None
    )
    assert subject is not None and subject[1].subject == "Invoice & VAT" and subject[1].url is None
    long_body = "<p>" + " ".join(f"word{n}" for n in range(40)) + "</p>"
    words = conversation_interaction(conversation(source={"body": long_body}), link=link)
    assert words is not None
    assert words[1].subject.startswith("word0 word1") and words[1].subject.endswith("…")
    assert "<" not in (words[1].description or "")
    empty = conversation_interaction(conversation(source={"body": None}), link=link)
    assert empty is not None and empty[1].subject == "Conversation 1001"
    assert empty[1].description is None
    for state, status in (("open", "open"), ("snoozed", "pending"), ("closed", "closed")):
        mapped = conversation_interaction(conversation(state=state, priority="priority"), link=link)
        assert mapped is not None
        assert mapped[1].status == status and mapped[1].priority == "high"
        assert mapped[1].url == "https://app.intercom.com/a/inbox/app/inbox/conversation/1001"
    normal = conversation_interaction(conversation(), link=link)
    assert normal is not None and normal[1].priority == "normal" and normal[0] == 1_720_000_000


def test_ticket_interaction() -> None:
    ticket = {
        "id": "2001",
        "ticket_id": "7",
        "created_at": 1_720_000_000,
        "ticket_attributes": {
            "_default_title_": "Login",
            "_default_description_": "<p>It <i>hangs</i></p>",
        },
    }
    for state, status in (
        ("submitted", "new"),
        ("in_progress", "open"),
        ("waiting_on_customer", "pending"),
        ("resolved", "solved"),
    ):
        for shape in (state, {"type": "ticket_state", "category": state}):
            mapped = ticket_interaction({**ticket, "ticket_state": shape}, link=None)
            assert mapped is not None and mapped[1].status == status
            assert mapped[1].subject == "Login" and mapped[1].description == "It hangs"
            assert mapped[1].type == "ticket" and mapped[1].priority is None
    untitled = ticket_interaction({**ticket, "ticket_attributes": {}}, link=None)
    assert untitled is not None and untitled[1].subject == "Ticket #7"


@pytest.mark.parametrize(
    "value",
    [
        "../admins",
        "..%2fadmins",
        "%2e%2e",
        "abc?x=1",
        "abc#frag",
        "user@evil.example",
        "abc\r\nX-Injected: 1",
        "abc\n",
        "ab\u2024cd",  # one dot leader, a look-alike dot
        "\uff16\uff16\uff18\uff15",  # full-width digits
        "",
        " abc",
        "a" * 65,
        "g123",
    ],
)
def test_hostile_ids_are_refused(value: str) -> None:
    assert checked_id("contact", value) is None
    assert checked_id("admin", value) is None
    assert checked_id("ticket_type", value) is None


def test_well_formed_ids_pass() -> None:
    assert checked_id("contact", "6685e6a1f3b9c2d4e5f60718") == "6685e6a1f3b9c2d4e5f60718"
    assert checked_id("admin", "991267001") == "991267001"
    assert checked_id("admin", 991267001) == "991267001"
    assert checked_id("ticket_type", "12") == "12"
    assert checked_id("contact", 5) is None and checked_id("admin", True) is None
