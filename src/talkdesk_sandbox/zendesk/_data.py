"""Zendesk's objects as the sandbox keeps them, and how they render on the wire.

Users live in a ``VersionedStore`` keyed by their id (decimal string), sorted by their
whole-second ``updated_at``: the export and search read its lagged, visible view; ``GET
/users/{id}`` reads the live one. Identities ride inside the user record, so an identity edit
is a new version of its user (and bumps ``updated_at``: unconfirmed for Zendesk, and the
harder case for a connector).
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "WITHHELD",
    "decode_cursor",
    "encode_cursor",
    "iso",
    "render_identities",
    "render_ticket",
    "render_user",
]

# The export never shows the last minute of changes.
WITHHELD = 60


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(math.floor(stamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_cursor(updated_at: float, user_id: str, issued: float) -> str:
    raw = orjson.dumps([updated_at, user_id, int(issued)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, str, float] | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        t, uid, issued = orjson.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(t, int | float) or not isinstance(uid, str) or not isinstance(issued, int):
        return None
    return float(t), uid, float(issued)


def render_user(user: dict[str, Any], base: str) -> dict[str, Any]:
    uid = user["id"]
    return {
        "id": int(uid),
        "url": f"{base}/api/v2/users/{uid}.json",
        "name": user["name"],
        "email": user.get("email"),
        "phone": user.get("phone"),
        "shared_phone_number": user.get("shared_phone_number", False),
        "external_id": user.get("external_id"),
        "role": user["role"],
        "role_type": None,
        "custom_role_id": None,
        "active": user.get("active", True),
        "suspended": user.get("suspended", False),
        "verified": True,
        "organization_id": user.get("organization_id"),
        "tags": [],
        "user_fields": dict(user.get("user_fields") or {}),
        "photo": (
            {"content_url": user["photo"], "content_type": "image/png"}
            if user.get("photo")
            else None
        ),
        "time_zone": "UTC",
        "created_at": iso(user["created_at"]),
        "updated_at": iso(user["updated_at"]),
    }


def render_identities(user: dict[str, Any]) -> list[dict[str, Any]]:
    """A user's identities: every email, and every phone but a shared one."""
    out: list[dict[str, Any]] = []
    stamp = iso(user["updated_at"])
    for n, (kind, value) in enumerate(user.get("identities", ())):
        out.append(
            {
                "id": int(user["id"]) * 100 + n,
                "user_id": int(user["id"]),
                "type": kind,
                "value": value,
                "verified": True,
                "primary": n == 0 or value in (user.get("email"), user.get("phone")),
                "created_at": iso(user["created_at"]),
                "updated_at": stamp,
            }
        )
    return out


def render_ticket(ticket: dict[str, Any], base: str) -> dict[str, Any]:
    tid = ticket["id"]
    return {
        "id": tid,
        "url": f"{base}/api/v2/tickets/{tid}.json",
        "subject": ticket["subject"],
        "description": ticket["comments"][0]["body"] if ticket["comments"] else "",
        "status": ticket["status"],
        "custom_status_id": ticket.get("custom_status_id"),
        "priority": ticket.get("priority"),
        "type": None,
        "requester_id": ticket["requester_id"],
        "assignee_id": ticket.get("assignee_id"),
        "tags": [],
        "via": {"channel": ticket.get("channel", "api")},
        "custom_fields": [],
        "created_at": iso(ticket["created_at"]),
        "updated_at": iso(ticket["updated_at"]),
    }
