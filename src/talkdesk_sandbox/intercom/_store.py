"""In-memory state of the fake workspace: contacts, conversations, tickets, ticket types,
admins, notes, and the clock everything is stamped with.

Contacts live in the kit's ``VersionedStore``: search over them is eventually consistent (a
version reaches the search index ``search_lag`` seconds after its write), while direct reads
(``get_contact``, the list endpoint) see live state. Everything else is searchable at once.
"""

from __future__ import annotations

import gc
import random
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .._clock import Clock
from .._index import Key, Page, Query
from .._store import VersionedStore
from ._objects import (
    AVATAR_SHAPES,
    CONTACT_DEFAULTS,
    CONTACT_SCHEMA,
    CONVERSATION_SCHEMA,
    TICKET_CATEGORIES,
    TICKET_SCHEMA,
    TICKET_STATE_CATEGORIES,
    html_body,
    render_admin,
    render_contact,
    render_conversation,
    render_ticket,
    render_ticket_type,
)
from ._search import DayCalendar, SearchIndex
from ._seed import ContactFaker

__all__ = ["Store"]

_T = TypeVar("_T")
SearchPage = Page[dict[str, Any]]

_STATE_LABELS = {
    "submitted": ("Submitted", "Submitted"),
    "in_progress": ("With support team", "In progress"),
    "waiting_on_customer": ("Waiting on customer", "Waiting on you"),
    "resolved": ("Resolved", "Resolved"),
}
_CONVERSATION_FIELDS = frozenset(
    {
        "title",
        "state",
        "read",
        "priority",
        "admin_assignee_id",
        "team_assignee_id",
        "waiting_since",
        "snoozed_until",
        "custom_attributes",
        "tags",
        "created_at",
        "updated_at",
    }
)
_ADMIN_FIELDS = frozenset(
    {"id", "job_title", "away_mode_enabled", "away_mode_reassign", "has_inbox_seat", "team_ids"}
    | {"avatar"}
)
_TICKET_FIELDS = frozenset(
    {
        "state",
        "title",
        "description",
        "ticket_attributes",
        "admin_assignee_id",
        "team_assignee_id",
        "snoozed_until",
        "created_at",
        "updated_at",
        "ticket_state_format",
    }
)


@dataclass(slots=True)
class _Contact:
    """A live contact's internal attributes; its public object is in ``Store.contacts``."""

    attrs: dict[str, Any]
    avatar_shape: str


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Bulk seeding allocates ~50 objects per contact; collections would double its time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _clone(value: _T) -> _T:
    """Copy JSON-like data (tuples become lists); much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return cast(_T, {k: _clone(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return cast(_T, [_clone(v) for v in value])
    return value


def _check_fields(given: Iterable[str], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(f"unknown {what} field(s): {', '.join(unknown)}")


class Store:
    """All mutable state. Every public method takes ``lock``, so the control API can be used
    from a test thread while a uvicorn thread serves requests."""

    def __init__(
        self,
        *,
        app_id: str,
        timezone: str,
        clock: Clock,
        search_lag: float,
        seed: int,
    ) -> None:
        self.lock = threading.RLock()
        self.app_id = app_id
        self.clock = clock
        self.calendar = DayCalendar(timezone)
        self.rng = random.Random(seed)
        self.faker = ContactFaker(seed)
        # contacts: public objects with history and lagged search, plus internal attributes
        self.contact_index = SearchIndex(CONTACT_SCHEMA)
        self.contacts: VersionedStore[dict[str, Any]] = VersionedStore(
            clock, lag=search_lag, index=self.contact_index, lock=self.lock
        )
        self._contacts: dict[str, _Contact] = {}
        self._email_owner: dict[str, str] = {}
        self._external_owner: dict[str, str] = {}
        # everything else is searchable immediately
        self._conversations: dict[str, dict[str, Any]] = {}
        self.conversation_index = SearchIndex(CONVERSATION_SCHEMA)
        self._tickets: dict[str, dict[str, Any]] = {}
        self._ticket_formats: dict[str, str] = {}
        self.ticket_index = SearchIndex(TICKET_SCHEMA)
        self._ticket_types: dict[str, dict[str, Any]] = {}
        self._admins: dict[str, dict[str, Any]] = {}
        self._notes: dict[str, dict[str, Any]] = {}
        self._companies: dict[str, dict[str, Any]] = {}
        # Numeric-string ids per resource, offset so different kinds never look alike.
        self._counters = {
            "conversation": 100_000,
            "message": 5_000_000,
            "ticket": 2_000,
            "ticket_number": 0,
            "ticket_type": 0,
            "note": 3_000_000,
            "admin": 991_267_000,
        }
        created = int(clock())
        self.states = {
            category: {
                "type": "ticket_state",
                "id": str(8_570 + n),
                "category": category,
                "internal_label": _STATE_LABELS[category][0],
                "external_label": _STATE_LABELS[category][1],
            }
            for n, category in enumerate(TICKET_STATE_CATEGORIES)
        }
        self.me_id: str = self.add_admin(
            name="Ada Lovelace", email=f"ada@{app_id}.example.com", job_title="Support lead"
        )["id"]
        self.app_created_at = created - 3 * 365 * 86_400

    # -- clock and ids --------------------------------------------------------------------

    def now(self) -> float:
        return float(self.clock())

    def _next(self, counter: str) -> str:
        self._counters[counter] += 1
        return str(self._counters[counter])

    def _new_contact_id(self) -> str:
        while True:
            # Shaped like the vendor's ObjectId-style ids: 8 hex of time + 16 random hex.
            cid = f"{int(self.now()) & 0xFFFFFFFF:08x}{self.rng.getrandbits(64):016x}"
            if not self.contacts.known(cid):
                return cid

    # -- contacts -------------------------------------------------------------------------

    @property
    def search_lag(self) -> float:
        return self.contacts.lag

    @search_lag.setter
    def search_lag(self, seconds: float) -> None:
        self.contacts.lag = seconds

    def sync_search(self) -> None:
        """Move versions whose lag has elapsed into the searchable index."""
        self.contacts.sync()

    def _contact_attrs(
        self, fields: Mapping[str, Any], now: int, *, trusted: bool = False
    ) -> dict[str, Any]:
        _check_fields(fields, CONTACT_DEFAULTS, "contact")
        # Shallow copies suffice: nested attribute values are replaced on write, never mutated.
        attrs = dict(CONTACT_DEFAULTS)
        attrs.update(fields if trusted else {k: _clone(v) for k, v in fields.items()})
        if attrs["role"] not in ("user", "lead"):
            raise ValueError("role must be 'user' or 'lead'")
        attrs["location"] = {**CONTACT_DEFAULTS["location"], **attrs["location"]}
        attrs["created_at"] = int(attrs["created_at"] if attrs["created_at"] is not None else now)
        if attrs["updated_at"] is None:
            attrs["updated_at"] = attrs["created_at"]
        if attrs["signed_up_at"] is None and attrs["role"] == "user":
            attrs["signed_up_at"] = attrs["created_at"]
        if attrs["last_seen_at"] is None:
            attrs["last_seen_at"] = attrs["updated_at"]
        return attrs

    def _claim_identity(self, cid: str, attrs: Mapping[str, Any]) -> None:
        if attrs["email"]:
            self._email_owner.setdefault(attrs["email"].lower(), cid)
        if attrs["external_id"]:
            self._external_owner.setdefault(str(attrs["external_id"]), cid)

    def _release_identity(self, cid: str, attrs: Mapping[str, Any]) -> None:
        if attrs["email"] and self._email_owner.get(attrs["email"].lower()) == cid:
            del self._email_owner[attrs["email"].lower()]
        ext = attrs["external_id"]
        if ext and self._external_owner.get(str(ext)) == cid:
            del self._external_owner[str(ext)]

    def _prepare_contact(
        self, fields: dict[str, Any], *, trusted: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """A new contact's id and public object; its internal state is kept."""
        cid = fields.pop("id", None) or self._new_contact_id()
        if cid in self._contacts:
            raise ValueError(f"contact {cid} already exists")
        shape = fields.pop("avatar_shape", "object")
        if shape not in AVATAR_SHAPES:
            raise ValueError(f"avatar_shape must be one of {AVATAR_SHAPES}")
        attrs = self._contact_attrs(fields, int(self.now()), trusted=trusted)
        self._contacts[cid] = _Contact(attrs, shape)
        self._claim_identity(cid, attrs)
        return cid, render_contact(cid, self.app_id, attrs, shape)

    def add_contact(self, *, index_delay: float = 0.0, **fields: Any) -> dict[str, Any]:
        with self.lock:
            cid, data = self._prepare_contact(dict(fields))
            self.contacts.create(cid, data, delay=index_delay)
            return _clone(data)

    def seed_contacts(
        self,
        n: int,
        *,
        updated_at: int | None = None,
        created_at: int | None = None,
    ) -> list[dict[str, Any]]:
        """Bulk-create realistic contacts. Each counts as written at its updated_at (historic
        data), so only those updated within the last ``search_lag`` seconds are still hidden
        from search."""
        with self.lock, _gc_paused():
            now = int(self.now())
            rng = self.faker.rng
            start = self.contacts.known_count()
            batch: list[tuple[str, dict[str, Any], float]] = []
            for i in range(start, start + n):
                fields = self.faker.contact(i)
                created = now - rng.randrange(365 * 86_400) if created_at is None else created_at
                updated = updated_at if updated_at is not None else rng.randint(created, now)
                fields["created_at"] = min(created, updated)
                fields["updated_at"] = updated
                fields["last_seen_at"] = updated
                cid, data = self._prepare_contact(fields, trusted=True)
                batch.append((cid, data, float(updated)))
            self.contacts.load(batch)
            self.contact_index.warm("updated_at", "created_at", "id")
            return [data for _, data, _ in batch]  # shared snapshots: treat as read-only

    def update_contact(
        self, contact_id: str, *, index_delay: float = 0.0, **fields: Any
    ) -> dict[str, Any]:
        with self.lock:
            contact = self._live(contact_id)
            shape = fields.pop("avatar_shape", contact.avatar_shape)
            if shape not in AVATAR_SHAPES:
                raise ValueError(f"avatar_shape must be one of {AVATAR_SHAPES}")
            _check_fields(fields, CONTACT_DEFAULTS, "contact")
            attrs = dict(contact.attrs)
            for key, value in fields.items():
                if key in ("custom_attributes", "location") and isinstance(value, Mapping):
                    attrs[key] = {**attrs[key], **_clone(dict(value))}  # merged
                else:
                    attrs[key] = _clone(value)
            if attrs["role"] not in ("user", "lead"):
                raise ValueError("role must be 'user' or 'lead'")
            if "updated_at" not in fields:
                attrs["updated_at"] = int(self.now())
            self._release_identity(contact_id, contact.attrs)
            self._claim_identity(contact_id, attrs)
            return _clone(self._replace(contact_id, contact, attrs, shape, index_delay))

    def _replace(
        self, cid: str, contact: _Contact, attrs: dict[str, Any], shape: str, delay: float = 0.0
    ) -> dict[str, Any]:
        contact.attrs = attrs
        contact.avatar_shape = shape
        data = render_contact(cid, self.app_id, attrs, shape)
        self.contacts.update(cid, data, delay=delay)
        return data

    def delete_contact(self, contact_id: str, *, index_delay: float = 0.0) -> None:
        with self.lock:
            contact = self._live(contact_id)
            del self._contacts[contact_id]
            self._release_identity(contact_id, contact.attrs)
            self.contacts.delete(contact_id, delay=index_delay)

    def _live(self, contact_id: str) -> _Contact:
        contact = self._contacts.get(contact_id)
        if contact is None:
            raise KeyError(f"no contact {contact_id}")
        return contact

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        return self.contacts.get(contact_id)

    def contact_count(self) -> int:
        return len(self.contacts)

    def contact_with_email(self, email: str) -> str | None:
        with self.lock:
            return self._email_owner.get(email.lower())

    def contact_with_external_id(self, external_id: str) -> str | None:
        with self.lock:
            return self._external_owner.get(str(external_id))

    def list_contacts(
        self, after_seq: int | None, per_page: int
    ) -> tuple[list[dict[str, Any]], int, int | None]:
        """One page in creation order: (records, total, next cursor seq or None)."""
        page = self.contacts.live_page(after_seq, per_page)
        return page.records, page.total, page.next_after

    def search_contacts(
        self, query: Query, sort_field: str, descending: bool, after: Key | None, limit: int
    ) -> SearchPage:
        with self.lock:
            self.contacts.sync()
            return self.contact_index.search(query, sort_field, descending, after, limit)

    # -- admins and notes -----------------------------------------------------------------

    def add_admin(
        self,
        name: str | None = None,
        email: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        _check_fields(
            fields,
            _ADMIN_FIELDS,
            "admin",
        )
        with self.lock:
            admin_id = str(fields.pop("id", None) or self._next("admin"))
            number = len(self._admins) + 1
            admin = {
                "id": admin_id,
                "name": name or f"Teammate {number}",
                "email": email or f"teammate{number}@{self.app_id}.example.com",
                **fields,
            }
            self._admins[admin_id] = admin
            return render_admin(admin)

    def get_admin(self, admin_id: str) -> dict[str, Any] | None:
        with self.lock:
            admin = self._admins.get(str(admin_id))
            return None if admin is None else render_admin(admin)

    def admins(self) -> list[dict[str, Any]]:
        with self.lock:
            return [render_admin(a) for a in self._admins.values()]

    def add_note(self, contact_id: str, body: str, admin_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            contact = self._live(contact_id)
            author = self.get_admin(admin_id or self.me_id)
            if author is None:
                raise KeyError(f"no admin {admin_id}")
            note_id = self._next("note")
            note = {
                "type": "note",
                "id": note_id,
                "created_at": int(self.now()),
                "contact": {"type": "contact", "id": contact_id},
                "author": author,
                "body": html_body(body),
            }
            self._notes[note_id] = note
            attrs = dict(contact.attrs)
            attrs["note_ids"] = [note_id, *attrs["note_ids"]]  # newest first
            self._replace(contact_id, contact, attrs, contact.avatar_shape)
            return _clone(note)

    # -- conversations --------------------------------------------------------------------

    def add_conversation(
        self,
        contact_id: str,
        *,
        body: str = "Hi, I need some help with my account.",
        subject: str = "",
        source_type: str = "conversation",
        delivered_as: str = "customer_initiated",
        **fields: Any,
    ) -> dict[str, Any]:
        _check_fields(fields, _CONVERSATION_FIELDS | {"id"}, "conversation")
        with self.lock:
            contact = self._live(contact_id)
            now = int(self.now())
            created = int(fields.get("created_at") or now)
            if delivered_as == "customer_initiated":
                author = {
                    "type": contact.attrs["role"],
                    "id": contact_id,
                    "name": contact.attrs["name"],
                    "email": contact.attrs["email"] or "",
                }
            else:
                me = self._admins[self.me_id]
                author = {"type": "admin", "id": me["id"], "name": me["name"], "email": me["email"]}
            state = fields.get("state", "open")
            conv: dict[str, Any] = {
                "id": str(fields.get("id") or self._next("conversation")),
                "title": None,
                "created_at": created,
                "updated_at": created,
                "waiting_since": created if delivered_as == "customer_initiated" else None,
                "snoozed_until": None,
                "state": state,
                "read": False,
                "priority": "not_priority",
                "admin_assignee_id": None,
                "team_assignee_id": None,
                "custom_attributes": {},
                "tags": [],
                "source": {
                    "type": source_type,
                    "id": self._next("message"),
                    "delivered_as": delivered_as,
                    "subject": subject,
                    "body": html_body(body),
                    "author": author,
                    "url": None,
                },
                "contacts": [(contact_id, contact.attrs["external_id"])],
            }
            conv.update({k: _clone(v) for k, v in fields.items() if k != "id"})
            conv["tags"] = [tuple(t) if not isinstance(t, str) else (t, t) for t in conv["tags"]]
            if state == "closed":
                conv["waiting_since"] = None
            self._conversations[conv["id"]] = conv
            data = render_conversation(conv)
            self.conversation_index.apply(conv["id"], data)
            return _clone(data)

    def update_conversation(self, conversation_id: str, **fields: Any) -> dict[str, Any]:
        _check_fields(fields, _CONVERSATION_FIELDS, "conversation")
        with self.lock:
            conv = self._conversations[conversation_id]
            for key, value in fields.items():
                if key == "custom_attributes":
                    conv[key] = {**conv[key], **value}
                elif key == "tags":
                    conv[key] = [tuple(t) if not isinstance(t, str) else (t, t) for t in value]
                else:
                    conv[key] = _clone(value)
            if "updated_at" not in fields:
                conv["updated_at"] = int(self.now())
            data = render_conversation(conv)
            self.conversation_index.apply(conversation_id, data)
            return _clone(data)

    def get_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.conversation_index.records.get(conversation_id)

    def search_conversations(
        self, query: Query, sort_field: str, descending: bool, after: Key | None, limit: int
    ) -> SearchPage:
        with self.lock:
            return self.conversation_index.search(query, sort_field, descending, after, limit)

    # -- companies ------------------------------------------------------------------------

    def add_company(
        self, name: str, company_id: str | None = None, *, id: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            cid = id or f"{int(self.now()) & 0xFFFFFFFF:08x}{self.rng.getrandbits(64):016x}"
            now = int(self.now())
            company = {
                "type": "company",
                "company_id": company_id or f"company-{len(self._companies) + 1}",
                "id": cid,
                "app_id": self.app_id,
                "name": name,
                "remote_created_at": now,
                "created_at": now,
                "updated_at": now,
                "monthly_spend": 0,
                "session_count": 0,
                "user_count": 0,
                "tags": {"type": "tag.list", "tags": []},
                "segments": {"type": "segment.list", "segments": []},
                "plan": {},
                "custom_attributes": {},
            }
            self._companies[cid] = company
            return _clone(company)

    def _company_user_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for contact in self._contacts.values():
            for cid in contact.attrs["company_ids"]:
                if cid in self._companies:
                    counts[cid] = counts.get(cid, 0) + 1
        return counts

    def list_companies(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        """One page of companies that have users (as the vendor lists them): (page, total)."""
        with self.lock:
            counts = self._company_user_counts()
            listed = [
                {**company, "user_count": counts[cid]}
                for cid, company in self._companies.items()
                if counts.get(cid)
            ]
            start = (page - 1) * per_page
            return listed[start : start + per_page], len(listed)

    # -- ticket types and tickets ---------------------------------------------------------

    def add_ticket_type(
        self,
        name: str = "Bug report",
        category: str = "Customer",
        description: str = "Something is not working as expected.",
        *,
        archived: bool = False,
        icon: str = "\N{LADY BEETLE}",
    ) -> dict[str, Any]:
        if category not in TICKET_CATEGORIES:
            raise ValueError(f"category must be one of {TICKET_CATEGORIES}")
        with self.lock:
            now = int(self.now())
            ticket_type: dict[str, Any] = {
                "id": self._next("ticket_type"),
                "name": name,
                "category": category,
                "description": description,
                "archived": archived,
                "icon": icon,
                "created_at": now,
                "updated_at": now,
            }
            public = render_ticket_type(ticket_type, self.app_id, self.states.values())
            self._ticket_types[ticket_type["id"]] = public
            return _clone(public)

    def ticket_types(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._ticket_types.values())

    def get_ticket_type(self, ticket_type_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self._ticket_types.get(str(ticket_type_id))

    def add_ticket(
        self,
        contact_id: str,
        *,
        ticket_type_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        _check_fields(fields, _TICKET_FIELDS | {"id", "extra_contact_ids"}, "ticket")
        with self.lock:
            contacts = [contact_id, *fields.pop("extra_contact_ids", [])]
            refs = [(cid, self._live(cid).attrs["external_id"]) for cid in contacts]
            if ticket_type_id is None:
                if not self._ticket_types:
                    self.add_ticket_type()
                ticket_type_id = next(iter(self._ticket_types))
            if str(ticket_type_id) not in self._ticket_types:
                raise KeyError(f"no ticket type {ticket_type_id}")
            now = int(self.now())
            created = int(fields.pop("created_at", None) or now)
            title = fields.pop("title", "Cannot log in")
            description = fields.pop("description", "The login page hangs.")
            attributes = dict(fields.pop("ticket_attributes", None) or {})
            attributes.setdefault("_default_title_", title)
            attributes.setdefault("_default_description_", description)
            fmt = fields.pop("ticket_state_format", None)
            ticket = {
                "id": str(fields.pop("id", None) or self._next("ticket")),
                "ticket_id": self._next("ticket_number"),
                "ticket_type_id": str(ticket_type_id),
                "state": "submitted",
                "ticket_attributes": attributes,
                "contacts": refs,
                "admin_assignee_id": "0",
                "team_assignee_id": "0",
                "created_at": created,
                "updated_at": created,
                "snoozed_until": None,
                **fields,
            }
            return self._save_ticket(ticket, fmt)

    def update_ticket(self, ticket_id: str, **fields: Any) -> dict[str, Any]:
        _check_fields(fields, _TICKET_FIELDS, "ticket")
        with self.lock:
            ticket = dict(self._tickets[ticket_id])
            attributes = dict(ticket["ticket_attributes"])
            attributes.update(fields.pop("ticket_attributes", None) or {})
            if "title" in fields:
                attributes["_default_title_"] = fields.pop("title")
            if "description" in fields:
                attributes["_default_description_"] = fields.pop("description")
            ticket["ticket_attributes"] = attributes
            fmt = fields.pop("ticket_state_format", None)
            ticket.update(fields)
            if "updated_at" not in fields:
                ticket["updated_at"] = int(self.now())
            return self._save_ticket(ticket, fmt)

    def _save_ticket(self, ticket: dict[str, Any], fmt: str | None) -> dict[str, Any]:
        if ticket["state"] not in self.states:
            raise ValueError(f"state must be one of {TICKET_STATE_CATEGORIES}")
        if fmt is not None:
            if fmt not in ("object", "string"):
                raise ValueError("ticket_state_format must be 'object' or 'string'")
            self._ticket_formats[ticket["id"]] = fmt
        self._tickets[ticket["id"]] = ticket
        data = render_ticket(
            ticket, self._ticket_types[ticket["ticket_type_id"]], self.states[ticket["state"]]
        )
        self.ticket_index.apply(ticket["id"], data)
        return _clone(data)

    def ticket_state_format(self, ticket_id: str) -> str | None:
        return self._ticket_formats.get(ticket_id)

    def get_ticket(self, ticket_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.ticket_index.records.get(ticket_id)

    def search_tickets(
        self, query: Query, sort_field: str, descending: bool, after: Key | None, limit: int
    ) -> SearchPage:
        with self.lock:
            return self.ticket_index.search(query, sort_field, descending, after, limit)
