"""Google People API persons -> Talkdesk contacts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..._models import Contact
from ..._phones import normalize_phone
from .._values import text as _text

__all__ = [
    "PERSON_FIELDS",
    "contact_url",
    "is_deleted",
    "resource_name",
    "to_contact",
]

# `metadata` carries the deleted flag and previous resource names: without it a sync never
# sees deletions.
PERSON_FIELDS = "names,emailAddresses,phoneNumbers,organizations,photos,addresses,urls,metadata"
_RESOURCE = re.compile(r"people/c?[0-9]{1,25}", re.ASCII)
_WEB = "https://contacts.google.com/person/"
_MAX_VALUES = 50


def resource_name(value: object) -> str | None:
    """A well-formed contact resource name (`people/c123…`, profiles `people/123…`)."""
    return value if isinstance(value, str) and _RESOURCE.fullmatch(value) else None


def contact_url(resource: str) -> str:
    """The contact's page in Google Contacts (a convention: the name without `people/`)."""
    return _WEB + resource.removeprefix("people/")


def is_deleted(person: Mapping[str, Any]) -> bool:
    metadata = person.get("metadata")
    return isinstance(metadata, dict) and metadata.get("deleted") is True


def _items(person: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """A field's items, the primary one first (Google returns them unordered)."""
    value = person.get(key)
    items = [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []
    return sorted(items, key=lambda i: not (i.get("metadata") or {}).get("primary", False))


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))[:_MAX_VALUES]


def _phone(item: Mapping[str, Any], region: str) -> str | None:
    # Google's E.164 when it parsed the number; else ours; else the number as typed.
    canonical = _text(item.get("canonicalForm"))
    if canonical is not None:
        return canonical
    typed = _text(item.get("value"))
    return normalize_phone(typed, region) if typed else None


def to_contact(person: Mapping[str, Any], *, phone_region: str) -> Contact | None:
    """The contact, or None for a deleted stub or a person without a usable resource name."""
    resource = resource_name(person.get("resourceName"))
    if resource is None or is_deleted(person):
        return None
    emails = _unique(_text(e.get("value")) for e in _items(person, "emailAddresses"))
    phones = _unique(_phone(p, phone_region) for p in _items(person, "phoneNumbers"))
    names = _items(person, "names")
    display = None
    if names:
        first = names[0]
        display = (
            _text(first.get("displayName"))
            or _text(
                " ".join(
                    filter(None, (_text(first.get("givenName")), _text(first.get("familyName"))))
                )
            )
            or _text(first.get("unstructuredName"))
        )
    organizations = _items(person, "organizations")
    org = organizations[0] if organizations else {}
    photo = next(
        (
            url
            for p in _items(person, "photos")
            if not p.get("default") and (url := _text(p.get("url")))
        ),
        None,
    )
    addresses = _items(person, "addresses")
    address = None
    if addresses:
        first_address = addresses[0]
        address = _text(first_address.get("formattedValue")) or _text(
            ", ".join(
                filter(
                    None,
                    (
                        _text(first_address.get(k))
                        for k in ("streetAddress", "city", "region", "postalCode", "country")
                    ),
                )
            )
        )
    websites = _unique(_text(u.get("value")) for u in _items(person, "urls"))
    return Contact(
        id=resource,
        name=display or (emails[0] if emails else None) or (phones[0] if phones else resource),
        company=_text(org.get("name")),
        title=_text(org.get("title")),
        emails=emails,
        phones=phones,
        photo_url=photo,
        address=address,
        websites=websites or None,
        url=contact_url(resource),
    )
