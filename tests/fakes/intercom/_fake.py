"""``FakeIntercom``: the control surface tests use, and the ASGI app they send requests to."""

from __future__ import annotations

import copy
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ._app import Served, create_app
from ._faults import FaultPlan, FaultRule, RateLimiter
from ._store import Clock, ManualClock, Store

__all__ = ["FakeIntercom", "ManualClock"]


class FakeIntercom:
    """An in-process fake of the Intercom REST API 2.x.

    Use ``fake.app`` (or the fake itself, which is an ASGI callable) with
    ``httpx.ASGITransport``, or ``with fake.serve() as base_url:`` for a real socket.
    Control methods are synchronous and thread-safe. Returned dicts are copies, except the
    list from ``seed_contacts``, which shares the stored snapshots (treat it as read-only).
    """

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
        rate_limit: tuple[int, float] = (1666, 10),
        seed: int = 0,
        ticket_state_format: str = "auto",
        omit_last_next: bool = False,
        default_ticket_types: bool = True,
    ) -> None:
        if ticket_state_format not in ("auto", "object", "string"):
            raise ValueError("ticket_state_format must be 'auto', 'object' or 'string'")
        self.token = token
        self.app_id = app_id
        self.app_name = app_name
        self.region = region
        self.timezone = timezone
        self.latency = float(latency)
        # "auto": the object shape, except for clients pinned to Intercom-Version <= 2.11.
        self.ticket_state_format = ticket_state_format
        # The vendor omits pages.next on the last page; by default the fake sends null.
        self.omit_last_next = omit_last_next
        self.clock: Clock = clock if clock is not None else time.time
        self.store = Store(
            app_id=app_id, timezone=timezone, clock=self.clock, search_lag=search_lag, seed=seed
        )
        self.limiter = RateLimiter(rate_limit[0], rate_limit[1], self.clock)
        self.faults = FaultPlan()
        self.calls: list[tuple[str, str]] = []
        self.versions_seen: list[str | None] = []
        self._app: Any = None
        if default_ticket_types:
            self.store.add_ticket_type("Bug report", "Customer", "Something is not working.")
            self.store.add_ticket_type("Billing question", "Customer", "Invoices and payments.")
            self.store.add_ticket_type("Follow-up task", "Back-office", "Internal follow-up.")
            self.store.add_ticket_type("Outage tracker", "Tracker", "Tracks a known incident.")

    # -- ASGI ------------------------------------------------------------------------------

    @property
    def app(self) -> Any:
        """The Starlette app (built once)."""
        if self._app is None:
            self._app = create_app(self)
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Run the app on a real uvicorn server in a thread; yields its base URL.

        Only a served fake can inject the socket faults (``reset_next``, ``cut_next``)."""
        import uvicorn

        config = uvicorn.Config(
            Served(self.app), host=host, port=port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="fake-intercom", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake Intercom server did not start")
            time.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://{host}:{bound}"
        finally:
            server.should_exit = True
            thread.join(10)

    # -- clock and settings ----------------------------------------------------------------

    @property
    def now(self) -> float:
        return float(self.clock())

    @property
    def search_lag(self) -> float:
        return self.store.search_lag

    @search_lag.setter
    def search_lag(self, seconds: float) -> None:
        self.store.search_lag = seconds

    @property
    def rate_limit(self) -> tuple[int, float]:
        return self.limiter.limit, self.limiter.window

    @rate_limit.setter
    def rate_limit(self, value: tuple[int, float]) -> None:
        self.limiter = RateLimiter(value[0], value[1], self.clock)

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

    def add_contact(self, **fields: Any) -> dict[str, Any]:
        """Create a contact (searchable once ``search_lag`` has passed). Fields: role, email,
        phone, name, external_id, avatar (URL), avatar_shape (object|string|null),
        custom_attributes, location, social_profiles, company_ids, tag_ids, timestamps, id."""
        return self.store.add_contact(**fields)

    def update_contact(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields; updated_at becomes the clock's integer now unless given."""
        return self.store.update_contact(contact_id, **fields)

    def delete_contact(self, contact_id: str) -> None:
        self.store.delete_contact(contact_id)

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

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        path_prefix: str | None = None,
        body: Any = None,
        *,
        method: str | None = None,
    ) -> None:
        """The next ``n`` matching requests fail with ``status`` (default body: error.list)."""
        self.faults.add(FaultRule("fail", n, path_prefix, method, status=status, body=body))

    def rate_limit_burst(self, n: int = 1) -> None:
        """The next ``n`` requests get 429 with X-RateLimit-Remaining 0."""
        self.fail_next(n, status=429)

    def hang_next(
        self, n: int, seconds: float, path_prefix: str | None = None, *, method: str | None = None
    ) -> None:
        """The next ``n`` matching requests sleep ``seconds`` (real time) before answering."""
        self.faults.add(FaultRule("hang", n, path_prefix, method, seconds=seconds))

    def malformed_next(
        self, n: int = 1, path_prefix: str | None = None, *, method: str | None = None
    ) -> None:
        """The next ``n`` matching requests run, then answer 200 with truncated JSON."""
        self.faults.add(FaultRule("malformed", n, path_prefix, method))

    def reset_next(
        self,
        n: int = 1,
        path_prefix: str | None = None,
        *,
        method: str | None = None,
        processed: bool = True,
    ) -> None:
        """The next ``n`` matching requests get no answer: the connection is reset (TCP RST).

        With ``processed`` the request runs first (a create takes effect), as when a
        connection dies on the way back. Needs ``serve()``; over ``httpx.ASGITransport`` the
        request raises ``ConnectionResetError`` instead."""
        self.faults.add(FaultRule("reset", n, path_prefix, method, processed=processed))

    def cut_next(
        self, n: int = 1, path_prefix: str | None = None, *, method: str | None = None
    ) -> None:
        """The next ``n`` matching requests run; the answer's status and headers (promising the
        whole body in Content-Length) and half its body go out, then the connection closes.
        Needs ``serve()``; over ``httpx.ASGITransport`` it raises ``ConnectionResetError``."""
        self.faults.add(FaultRule("cut", n, path_prefix, method))

    def trickle_next(
        self,
        n: int = 1,
        seconds: float = 2.0,
        path_prefix: str | None = None,
        *,
        method: str | None = None,
        chunk: int = 16,
    ) -> None:
        """The next ``n`` matching requests run; their answer's body then trickles out in
        ``chunk``-byte pieces spread over ``seconds`` (real time), each piece soon after the
        last, so a per-read timeout never fires. Stops early when the client goes away."""
        if chunk < 1:
            raise ValueError("chunk must be at least 1 byte")
        self.faults.add(FaultRule("trickle", n, path_prefix, method, seconds=seconds, chunk=chunk))

    def random_failures(
        self,
        rate: float,
        statuses: Sequence[int] = (500, 503),
        seed: int | None = 0,
        path_prefix: str | None = None,
    ) -> None:
        """Fail each authorised request with probability ``rate``; ``rate=0`` turns it off."""
        self.faults.set_random(rate, statuses, seed, path_prefix)

    def reset_faults(self) -> None:
        self.faults.clear()

    # -- observation -----------------------------------------------------------------------

    def call_count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return sum(
            1
            for m, p in self.calls
            if (method is None or m == method.upper())
            and (path_prefix is None or p.startswith(path_prefix))
        )

    @property
    def call_counts(self) -> Counter[tuple[str, str]]:
        return Counter(self.calls)

    def reset_calls(self) -> None:
        self.calls.clear()
        self.versions_seen.clear()
