"""``ZendeskSandbox``: the state and control surface of the fake Zendesk Support API."""

from __future__ import annotations

import math
import threading
from typing import Any

from starlette.types import ASGIApp

from .._clock import Clock
from .._gateway import Call, Reply
from .._rate import RateLimiter, RateState
from .._sandbox import VendorSandbox
from .._seed import Faker
from .._store import VersionedStore

__all__ = ["ZendeskSandbox"]

_ROLES = ("end-user", "agent", "admin")


class ZendeskSandbox(VendorSandbox):
    """A fake Zendesk account (``subdomain``) following /work/shared/spec/zendesk.md.

    Credentials: OAuth bearer tokens (``token`` is an admin's, ``agent_token`` an agent's,
    ``scopeless_token`` one granted a bogus scope: 403 everywhere), and the legacy Basic
    ``{email}/token:{api_token}`` of the admin. No credentials, or Basic with a password, is
    an anonymous caller: ``/users/me`` answers 200 with a null-id user, the rest 401.

    Awkward parts: ``lag`` (writes reach the export and search late; ``delay=`` on a write
    makes one commit later still), the export's withheld minute and ``StartTimeTooRecent``,
    an empty page before each long gap in the export, no cursor on an empty walk, mid-walk
    edits reappearing later in the walk, soft deletes as ``active:false``, the export's own
    bucket (``export_rate_limit``, default 10 a minute; None lifts it), 429s with or without
    ``Retry-After`` (``retry_after``), search caps and the ``+`` trap, idempotent ticket
    creation, ``create_or_update`` by email, duplicate-email 422s, merges.
    """

    connector = "zendesk"
    title = "zendesk sandbox"

    def __init__(
        self,
        *,
        token: str = "zd-admin-oauth-token-0123456789",
        agent_token: str = "zd-agent-oauth-token-0123456789",
        scopeless_token: str = "zd-scopeless-oauth-token-0123",
        api_token: str = "zd-api-token-0123456789",
        admin_email: str = "admin@acme.example",
        subdomain: str = "acme",
        clock: Clock | None = None,
        latency: float = 0.0,
        lag: float = 0.0,
        rate_limit: int | None = 700,
        export_rate_limit: int | None = 10,
        retry_after: bool = True,
        cursor_ttl: float | None = None,
        empty_gap: float = 7 * 86400,
    ) -> None:
        super().__init__(
            clock=clock,
            latency=latency,
            rate_limit=None if rate_limit is None else (rate_limit, 60),
        )
        self.subdomain = subdomain
        self.tokens = {token: "admin", agent_token: "agent", scopeless_token: "scopeless"}
        self.token = token
        self.api_token = api_token
        self.admin_email = admin_email
        self.retry_after = retry_after
        self.cursor_ttl = cursor_ttl
        self.empty_gap = empty_gap
        self.export_limiter = (
            None if export_rate_limit is None else RateLimiter(export_rate_limit, 60, self.clock)
        )
        self.lock = threading.RLock()
        self.users: VersionedStore[dict[str, Any]] = VersionedStore(
            self.clock, lag=lag, lock=self.lock
        )
        self.organizations: dict[int, str] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[bytes, int]] = {}
        self._next_id = 1000
        self.faker = Faker(0)
        self.admin_id = self.add_user("Ada Admin", email=admin_email, role="admin")
        self.agent_id = self.add_user("Abel Agent", email="agent@acme.example", role="agent")

    # -- the gateway's hooks ---------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        from ._routes import build_app

        return build_app(self)

    def caller(self, authorization: str | None) -> str | None:
        """``admin``, ``agent``, ``scopeless``, ``anonymous``, or None (a rejected one)."""
        if not authorization:
            return "anonymous"
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return self.tokens.get(value.strip())
        if scheme.lower() == "basic":
            import base64

            try:
                text = base64.b64decode(value.strip(), validate=True).decode()
            except ValueError:
                return None
            login, _, secret = text.partition(":")
            if not login.endswith("/token"):
                return "anonymous"  # passwords are off: the probe saw a 200 anonymous
            email = login.removesuffix("/token")
            ok = email.lower() == self.admin_email.lower() and secret == self.api_token
            return "admin" if ok else None
        return None

    def authenticate(self, call: Call) -> str | None:
        return self.caller(call.headers.get("authorization"))

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        if status == 401:
            return Reply.json({"error": "Couldn't authenticate you"}, 401)
        if status == 404:
            return Reply.json({"error": "RecordNotFound", "description": "Not found"}, 404)
        if status == 403:
            return Reply.json(
                {"error": {"title": "Forbidden", "message": message or "Forbidden"}}, 403
            )
        if status == 503:
            return Reply.json(
                {"error": "Maintenance", "description": message or "Down for maintenance"},
                503,
                [("Retry-After", "1")],
            )
        if status == 429:
            return Reply.json({"error": "APIRateLimitExceeded", "description": "Rate limited"}, 429)
        return Reply.json({"error": message or "Injected failure"}, status)

    def check_rate(self, account: str, call: Call) -> RateState | None:
        if call.path.startswith("/api/v2/incremental/"):
            if self.export_limiter is None:
                return None
            return self.export_limiter.hit("export:" + account)
        return None if self.limiter is None else self.limiter.hit("general:" + account)

    def rate_headers(self, state: RateState) -> list[tuple[str, str]]:
        resets = max(0, math.ceil(state.retry_after))
        if state.key.startswith("export:"):
            value = f"total={state.limit}; remaining={state.remaining}; resets={resets}"
            return [("zendesk-ratelimit-incremental-exports", value)]
        return [
            ("X-Rate-Limit", str(state.limit)),
            ("X-Rate-Limit-Remaining", str(state.remaining)),
            ("ratelimit-limit", str(state.limit)),
            ("ratelimit-remaining", str(state.remaining)),
            ("ratelimit-reset", str(resets)),
        ]

    def rate_limited(self, state: RateState | None) -> Reply:
        reply = self.error_reply(429)
        if state is None:
            return reply
        headers = self.rate_headers(state)
        if self.retry_after:
            headers.append(("Retry-After", str(max(1, math.ceil(state.retry_after)))))
        return reply.with_headers(headers)

    # -- state -----------------------------------------------------------------------------

    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def add_organization(self, name: str) -> int:
        oid = self.new_id()
        self.organizations[oid] = name
        return oid

    def add_user(
        self,
        name: str,
        *,
        email: str | None = None,
        phone: str | None = None,
        emails: tuple[str, ...] = (),
        phones: tuple[str, ...] = (),
        role: str = "end-user",
        organization_id: int | None = None,
        user_fields: dict[str, Any] | None = None,
        external_id: str | None = None,
        stamp: float | None = None,
        delay: float = 0.0,
    ) -> str:
        """A new user; ``emails``/``phones`` become secondary identities. Returns its id."""
        if role not in _ROLES:
            raise ValueError(role)
        uid = str(self.new_id())
        now = math.floor(self.now if stamp is None else stamp)
        identities = [("email", e) for e in ((email,) if email else ()) + emails]
        identities += [("phone_number", p) for p in ((phone,) if phone else ()) + phones]
        user = {
            "id": uid,
            "name": name,
            "email": email,
            "phone": phone,
            "role": role,
            "active": True,
            "suspended": False,
            "organization_id": organization_id,
            "user_fields": user_fields or {},
            "external_id": external_id,
            "identities": identities,
            "photo": f"https://{self.subdomain}.zendesk.com/system/photos/{uid}.png",
            "created_at": now,
            "updated_at": now,
        }
        self.users.create(uid, user, stamp=stamp, delay=delay)
        return uid

    def user(self, uid: str) -> dict[str, Any] | None:
        return self.users.get(str(uid))

    def update_user(self, uid: str, *, delay: float = 0.0, **changes: Any) -> dict[str, Any]:
        """A new version of a user (``updated_at`` = now); ``delay`` makes it a late commit."""
        with self.lock:
            user = self.users.get(str(uid))
            if user is None:
                raise KeyError(uid)
            user = {**user, **changes, "updated_at": math.floor(self.now)}
            self.users.update(str(uid), user, delay=delay)
            return user

    def add_identity(self, uid: str, kind: str, value: str, *, delay: float = 0.0) -> None:
        user = self.users.get(str(uid))
        if user is None:
            raise KeyError(uid)
        self.update_user(uid, identities=[*user["identities"], (kind, value)], delay=delay)

    def delete_user(self, uid: str, *, delay: float = 0.0) -> None:
        """Zendesk's soft delete: the user stays, ``active: false``."""
        self.update_user(uid, active=False, delay=delay)

    def merge_users(self, loser: str, winner: str) -> None:
        """``PUT /users/{loser}/merge``: the loser's tickets and emails move to the winner; the
        loser is left ``active: false`` (its link to the winner: unconfirmed, so none)."""
        with self.lock:
            lost, won = self.users.get(str(loser)), self.users.get(str(winner))
            if lost is None or won is None or lost["role"] != "end-user":
                raise KeyError(loser)
            moved = [(k, v) for k, v in lost["identities"] if k == "email"]
            self.update_user(str(winner), identities=[*won["identities"], *moved])
            self.update_user(str(loser), active=False, identities=[], email=None)
            for ticket in self.tickets.values():
                if ticket["requester_id"] == int(loser):
                    ticket["requester_id"] = int(winner)

    def add_ticket(
        self,
        requester_id: str,
        subject: str,
        *,
        description: str = "",
        status: str = "open",
        priority: str | None = "normal",
        stamp: float | None = None,
    ) -> int:
        tid = self.new_id()
        now = math.floor(self.now if stamp is None else stamp)
        self.tickets[tid] = {
            "id": tid,
            "subject": subject,
            "status": status,
            "priority": priority,
            "requester_id": int(requester_id),
            "assignee_id": None,
            "comments": [{"body": description or subject, "public": True}],
            "created_at": now,
            "updated_at": now,
        }
        return tid

    def live_end_users(self) -> dict[str, dict[str, Any]]:
        """Every user Talkdesk should hold as a contact: active, unsuspended end-users."""
        return {
            uid: u
            for uid, u in self.users.live()
            if u["role"] == "end-user" and u["active"] and not u["suspended"]
        }

    # -- the Sandbox protocol --------------------------------------------------------------

    def seed(self, *, contacts: int, seed: int = 0) -> None:
        faker = Faker(seed)
        rng = faker.rng
        orgs = {c.name: self.add_organization(c.name) for c in faker.companies(20)}
        now = math.floor(self.now)
        items: list[tuple[str, dict[str, Any], float]] = []
        for person in faker.people(contacts):
            uid = str(self.new_id())
            # Whole seconds over a year, many sharing one (bulk imports).
            stamp = now - 86400 * 365 + rng.randrange(86400 * 365 - 600)
            if rng.random() < 0.2:
                stamp = now - 86400 * 30
            emails = [e.address for e in person.emails]
            phones = [p.e164 for p in person.phones]
            identities = [("email", e) for e in emails] + [("phone_number", p) for p in phones]
            items.append(
                (
                    uid,
                    {
                        "id": uid,
                        "name": person.name,
                        "email": emails[0] if emails else None,
                        "phone": phones[0] if phones else None,
                        "role": "end-user",
                        "active": True,
                        "suspended": False,
                        "organization_id": orgs.get(person.company.name)
                        if person.company and person.company.name in orgs
                        else None,
                        "user_fields": {"job_title": person.title} if person.title else {},
                        "external_id": None,
                        "identities": identities,
                        "photo": None,
                        "created_at": stamp,
                        "updated_at": stamp,
                    },
                    float(stamp),
                )
            )
            if rng.random() < 0.6:
                for _ in range(rng.randrange(1, 4)):
                    self.add_ticket(
                        uid,
                        faker.subject(),
                        status=rng.choice(("new", "open", "pending", "hold", "solved", "closed")),
                        priority=rng.choice((None, "low", "normal", "high", "urgent")),
                        stamp=stamp,
                    )
        self.users.load(items)

    def credentials(self) -> dict[str, str]:
        return {"subdomain": self.subdomain, "access_token": self.token}

    def bad_credentials(self) -> dict[str, str]:
        return {"subdomain": self.subdomain, "access_token": "zd-revoked-token-0000000000"}

    def bridge_env(self, base_url: str) -> dict[str, str]:
        return {"TALKDESK_BRIDGE_ZENDESK_BASE_URL": base_url}
