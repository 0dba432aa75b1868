"""Intercom objects as Talkdesk contacts and interactions: pure functions, tolerant parsing.

Intercom's shapes drift between API versions (`avatar` is an object, a URL or null;
`ticket_state` is a string in 2.11 and an object from 2.14), so every field is read
defensively and a missing or odd value is left out rather than failing a whole page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..._models import Contact, Interaction, Priority, Status
from ..._phones import normalize_phones
from .._values import PREVIEW_CHARS, plain_text, shorten, talkdesk_date, text_preview
from .._values import text as _text

__all__ = [
    "TICKET_ID_PREFIX",
    "contact_url",
    "conversation_interaction",
    "format_date",
    "inbox_url",
    "plain_text",
    "text_preview",
    "ticket_interaction",
    "ticket_state_category",
    "to_contact",
    "updated_at",
]

_SUBJECT_WORDS = 12
_SUBJECT_CHARS = 100

_CONVERSATION_STATUS: dict[str, Status] = {
    "open": "open",
    "snoozed": "pending",
    "closed": "closed",
}
_TICKET_STATUS: dict[str, Status] = {
    "submitted": "new",
    "in_progress": "open",
    "waiting_on_customer": "pending",
    "resolved": "solved",
}
_PRIORITY: dict[str, Priority] = {"priority": "high", "not_priority": "normal"}
# Conversation and ticket ids are numeric strings numbered apart (the fake counts each from 1),
# so one answer could hold a conversation "12" and a ticket "12". Conversations keep Intercom's
# id; tickets get this prefix, which no (numeric) conversation id has.
TICKET_ID_PREFIX = "ticket-"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- text ---------------------------------------------------------------------------------------


def _first_words(text: str) -> str:
    words = text.split(" ")
    head = " ".join(words[:_SUBJECT_WORDS])
    head = shorten(head, _SUBJECT_CHARS)
    return head + ("…" if len(words) > _SUBJECT_WORDS and not head.endswith("…") else "")


def format_date(value: Any) -> tuple[str, int]:
    """Talkdesk's date text (`YYYY-MM-DD HH:MM:SS UTC`) of unix seconds, and the seconds."""
    seconds = _int(value) or 0
    return talkdesk_date(seconds), seconds


# --- contacts -----------------------------------------------------------------------------------


def updated_at(contact: Mapping[str, Any]) -> int | None:
    return _int(contact.get("updated_at"))


def _avatar(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return _text(value.get("image_url"))
    return _text(value)


def _address(location: Mapping[str, Any]) -> str | None:
    parts: list[str] = []
    for key in ("city", "region", "country"):
        part = _text(location.get(key))
        if part and part not in parts:  # "Lisbon, Lisbon, Portugal" reads as a mistake
            parts.append(part)
    return ", ".join(parts) or None


def _twitter(profiles: Any) -> str | None:
    data = _dict(profiles).get("data") if isinstance(profiles, Mapping) else profiles
    if not isinstance(data, list):
        return None
    for profile in data:
        if not isinstance(profile, Mapping):
            continue
        name = (_text(profile.get("name")) or "").lower()
        if name not in ("twitter", "x"):
            continue
        url = _text(profile.get("url")) or _text(profile.get("username"))
        if url:
            handle = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lstrip("@")
            if handle:
                return handle
    return None


def _company(companies: Any, names: Mapping[str, str]) -> str | None:
    data = _dict(companies).get("data")
    if not isinstance(data, list) or not names:
        return None
    for ref in data:
        if isinstance(ref, Mapping) and (name := names.get(str(ref.get("id")))):
            return name
    return None


def contact_url(web_host: str, app_id: str, contact_id: str) -> str:
    return f"{web_host}/a/apps/{app_id}/users/{contact_id}"


def inbox_url(web_host: str, app_id: str, conversation_id: str) -> str:
    return f"{web_host}/a/inbox/{app_id}/inbox/conversation/{conversation_id}"


def to_contact(
    contact: Mapping[str, Any],
    *,
    phone_region: str,
    url: Callable[[str], str] | None = None,
    companies: Mapping[str, str] | None = None,
) -> Contact | None:
    """The Talkdesk contact for an Intercom contact; None when it has no usable id."""
    cid = _text(contact.get("id"))
    if cid is None:
        return None
    email = _text(contact.get("email"))
    phones = normalize_phones([_text(contact.get("phone"))], phone_region)
    custom = _dict(contact.get("custom_attributes"))
    name = _text(contact.get("name")) or email or next(iter(phones), None) or cid
    return Contact(
        id=cid,
        name=name,
        emails=[email] if email else [],
        phones=phones,
        photo_url=_avatar(contact.get("avatar")),
        address=_address(_dict(contact.get("location"))),
        twitter=_twitter(contact.get("social_profiles")),
        title=_text(custom.get("job_title")),
        company=_company(contact.get("companies"), companies or {}),
        url=url(cid) if url else None,
    )


# --- interactions -------------------------------------------------------------------------------


def ticket_state_category(value: Any) -> str | None:
    """2.11 sends the state as a string, 2.14+ as an object with a `category`."""
    if isinstance(value, Mapping):
        return _text(value.get("category"))
    return _text(value)


def conversation_interaction(
    conversation: Mapping[str, Any], *, link: Callable[[str], str] | None
) -> tuple[int, Interaction] | None:
    cid = _text(conversation.get("id")) or (
        str(conversation["id"]) if _int(conversation.get("id")) is not None else None
    )
    if cid is None:
        return None
    source = _dict(conversation.get("source"))
    body = plain_text(source.get("body"))
    subject = (
        plain_text(conversation.get("title"))
        or plain_text(source.get("subject"))
        or (_first_words(body) if body else "")
        or f"Conversation {cid}"
    )
    date, seconds = format_date(conversation.get("created_at"))
    return seconds, Interaction(
        id=cid,
        subject=subject,
        description=shorten(body, PREVIEW_CHARS) or None,
        date=date,
        type="conversation",
        url=link(cid) if link else None,
        priority=_PRIORITY.get(str(conversation.get("priority"))),
        status=_CONVERSATION_STATUS.get(str(conversation.get("state"))),
    )


def ticket_interaction(
    ticket: Mapping[str, Any], *, link: Callable[[str], str] | None
) -> tuple[int, Interaction] | None:
    tid = _text(ticket.get("id")) or (
        str(ticket["id"]) if _int(ticket.get("id")) is not None else None
    )
    if tid is None:
        return None
    attributes = _dict(ticket.get("ticket_attributes"))
    description = plain_text(attributes.get("_default_description_"))
    number = _text(ticket.get("ticket_id")) or tid
    subject = (
        plain_text(attributes.get("_default_title_"))
        or (_first_words(description) if description else "")
        or f"Ticket #{number}"
    )
    date, seconds = format_date(ticket.get("created_at"))
    state = ticket_state_category(ticket.get("ticket_state"))
    return seconds, Interaction(
        id=TICKET_ID_PREFIX + tid,
        subject=subject,
        description=shorten(description, PREVIEW_CHARS) or None,
        date=date,
        type="ticket",
        url=link(tid) if link else None,
        priority=_PRIORITY.get(str(ticket.get("priority"))),
        status=_TICKET_STATUS.get(state or ""),
    )
