"""Highrise people, notes, emails, tasks and users as Talkdesk contacts, interactions, agents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ..._models import Agent, Contact, Interaction
from ..._phones import normalize_phone
from .._values import talkdesk_date
from .._values import text as _text
from .client import checked_id
from .xml import many

__all__ = [
    "epoch",
    "person_id",
    "recording_interaction",
    "task_interaction",
    "to_agent",
    "to_contact",
]

_PREVIEW = 500


def epoch(value: object) -> int | None:
    """Whole UTC seconds of a Highrise datetime (`2007-03-10T15:11:52Z`), or None."""
    text = _text(value)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def _iso(value: object) -> str | None:
    seconds = epoch(value)
    if seconds is None:
        return None
    return talkdesk_date(seconds)


def person_id(person: Mapping[str, Any]) -> str | None:
    return checked_id(person.get("id"))


def _address(data: Mapping[str, Any]) -> str | None:
    for address in many(data.get("addresses"), "address"):
        street, city, state, zip_, country = (
            _text(address.get(k)) for k in ("street", "city", "state", "zip", "country")
        )
        region = " ".join(p for p in (state, zip_) if p)
        parts = [p for p in (street, city, region, country) if p]
        if parts:
            return ", ".join(parts)
    return None


def to_contact(person: Mapping[str, Any], *, web: str, phone_region: str) -> Contact | None:
    pid = person_id(person)
    if pid is None:
        return None
    data = person.get("contact_data")
    data = data if isinstance(data, Mapping) else {}
    emails: list[str] = []
    for item in many(data.get("email_addresses"), "email_address"):
        address = _text(item.get("address"))
        if address and address not in emails:
            emails.append(address)
    phones: list[str] = []
    for item in many(data.get("phone_numbers"), "phone_number"):
        number = _text(item.get("number"))
        if number and (e164 := normalize_phone(number, phone_region)) not in phones:
            phones.append(e164)
    websites = [
        url
        for item in many(data.get("web_addresses"), "web_address")
        if (url := _text(item.get("url")))
    ]
    twitter = next(
        (
            name.lstrip("@")
            for item in many(data.get("twitter_accounts"), "twitter_account")
            if (name := _text(item.get("username")))
        ),
        None,
    )
    full = " ".join(
        p for p in (_text(person.get("first_name")), _text(person.get("last_name"))) if p
    )
    company = _text(person.get("company_name"))
    name = full or company or (emails[0] if emails else None) or (phones[0] if phones else None)
    return Contact(
        id=pid,
        name=name or f"Highrise person {pid}",
        company=company,
        title=_text(person.get("title")),
        emails=emails,
        phones=phones,
        photo_url=_text(person.get("avatar_url")),
        address=_address(data),
        websites=websites or None,
        twitter=twitter,
        url=f"{web}/people/{pid}",
    )


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"


def recording_interaction(
    item: Mapping[str, Any], kind: str, *, web: str, person: str
) -> tuple[int, Interaction] | None:
    """(created, interaction) of a note or an email; None when unusable."""
    rid = checked_id(item.get("id"))
    created = epoch(item.get("created_at"))
    if rid is None or created is None:
        return None
    raw = item.get("body")
    body = raw if isinstance(raw, str) else ""
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    subject = (_text(item.get("title")) if kind == "email" else None) or first or kind.title()
    return created, Interaction(
        id=f"{kind}-{rid}",
        type=kind,
        subject=subject[:250],
        description=_preview(body) or None,
        date=_iso(item.get("created_at")) or "",
        url=f"{web}/people/{person}",
    )


def task_interaction(
    item: Mapping[str, Any], *, web: str, person: str
) -> tuple[int, Interaction] | None:
    rid = checked_id(item.get("id"))
    when = item.get("due_at") or item.get("created_at")
    stamp = epoch(when)
    if rid is None or stamp is None:
        return None
    body = _text(item.get("body")) or "Task"
    return stamp, Interaction(
        id=f"task-{rid}",
        type="task",
        subject=body.splitlines()[0][:250],
        description=_preview(body),
        date=_iso(when) or "",
        status="closed" if _text(item.get("done_at")) else "open",
        url=f"{web}/people/{person}",
    )


def to_agent(user: Mapping[str, Any]) -> Agent | None:
    uid = checked_id(user.get("id"))
    if uid is None:
        return None
    email = _text(user.get("email_address")) or ""
    return Agent(id=uid, name=_text(user.get("name")) or email or uid, email=email)
