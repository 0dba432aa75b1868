"""HubSpot records -> Talkdesk contacts and interactions."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..._models import Contact, Interaction, Priority, Status
from ..._phones import normalize_phone
from .._values import talkdesk_date
from .._values import text as _text
from .client import checked_id

__all__ = [
    "CONTACT_PROPERTIES",
    "INTERACTION_PROPERTIES",
    "KINDS",
    "contact_url",
    "ms_of",
    "record_url",
    "to_contact",
    "to_interaction",
]

CONTACT_PROPERTIES = (
    "firstname",
    "lastname",
    "email",
    "hs_additional_emails",
    "phone",
    "mobilephone",
    "hs_calculated_phone_number",
    "hs_calculated_mobile_number",
    "company",
    "jobtitle",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "website",
    "twitterhandle",
    "lastmodifieddate",
    "hs_object_id",
)
# Talkdesk interaction type -> HubSpot object type, and the properties to name (engagements
# return almost none by default).
KINDS = {
    "call": "calls",
    "note": "notes",
    "email": "emails",
    "meeting": "meetings",
    "ticket": "tickets",
}
INTERACTION_PROPERTIES = {
    "calls": (
        "hs_call_title",
        "hs_call_body",
        "hs_timestamp",
        "hs_call_status",
        "hs_call_direction",
        "hs_call_duration",
        "hs_createdate",
    ),
    "notes": ("hs_note_body", "hs_timestamp", "hs_createdate"),
    "emails": (
        "hs_email_subject",
        "hs_email_text",
        "hs_email_status",
        "hs_email_direction",
        "hs_timestamp",
        "hs_createdate",
    ),
    "meetings": (
        "hs_meeting_title",
        "hs_meeting_body",
        "hs_meeting_start_time",
        "hs_meeting_outcome",
        "hs_timestamp",
        "hs_createdate",
    ),
    "tickets": (
        "subject",
        "content",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_priority",
        "createdate",
        "hs_createdate",
    ),
}
_MAX_VALUES = 50
_MAX_TEXT = 2000
_TAGS = re.compile(r"<[^>]{0,2000}>")
_PRIORITIES: dict[str, Priority] = {
    "LOW": "low",
    "MEDIUM": "normal",
    "HIGH": "high",
    "URGENT": "urgent",
}
_OPEN_CALLS = frozenset({"QUEUED", "RINGING", "IN_PROGRESS", "CONNECTING", "CALLING_CRM_USER"})
_MEETING_OPEN = frozenset({"SCHEDULED", "RESCHEDULED"})


def ms_of(value: object) -> int | None:
    """Epoch milliseconds of a HubSpot datetime (ISO-8601 text, or epoch ms as text)."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if text.isdigit() and len(text) <= 16:
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _plain(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = html.unescape(_TAGS.sub(" ", text))
    text = " ".join(text.split())
    return text[:_MAX_TEXT] or None


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))[:_MAX_VALUES]


def contact_url(ui_domain: str, portal: str, cid: str) -> str:
    return record_url(ui_domain, portal, "0-1", cid)


def record_url(ui_domain: str, portal: str, type_id: str, rid: str) -> str:
    return f"https://{ui_domain}/contacts/{portal}/record/{type_id}/{rid}"


def _phone(calculated: object, typed: object, region: str) -> str | None:
    # HubSpot's E.164 when it parsed the number; else ours; else the number as typed.
    return _text(calculated) or (normalize_phone(t, region) if (t := _text(typed)) else None)


def to_contact(
    record: Mapping[str, Any], *, phone_region: str, link: Callable[[str], str] | None
) -> Contact | None:
    cid = checked_id(record.get("id"))
    if cid is None or record.get("archived") is True:
        return None
    props = record.get("properties")
    p: Mapping[str, Any] = props if isinstance(props, dict) else {}
    additional = _text(p.get("hs_additional_emails")) or ""
    emails = _unique([_text(p.get("email")), *(e.strip() for e in additional.split(";"))])
    phones = _unique(
        [
            _phone(p.get("hs_calculated_phone_number"), p.get("phone"), phone_region),
            _phone(p.get("hs_calculated_mobile_number"), p.get("mobilephone"), phone_region),
        ]
    )
    name = " ".join(filter(None, (_text(p.get("firstname")), _text(p.get("lastname")))))
    street = _text(p.get("address"))
    parts = [street, *(_text(p.get(k)) for k in ("city", "state", "zip", "country"))]
    address = ", ".join(filter(None, parts)) or None
    website = _text(p.get("website"))
    twitter = _text(p.get("twitterhandle"))
    return Contact(
        id=cid,
        name=name or (emails[0] if emails else None) or (phones[0] if phones else cid),
        company=_text(p.get("company")),
        title=_text(p.get("jobtitle")),
        emails=emails,
        phones=phones,
        address=address,
        websites=[website] if website else None,
        twitter=twitter,
        url=link(cid) if link else None,
    )


def _date(ms: int) -> str:
    return talkdesk_date(ms / 1000)


def to_interaction(
    kind: str,
    record: Mapping[str, Any],
    *,
    stages: Mapping[str, str],
    link: Callable[[str, str], str] | None,
) -> tuple[int, Interaction] | None:
    """(sort stamp, interaction) of one HubSpot object of type `kind` (`calls`...); `stages`
    maps ticket stage ids to their `ticketState`."""
    rid = checked_id(record.get("id"))
    props = record.get("properties")
    if rid is None or not isinstance(props, dict):
        return None
    stamp = (
        ms_of(props.get("hs_timestamp"))
        or ms_of(props.get("createdate"))
        or ms_of(props.get("hs_createdate"))
        or ms_of(record.get("createdAt"))
        or 0
    )
    status: Status | None = None
    priority: Priority | None = None
    url = None
    if kind == "calls":
        subject = _plain(props.get("hs_call_title")) or "Call"
        description = _plain(props.get("hs_call_body"))
        call_status = str(props.get("hs_call_status") or "").upper()
        if call_status:
            status = "open" if call_status in _OPEN_CALLS else "closed"
        type_ = "call"
    elif kind == "notes":
        body = _plain(props.get("hs_note_body"))
        subject = (body or "Note")[:80]
        description = body
        type_ = "note"
    elif kind == "emails":
        subject = _plain(props.get("hs_email_subject")) or "Email"
        description = _plain(props.get("hs_email_text"))
        type_ = "email"
    elif kind == "meetings":
        subject = _plain(props.get("hs_meeting_title")) or "Meeting"
        description = _plain(props.get("hs_meeting_body"))
        stamp = ms_of(props.get("hs_meeting_start_time")) or stamp
        outcome = str(props.get("hs_meeting_outcome") or "").upper()
        if outcome:
            status = "open" if outcome in _MEETING_OPEN else "closed"
        type_ = "meeting"
    elif kind == "tickets":
        subject = _plain(props.get("subject")) or f"Ticket {rid}"
        description = _plain(props.get("content"))
        state = stages.get(str(props.get("hs_pipeline_stage") or ""))
        status = "closed" if state == "CLOSED" else "open" if state == "OPEN" else None
        priority = _PRIORITIES.get(str(props.get("hs_ticket_priority") or "").upper())
        if link is not None:
            url = link("0-5", rid)
        type_ = "ticket"
    else:
        return None
    return stamp, Interaction(
        id=rid,
        subject=subject,
        date=_date(stamp),
        type=type_,
        description=description,
        url=url,
        priority=priority,
        status=status,
    )
