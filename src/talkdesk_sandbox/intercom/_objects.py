"""Wire shapes of Intercom 2.x objects, and the searchable fields of each resource.

Objects are rendered once per write into plain dicts that are never mutated afterwards, so
search results, history versions and HTTP responses can share them without copying.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._search import BOOLEAN, DATE, INTEGER, STRING, TAG, Field, Schema

__all__ = [
    "AVATAR_SHAPES",
    "CONTACT_DEFAULTS",
    "CONTACT_SCHEMA",
    "CONVERSATION_SCHEMA",
    "TICKET_CATEGORIES",
    "TICKET_SCHEMA",
    "TICKET_STATE_CATEGORIES",
    "html_body",
    "render_admin",
    "render_contact",
    "render_conversation",
    "render_ticket",
    "render_ticket_type",
]

AVATAR_SHAPES = ("object", "string", "null")
TICKET_CATEGORIES = ("Customer", "Back-office", "Tracker")
TICKET_STATE_CATEGORIES = ("submitted", "in_progress", "waiting_on_customer", "resolved")
# The vendor's ticket search matches categories by these terms, not by the display names.
_TICKET_CATEGORY_TERMS = {"Customer": "request", "Back-office": "task", "Tracker": "tracker"}

_TIMESTAMPS = (
    "created_at",
    "updated_at",
    "signed_up_at",
    "last_seen_at",
    "last_replied_at",
    "last_contacted_at",
    "last_email_opened_at",
    "last_email_clicked_at",
)

# Internal, flat contact attributes; the public object is derived from them on every write.
CONTACT_DEFAULTS: dict[str, Any] = {
    "role": "user",
    "email": None,
    "phone": None,
    "name": None,
    "external_id": None,
    "avatar": None,  # image URL; its wire shape depends on the contact's avatar_shape
    "owner_id": None,
    "custom_attributes": {},
    "location": {"country": None, "region": None, "city": None},
    "social_profiles": [],
    "company_ids": [],
    "tag_ids": [],
    "note_ids": [],
    "has_hard_bounced": False,
    "marked_email_as_spam": False,
    "unsubscribed_from_emails": False,
    "language_override": None,
    "browser": None,
    "browser_version": None,
    "browser_language": None,
    "os": None,
    **dict.fromkeys(_TIMESTAMPS),
}

_EMBED_LIMIT = 10  # embedded lists show at most 10 ids; total_count/has_more tell the rest


def html_body(text: str) -> str:
    """Plain text comes back wrapped in a paragraph; HTML is kept as sent."""
    if text.lstrip().startswith("<"):
        return text
    return f"<p>{html.escape(text, quote=False)}</p>"


_COLLECTIONS = {"company": "companies", "tag": "tags", "note": "notes"}


def _addressable(kind: str, ids: list[str], url: str) -> dict[str, Any]:
    base = _COLLECTIONS[kind]
    return {
        "type": "list",
        "data": [{"type": kind, "id": i, "url": f"/{base}/{i}"} for i in ids[:_EMBED_LIMIT]],
        "url": url,
        "total_count": len(ids),
        "has_more": len(ids) > _EMBED_LIMIT,
    }


def _avatar(url: str | None, shape: str) -> Any:
    if shape == "null":
        return None
    if shape == "string":
        return url
    return {"type": "avatar", "image_url": url}


def render_contact(
    contact_id: str, workspace_id: str, attrs: Mapping[str, Any], avatar_shape: str
) -> dict[str, Any]:
    email = attrs["email"]
    location = attrs["location"]
    contact: dict[str, Any] = {
        "type": "contact",
        "id": contact_id,
        "workspace_id": workspace_id,
        "external_id": attrs["external_id"],
        "role": attrs["role"],
        "email": email,
        "email_domain": email.rpartition("@")[2] if email else None,
        "phone": attrs["phone"],
        "name": attrs["name"],
        "owner_id": attrs["owner_id"],
        "has_hard_bounced": attrs["has_hard_bounced"],
        "marked_email_as_spam": attrs["marked_email_as_spam"],
        "unsubscribed_from_emails": attrs["unsubscribed_from_emails"],
    }
    for name in _TIMESTAMPS:
        contact[name] = attrs[name]
    contact.update(
        {
            "language_override": attrs["language_override"],
            "browser": attrs["browser"],
            "browser_version": attrs["browser_version"],
            "browser_language": attrs["browser_language"],
            "os": attrs["os"],
            "android_app_name": None,
            "android_app_version": None,
            "android_device": None,
            "android_os_version": None,
            "android_sdk_version": None,
            "android_last_seen_at": None,
            "ios_app_name": None,
            "ios_app_version": None,
            "ios_device": None,
            "ios_os_version": None,
            "ios_sdk_version": None,
            "ios_last_seen_at": None,
            "custom_attributes": dict(attrs["custom_attributes"]),
            "avatar": _avatar(attrs["avatar"], avatar_shape),
            "tags": _addressable("tag", attrs["tag_ids"], f"/contacts/{contact_id}/tags"),
            "notes": _addressable("note", attrs["note_ids"], f"/contacts/{contact_id}/notes"),
            "companies": _addressable(
                "company", attrs["company_ids"], f"/contacts/{contact_id}/companies"
            ),
            "location": {
                "type": "location",
                "country": location.get("country"),
                "region": location.get("region"),
                "city": location.get("city"),
            },
            "social_profiles": {
                "type": "list",
                "data": [
                    {"type": "social_profile", "name": p["name"], "url": p["url"]}
                    for p in attrs["social_profiles"]
                ],
            },
        }
    )
    return contact


def render_admin(admin: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "admin",
        "id": admin["id"],
        "name": admin["name"],
        "email": admin["email"],
        "job_title": admin.get("job_title"),
        "away_mode_enabled": admin.get("away_mode_enabled", False),
        "away_mode_reassign": admin.get("away_mode_reassign", False),
        "has_inbox_seat": admin.get("has_inbox_seat", True),
        "team_ids": list(admin.get("team_ids", [])),
        "avatar": admin.get("avatar"),
    }


def render_ticket_type(
    ticket_type: Mapping[str, Any], workspace_id: str, states: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    tid = ticket_type["id"]
    attributes = [
        {
            "type": "ticket_type_attribute",
            "id": f"{tid}{n}",
            "workspace_id": workspace_id,
            "name": name,
            "description": description,
            "data_type": "string",
            "input_options": {"multiline": name == "_default_description_"},
            "order": n,
            "required_to_create": False,
            "required_to_create_for_contacts": False,
            "visible_on_create": True,
            "visible_to_contacts": True,
            "default": True,
            "ticket_type_id": int(tid),
            "archived": False,
            "created_at": ticket_type["created_at"],
            "updated_at": ticket_type["updated_at"],
        }
        for n, (name, description) in enumerate(
            (("_default_title_", "Title"), ("_default_description_", "Description"))
        )
    ]
    return {
        "type": "ticket_type",
        "id": tid,
        "category": ticket_type["category"],
        "name": ticket_type["name"],
        "description": ticket_type["description"],
        "icon": ticket_type.get("icon", "\N{TICKET}"),
        "workspace_id": workspace_id,
        "archived": ticket_type["archived"],
        "is_internal": ticket_type["category"] != "Customer",
        "created_at": ticket_type["created_at"],
        "updated_at": ticket_type["updated_at"],
        "ticket_type_attributes": {"type": "list", "data": attributes},
        "ticket_states": {"type": "list", "data": [dict(s) for s in states]},
    }


def _contact_refs(contacts: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    return {
        "type": "contact.list",
        "contacts": [{"type": "contact", "id": cid, "external_id": ext} for cid, ext in contacts],
    }


def render_conversation(c: Mapping[str, Any]) -> dict[str, Any]:
    state = c["state"]
    assignee = c["admin_assignee_id"]
    created = c["created_at"]
    customer_first = c["source"]["delivered_as"] == "customer_initiated"
    return {
        "type": "conversation",
        "id": c["id"],
        "title": c["title"],
        "created_at": created,
        "updated_at": c["updated_at"],
        "waiting_since": c["waiting_since"],
        "snoozed_until": c["snoozed_until"],
        "open": state != "closed",  # a snoozed conversation is still open
        "state": state,
        "read": c["read"],
        "priority": c["priority"],
        "admin_assignee_id": assignee,
        "team_assignee_id": c["team_assignee_id"],
        "tags": {
            "type": "tag.list",
            "tags": [
                {"type": "tag", "id": tid, "name": name, "applied_at": created, "applied_by": None}
                for tid, name in c["tags"]
            ],
        },
        "conversation_rating": None,
        "source": {**c["source"], "attachments": [], "redacted": False},
        "contacts": _contact_refs(c["contacts"]),
        "teammates": {
            "type": "admin.list",
            "admins": [] if assignee is None else [{"type": "admin", "id": str(assignee)}],
        },
        "custom_attributes": dict(c["custom_attributes"]),
        "first_contact_reply": (
            {"created_at": created, "type": "conversation", "url": None} if customer_first else None
        ),
        "sla_applied": None,
        "statistics": {
            "type": "conversation_statistics",
            "time_to_assignment": None if assignee is None else 0,
            "time_to_admin_reply": None,
            "time_to_first_close": None,
            "time_to_last_close": None,
            "median_time_to_reply": None,
            "first_contact_reply_at": created if customer_first else None,
            "first_assignment_at": None if assignee is None else created,
            "first_admin_reply_at": None,
            "first_close_at": c["updated_at"] if state == "closed" else None,
            "last_assignment_at": None if assignee is None else created,
            "last_assignment_admin_reply_at": None,
            "last_contact_reply_at": created if customer_first else None,
            "last_admin_reply_at": None,
            "last_close_at": c["updated_at"] if state == "closed" else None,
            "last_closed_by_id": None,
            "count_reopens": 0,
            "count_assignments": 0 if assignee is None else 1,
            "count_conversation_parts": 1,
        },
        "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
        "ai_agent_participated": False,
    }


def render_ticket(
    t: Mapping[str, Any], ticket_type: Mapping[str, Any], state: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "type": "ticket",
        "id": t["id"],
        "ticket_id": t["ticket_id"],
        "category": ticket_type["category"],
        "ticket_attributes": dict(t["ticket_attributes"]),
        "ticket_state": dict(state),
        "ticket_type": ticket_type,
        "contacts": _contact_refs(t["contacts"]),
        "admin_assignee_id": t["admin_assignee_id"],
        "team_assignee_id": t["team_assignee_id"],
        "created_at": t["created_at"],
        "updated_at": t["updated_at"],
        "open": state["category"] != "resolved",
        "snoozed_until": t["snoozed_until"],
        "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
        "ticket_parts": {"type": "ticket_part.list", "ticket_parts": [], "total_count": 0},
        "is_shared": ticket_type["category"] == "Customer",
    }


# -- searchable fields ----------------------------------------------------------------------


def _path(path: str) -> Field:
    """A getter for a dotted path through nested objects (missing -> None)."""
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return Field(STRING, lambda r: r.get(key))

    def get(r: Mapping[str, Any]) -> Any:
        value: Any = r
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return Field(STRING, get)


def _typed(kind: str, path: str) -> Field:
    return Field(kind, _path(path).get)


def _avatar_url(r: Mapping[str, Any]) -> Any:
    avatar = r.get("avatar")
    return avatar.get("image_url") if isinstance(avatar, Mapping) else avatar


_WORD = re.compile(r"[\w@.+-]+")
_TAG = re.compile(r"<[^>]+>")


def _body_words(r: Mapping[str, Any]) -> list[str]:
    # source.body is matched word by word, not as a whole string.
    return _WORD.findall(_TAG.sub(" ", (r.get("source") or {}).get("body") or ""))


CONTACT_SCHEMA = Schema(
    {
        **{name: _path(name) for name in ("id", "role", "name", "email", "email_domain")},
        **{name: _path(name) for name in ("phone", "external_id", "language_override")},
        **{name: _path(name) for name in ("browser", "browser_language", "os")},
        **{name: _typed(DATE, name) for name in _TIMESTAMPS},
        **{f"location.{n}": _path(f"location.{n}") for n in ("country", "region", "city")},
        **{
            name: _typed(BOOLEAN, name)
            for name in ("has_hard_bounced", "marked_email_as_spam", "unsubscribed_from_emails")
        },
        "owner_id": _typed(INTEGER, "owner_id"),
        "avatar": Field(STRING, _avatar_url),
        "tag_id": Field(TAG, lambda r: [t["id"] for t in r["tags"]["data"]], multi=True),
        "segment_id": Field(TAG, lambda r: [], multi=True),
        "company_id": Field(
            STRING, lambda r: [c["id"] for c in r["companies"]["data"]], multi=True
        ),
    },
    day_granular_dates=True,
)

_CONVERSATION_STRINGS = (
    "id",
    "title",
    "state",
    "priority",
    "source.type",
    "source.id",
    "source.delivered_as",
    "source.subject",
    "source.author.id",
    "source.author.type",
    "source.author.name",
    "source.author.email",
    "source.url",
)

CONVERSATION_SCHEMA = Schema(
    {
        **{name: _path(name) for name in _CONVERSATION_STRINGS},
        **{
            name: _typed(DATE, name)
            for name in ("created_at", "updated_at", "waiting_since", "snoozed_until")
        },
        **{
            f"statistics.{name}": _typed(INTEGER, f"statistics.{name}")
            for name in ("time_to_assignment", "time_to_admin_reply", "count_reopens")
        },
        "admin_assignee_id": _typed(INTEGER, "admin_assignee_id"),
        "team_assignee_id": _typed(INTEGER, "team_assignee_id"),
        "open": _typed(BOOLEAN, "open"),
        "read": _typed(BOOLEAN, "read"),
        "ai_agent_participated": _typed(BOOLEAN, "ai_agent_participated"),
        "source.body": Field(STRING, _body_words, multi=True),
        "contact_ids": Field(
            STRING, lambda r: [c["id"] for c in r["contacts"]["contacts"]], multi=True
        ),
        "teammate_ids": Field(
            STRING, lambda r: [a["id"] for a in r["teammates"]["admins"]], multi=True
        ),
        "tag_ids": Field(STRING, lambda r: [t["id"] for t in r["tags"]["tags"]], multi=True),
    },
    day_granular_dates=False,
)

TICKET_SCHEMA = Schema(
    {
        **{name: _path(name) for name in ("id", "admin_assignee_id", "team_assignee_id")},
        **{name: _typed(DATE, name) for name in ("created_at", "updated_at", "snoozed_until")},
        "title": _path("ticket_attributes._default_title_"),
        "description": _path("ticket_attributes._default_description_"),
        "category": Field(STRING, lambda r: _TICKET_CATEGORY_TERMS.get(r["category"])),
        "ticket_type_id": _path("ticket_type.id"),
        "state": _path("ticket_state.category"),
        "open": _typed(BOOLEAN, "open"),
        "contact_ids": Field(
            STRING, lambda r: [c["id"] for c in r["contacts"]["contacts"]], multi=True
        ),
    },
    day_granular_dates=False,
    custom_prefix=None,
)
