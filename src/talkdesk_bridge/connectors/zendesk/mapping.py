"""Zendesk users and tickets as Talkdesk contacts and interactions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..._models import Contact, Interaction, Priority, Status
from ..._phones import normalize_phones
from .._values import talkdesk_date, text_preview
from .._values import text as _text
from .client import checked_id

__all__ = [
    "epoch",
    "is_contact",
    "ticket_interaction",
    "ticket_status",
    "to_contact",
    "user_url",
]

_STATUSES: dict[str, Status] = {
    "new": "new",
    "open": "open",
    "pending": "pending",
    "hold": "pending",  # Talkdesk has no "on hold"
    "solved": "solved",
    "closed": "closed",
}
_PRIORITIES: dict[str, Priority] = {
    "low": "low",
    "normal": "normal",
    "high": "high",
    "urgent": "urgent",
}


def epoch(value: Any) -> float | None:
    """Seconds of an ISO 8601 time (Zendesk's `2026-01-02T03:04:05Z`), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def user_url(web: str, user_id: str) -> str:
    return f"{web}/agent/users/{user_id}"


def is_contact(user: Mapping[str, Any]) -> bool:
    """Live end-users only: agents and admins are agents, deleted and suspended users gone."""
    return (
        user.get("role") == "end-user"
        and user.get("active") is not False
        and not user.get("suspended")
    )


def to_contact(
    user: Mapping[str, Any],
    identities: Iterable[Mapping[str, Any]],
    *,
    web: str,
    region: str,
    organizations: Mapping[str, str],
    title_field: str | None = None,
    address_field: str | None = None,
) -> Contact | None:
    user_id = checked_id(user.get("id"))
    if user_id is None or not is_contact(user):
        return None
    emails: dict[str, str] = {}
    raw_phones: list[str | None] = [_text(user.get("phone"))]
    primary = _text(user.get("email"))
    if primary:
        emails[primary.lower()] = primary
    for identity in identities:
        value = _text(identity.get("value"))
        if not value:
            continue
        if identity.get("type") == "email":
            emails.setdefault(value.lower(), value)
        elif identity.get("type") == "phone_number":
            raw_phones.append(value)
    phones = normalize_phones(raw_phones, region)
    fields = user.get("user_fields")
    fields = fields if isinstance(fields, dict) else {}
    photo = user.get("photo")
    photo_url = _text(photo.get("content_url")) if isinstance(photo, dict) else None
    org = checked_id(user.get("organization_id"))
    name = _text(user.get("name")) or primary or (phones[0] if phones else None) or user_id
    return Contact(
        id=user_id,
        name=name,
        emails=list(emails.values()),
        phones=phones,
        company=organizations.get(org) if org else None,
        title=_text(fields.get(title_field)) if title_field else None,
        address=_text(fields.get(address_field)) if address_field else None,
        photo_url=photo_url,
        url=user_url(web, user_id),
    )


def ticket_status(ticket: Mapping[str, Any], categories: Mapping[str, str]) -> Status | None:
    """The ticket's status; a custom status counts as its category."""
    custom = checked_id(ticket.get("custom_status_id"))
    if custom is not None and custom in categories:
        return _STATUSES.get(categories[custom])
    status = ticket.get("status")
    return _STATUSES.get(status) if isinstance(status, str) else None


def ticket_interaction(
    ticket: Mapping[str, Any], *, web: str, categories: Mapping[str, str] | None = None
) -> tuple[float, Interaction] | None:
    ticket_id = checked_id(ticket.get("id"))
    if ticket_id is None:
        return None
    created = epoch(ticket.get("created_at")) or 0.0
    updated = epoch(ticket.get("updated_at")) or created
    priority = ticket.get("priority")
    return updated, Interaction(
        id=ticket_id,
        type="ticket",
        subject=_text(ticket.get("subject")) or f"Ticket #{ticket_id}",
        description=text_preview(ticket.get("description")),
        date=talkdesk_date(created),
        url=f"{web}/agent/tickets/{ticket_id}",
        status=ticket_status(ticket, categories or {}),
        priority=_PRIORITIES.get(priority, "none") if isinstance(priority, str) else "none",
    )
