"""``FakeIntercom``: the control surface tests use, on the kit's ``VendorSandbox``."""

from __future__ import annotations

import copy
import re
from typing import Any

from starlette.types import ASGIApp

from .._clock import Clock, ManualClock
from .._gateway import Call, Reply
from .._rate import RateState
from .._sandbox import VendorSandbox
from ._app import build_app, default_error
from ._store import Store

__all__ = ["FakeIntercom", "ManualClock"]


class FakeIntercom(VendorSandbox):
    """An in-process fake of the Intercom REST API 2.x.

    Use ``fake.app`` (or the fake itself, which is an ASGI callable) with
    ``httpx.ASGITransport``, or ``with fake.serve() as base_url:`` for a real socket.
    Control methods are synchronous and thread-safe. Returned dicts are copies, except the
    list from ``seed_contacts``, which shares the stored snapshots (treat it as read-only).
    Faults (``fail_next``, ``hang_next``, ``reset_next``...), ``latency`` and the call log
    come from the kit's ``VendorSandbox``.
    """

    title = "fake-intercom"

    def __init__(
        self,
        *,
        token: str = "test-token",
        app_id: str = "abc123de",
        app_name: str = "Acme Support",
        region: str = "us",
        timezone: str = "Europe/Lisbon",
        clock: Clock | None = None,
        search_lag: float = 0.0,
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = (1666, 10),
        seed: int = 0,
        ticket_state_format: str = "auto",
        omit_last_next: bool = False,
        default_ticket_types: bool = True,
    ) -> None:
        if ticket_state_format not in ("auto", "object", "string"):
            raise ValueError("ticket_state_format must be 'auto', 'object' or 'string'")
        super().__init__(clock=clock, latency=latency, rate_limit=rate_limit)
        self.token = token
        self.app_id = app_id
        self.app_name = app_name
        self.region = region
        self.timezone = timezone
        # "auto": the object shape, except for clients pinned to Intercom-Version <= 2.11.
        self.ticket_state_format = ticket_state_format
        # The vendor omits pages.next on the last page; by default the fake sends null.
        self.omit_last_next = omit_last_next
        self.store = Store(
            app_id=app_id, timezone=timezone, clock=self.clock, search_lag=search_lag, seed=seed
        )
        self.versions_seen: list[str | None] = []
        if default_ticket_types:
            self.store.add_ticket_type("Bug report", "Customer", "Something is not working.")
            self.store.add_ticket_type("Billing question", "Customer", "Invoices and payments.")
            self.store.add_ticket_type("Follow-up task", "Back-office", "Internal follow-up.")
            self.store.add_ticket_type("Outage tracker", "Tracker", "Tracks a known incident.")

    # -- the kit's hooks -------------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        return build_app(self)

    def record(self, call: Call) -> None:
        super().record(call)
        self.versions_seen.append(call.headers.get("intercom-version"))

    def authenticate(self, call: Call) -> str | None:
        # One rate-limit budget per workspace, whatever the token.
        ok = call.headers.get("authorization", "") == f"Bearer {self.token}"
        return self.app_id if ok else None

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        body = default_error(status)
        if message is not None:
            body["errors"][0]["message"] = message
        return Reply.json(body, status)

    def unauthorized(self, call: Call) -> Reply:
        reply = self.error_reply(401)
        if self.limiter is None:
            return reply
        return reply.with_headers(self.rate_headers(self.limiter.peek(self.app_id)))

    def rate_headers(self, state: RateState) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(state.limit)),
            ("X-RateLimit-Remaining", str(state.remaining)),
            ("X-RateLimit-Reset", str(state.reset)),
        ]

    def rate_limited(self, state: RateState | None) -> Reply:
        # The vendor sends no Retry-After: X-RateLimit-Reset says when to come back.
        reply = self.error_reply(429)
        return reply if state is None else reply.with_headers(self.rate_headers(state))

    # -- clock and settings ----------------------------------------------------------------

    @property
    def search_lag(self) -> float:
        return self.store.search_lag

    @search_lag.setter
    def search_lag(self, seconds: float) -> None:
        self.store.search_lag = seconds

    def ticket_state_shape(self, ticket_id: str, version: str | None) -> str:
        """Which ticket_state shape a response carries: per-ticket flag, option, version."""
        chosen = self.store.ticket_state_format(ticket_id)
        if chosen is not None:
            return chosen
        if self.ticket_state_format != "auto":
            return self.ticket_state_format
        match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", version or "")
        if match and (int(match[1]), int(match[2])) <= (2, 11):
            return "string"
        return "object"

    # -- state -----------------------------------------------------------------------------

    def add_contact(self, *, index_delay: float = 0.0, **fields: Any) -> dict[str, Any]:
        """Create a contact (searchable once ``search_lag``, or ``index_delay`` if longer, has
        passed: a late commit). Fields: role, email, phone, name, external_id, avatar (URL),
        avatar_shape (object|string|null), custom_attributes, location, social_profiles,
        company_ids, tag_ids, timestamps, id."""
        return self.store.add_contact(index_delay=index_delay, **fields)

    def update_contact(
        self, contact_id: str, *, index_delay: float = 0.0, **fields: Any
    ) -> dict[str, Any]:
        """Change fields; updated_at becomes the clock's integer now unless given."""
        return self.store.update_contact(contact_id, index_delay=index_delay, **fields)

    def delete_contact(self, contact_id: str, *, index_delay: float = 0.0) -> None:
        self.store.delete_contact(contact_id, index_delay=index_delay)

    def seed_contacts(
        self,
        n: int,
        *,
        updated_at: int | None = None,
        created_at: int | None = None,
    ) -> list[dict[str, Any]]:
        """Bulk-create ``n`` realistic contacts (read-only shared snapshots). Each counts as
        written at its updated_at, so only recently updated ones are hidden by the lag."""
        return self.store.seed_contacts(n, updated_at=updated_at, created_at=created_at)

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        """The live contact (not lagged), or None when missing or deleted."""
        found = self.store.get_contact(contact_id)
        return None if found is None else copy.deepcopy(found)

    def add_conversation(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        return self.store.add_conversation(contact_id, **fields)

    def update_conversation(self, conversation_id: str, **fields: Any) -> dict[str, Any]:
        return self.store.update_conversation(conversation_id, **fields)

    def add_ticket(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Create a ticket; ``ticket_state_format="string"`` gives it the 2.11 state shape."""
        return self.store.add_ticket(contact_id, **fields)

    def update_ticket(self, ticket_id: str, **fields: Any) -> dict[str, Any]:
        return self.store.update_ticket(ticket_id, **fields)

    def add_admin(
        self, name: str | None = None, email: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        return self.store.add_admin(name, email, **fields)

    def add_ticket_type(
        self,
        name: str = "Bug report",
        category: str = "Customer",
        description: str = "Something is not working as expected.",
        *,
        archived: bool = False,
    ) -> dict[str, Any]:
        return self.store.add_ticket_type(name, category, description, archived=archived)

    def add_company(
        self, name: str, company_id: str | None = None, *, id: str | None = None
    ) -> dict[str, Any]:
        """Create a company; attach it with ``add_contact(company_ids=[company["id"]])``.
        Like the vendor, the listing shows only companies that have contacts."""
        return self.store.add_company(name, company_id, id=id)

    def add_note(self, contact_id: str, body: str, admin_id: str | None = None) -> dict[str, Any]:
        return self.store.add_note(contact_id, body, admin_id)

    @property
    def me_id(self) -> str:
        return self.store.me_id

    # -- observation -----------------------------------------------------------------------

    def reset_calls(self) -> None:
        super().reset_calls()
        self.versions_seen.clear()
