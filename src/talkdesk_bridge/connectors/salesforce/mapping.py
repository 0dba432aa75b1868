"""Salesforce records to Talkdesk contacts and interactions.

Picklists are read as API values, which orgs customise: statuses are mapped by `IsClosed` first
and by well-known words next, so a custom "Waiting for customer" still reads as pending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..._models import Contact, Interaction, Priority, Status
from ..._phones import normalize_phones
from .._values import talkdesk_date
from .._values import text as _text
from .client import checked_id
from .soql import parse_datetime

__all__ = [
    "CONTACT_FIELDS",
    "LEAD_FIELDS",
    "format_address",
    "interaction_of",
    "priority_of",
    "status_of",
    "to_contact",
]

CONTACT_FIELDS = (
    "Id, Name, Email, Phone, MobilePhone, HomePhone, OtherPhone, Title, Account.Name, "
    "MailingAddress, SystemModstamp"
)
LEAD_FIELDS = "Id, Name, Email, Phone, MobilePhone, Title, Company, Address, SystemModstamp"
_PHONE_FIELDS = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")
_PENDING_WORDS = ("wait", "defer", "escalat", "hold", "pending")
_PRIORITIES: dict[str, Priority] = {
    "low": "low",
    "normal": "normal",
    "medium": "normal",
    "high": "high",
    "critical": "urgent",
    "urgent": "urgent",
}


def format_address(value: Any) -> str | None:
    """A compound address as one line: street, city, state postal code, country."""
    if not isinstance(value, Mapping):
        return None
    street = _text(value.get("street"))
    city = _text(value.get("city"))
    state = _text(value.get("state")) or _text(value.get("stateCode"))
    postal = _text(value.get("postalCode"))
    country = _text(value.get("country")) or _text(value.get("countryCode"))
    region = " ".join(p for p in (state, postal) if p) or None
    parts = [street.replace("\n", ", ") if street else None, city, region, country]
    line = ", ".join(p for p in parts if p)
    return line or None


def to_contact(
    record: Mapping[str, Any], *, region: str, url: Callable[[str, str], str]
) -> Contact | None:
    """A Contact or Lead row as a Talkdesk contact (None: not a usable row)."""
    rid = checked_id(record.get("Id"), "contact", "lead")
    if rid is None:
        return None
    kind = "Lead" if rid.startswith("00Q") else "Contact"
    if kind == "Contact":
        account = record.get("Account")
        company = _text(account.get("Name")) if isinstance(account, Mapping) else None
        address = format_address(record.get("MailingAddress"))
    else:
        company = _text(record.get("Company"))
        address = format_address(record.get("Address"))
    email = _text(record.get("Email"))
    phones = normalize_phones((_text(record.get(f)) for f in _PHONE_FIELDS), region)
    name = _text(record.get("Name")) or email or (phones[0] if phones else None) or rid
    return Contact(
        id=rid,
        name=name,
        company=company,
        title=_text(record.get("Title")),
        emails=[email] if email else [],
        phones=phones,
        address=address,
        url=url(kind, rid),
    )


def status_of(record: Mapping[str, Any]) -> Status | None:
    value = _text(record.get("Status"))
    if record.get("IsClosed") is True:
        return "closed"
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("new", "not started"):
        return "new"
    if any(word in lowered for word in _PENDING_WORDS):
        return "pending"
    if lowered in ("closed", "completed", "resolved", "solved"):
        return "closed"  # a closed value the record's IsClosed did not say (not selected)
    return "open"


def priority_of(record: Mapping[str, Any]) -> Priority:
    value = _text(record.get("Priority"))
    if value is None:
        return "none"
    return _PRIORITIES.get(value.lower(), "normal")


def _date(seconds: int) -> str:
    return talkdesk_date(seconds)


def interaction_of(
    kind: str, record: Mapping[str, Any], *, url: Callable[[str, str], str]
) -> tuple[int, Interaction] | None:
    """(sort stamp, interaction) of a Task, Event or Case row."""
    rid = checked_id(record.get("Id"))
    if rid is None:
        return None
    if kind == "event":
        stamp = parse_datetime(record.get("StartDateTime")) or parse_datetime(
            record.get("CreatedDate")
        )
        sobject, status, priority = "Event", None, None
    else:
        stamp = parse_datetime(record.get("CreatedDate"))
        sobject = "Task" if kind == "task" else "Case"
        status, priority = status_of(record), priority_of(record)
    if stamp is None:
        return None
    subject = _text(record.get("Subject"))
    if kind == "case" and (number := _text(record.get("CaseNumber"))):
        subject = f"Case {number}: {subject}" if subject else f"Case {number}"
    description = _text(record.get("Description"))
    return stamp, Interaction(
        id=rid,
        subject=subject or f"({sobject} without subject)",
        date=_date(stamp),
        type=kind,
        description=description[:1000] if description else None,
        url=url(sobject, rid),
        priority=priority,
        status=status,
    )
