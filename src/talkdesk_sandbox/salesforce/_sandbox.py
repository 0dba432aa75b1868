"""`SalesforceSandbox`: the org, its sessions and its API behind the kit's gateway.

Sessions are bearer tokens that expire (`session_seconds`, no `expires_in` is ever sent) and can
be revoked; an unknown or expired one gets 401 `INVALID_SESSION_ID`, except at userinfo, which
answers 403 `Bad_OAuth_Token` as Salesforce does. Every API answer carries `Sforce-Limit-Info`;
a spent allowance is 403 `REQUEST_LIMIT_EXCEEDED`, not a 429.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp

from .._clock import Clock
from .._gateway import Call, Reply
from .._rate import RateState
from .._sandbox import VendorSandbox
from .._seed import Faker, Person
from ._app import build_app, error_list
from ._engine import Engine
from ._org import Org

__all__ = ["DEFAULT_TOKEN", "SalesforceSandbox"]

DEFAULT_TOKEN = "00DHs0000000001!AQ4AQFakeSessionToken0123456789"
_PUBLIC = ("/services/oauth2/token", "/services/data", "/services/data/")
_DAILY = 86_400.0
_ERROR_CODES = {
    400: "MALFORMED_QUERY",
    401: "INVALID_SESSION_ID",
    403: "INSUFFICIENT_ACCESS",
    404: "NOT_FOUND",
    500: "UNKNOWN_EXCEPTION",
    502: "SERVER_UNAVAILABLE",
    503: "SERVER_UNAVAILABLE",
}


@dataclass
class _Session:
    user_id: str
    expires_at: float
    refresh: str | None = None


class SalesforceSandbox(VendorSandbox):
    """A fake Salesforce org (see the package docstring)."""

    connector = "salesforce"
    title = "salesforce sandbox"

    def __init__(
        self,
        *,
        token: str | None = None,
        latency: float = 0.0,
        clock: Clock | None = None,
        lag: float = 0.0,
        rate_limit: int | None = None,
        search_lag: float = 120.0,
        session_seconds: float = 7200.0,
        instance_url: str | None = None,
        version: str = "v62.0",
    ) -> None:
        super().__init__(clock=clock, latency=latency, rate_limit=(rate_limit or 1_000_000, _DAILY))
        self.org = Org(self.clock)
        for store in self.org.stores.values():
            store.lag = lag
        self.engine = Engine(self.org, version=version)
        self.search_lag = float(search_lag)
        self.session_seconds = float(session_seconds)
        # What userinfo and the token endpoint name as the instance (None: this server).
        self.instance_url = instance_url
        self.sessions: dict[str, _Session] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._codes: dict[str, str] = {}
        self.admin_id = self.org.create(
            "User",
            {"FirstName": "Ada", "LastName": "Admin", "Email": "admin@example.com"},
            checked=False,
        )
        self.token = token or DEFAULT_TOKEN
        self.sessions[self.token] = _Session(self.admin_id, float("inf"))

    # -- the gateway's hooks ---------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        return build_app(self)

    def authenticate(self, call: Call) -> str | None:
        if call.path in _PUBLIC:
            return "public"
        header = call.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        session = self.sessions.get(header[7:].strip())
        if session is None or session.expires_at <= self.now:
            return None
        return self.org.org_id

    def unauthorized(self, call: Call) -> Reply:
        if call.path.startswith("/services/oauth2/userinfo"):
            return Reply(403, b"Bad_OAuth_Token", content_type="text/plain")
        return Reply.json(error_list("INVALID_SESSION_ID", "Session expired or invalid"), 401)

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        code = _ERROR_CODES.get(status, "UNKNOWN_EXCEPTION")
        return Reply.json(error_list(code, message or f"Injected failure ({status})"), status)

    def check_rate(self, account: str, call: Call) -> RateState | None:
        if account == "public" or not call.path.startswith("/services/data/v"):
            return None
        return super().check_rate(account, call)

    def rate_headers(self, state: RateState) -> list[tuple[str, str]]:
        return [("Sforce-Limit-Info", f"api-usage={state.limit - state.remaining}/{state.limit}")]

    def rate_limited(self, state: RateState | None) -> Reply:
        reply = Reply.json(
            error_list("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), 403
        )
        return reply if state is None else reply.with_headers(self.rate_headers(state))

    def limit_burst(self, n: int = 1, *, concurrent: bool = False) -> None:
        """The next `n` API calls are refused as over a limit (daily, or >25 long calls)."""
        message = (
            "ConcurrentPerOrgLongTxn Limit exceeded."
            if concurrent
            else "TotalRequests Limit exceeded."
        )
        self.fail_next(
            n, 403, "/services/data/v", body=error_list("REQUEST_LIMIT_EXCEEDED", message)
        )

    # -- sessions --------------------------------------------------------------------------

    def issue(self, user_id: str | None = None, *, refresh: bool = False) -> tuple[str, str | None]:
        access = f"{self.org.org_id[:15]}!{secrets.token_urlsafe(40)}"
        refresh_token = secrets.token_urlsafe(32) if refresh else None
        user = user_id or self.admin_id
        self.sessions[access] = _Session(user, self.now + self.session_seconds, refresh_token)
        if refresh_token:
            self._refresh_tokens[refresh_token] = user
        return access, refresh_token

    def authorization_code(self, user_id: str | None = None) -> str:
        code = secrets.token_urlsafe(16)
        self._codes[code] = user_id or self.admin_id
        return code

    def exchange(self, code: str) -> tuple[str, str | None] | None:
        user = self._codes.pop(code, None)
        return None if user is None else self.issue(user, refresh=True)

    def refresh(self, refresh_token: str) -> tuple[str, str | None] | None:
        user = self._refresh_tokens.get(refresh_token)
        if user is None:
            return None
        access, _ = self.issue(user)
        return access, None  # no new refresh token without rotation

    def revoke(self, token: str) -> None:
        self.sessions.pop(token, None)

    def expire(self, token: str) -> None:
        if token in self.sessions:
            self.sessions[token].expires_at = self.now

    # -- data ------------------------------------------------------------------------------

    def add_contact(self, *, delay: float = 0.0, **fields: Any) -> str:
        fields.setdefault("LastName", "Doe")
        return self.org.create("Contact", fields, delay=delay, checked=False)

    def add_lead(self, *, delay: float = 0.0, **fields: Any) -> str:
        fields.setdefault("LastName", "Doe")
        fields.setdefault("Company", "Acme")
        return self.org.create("Lead", fields, delay=delay, checked=False)

    def add(self, sobject: str, **fields: Any) -> str:
        return self.org.create(sobject, fields, checked=False)

    def _person_fields(self, person: Person, faker: Faker) -> dict[str, Any]:
        phones = [p.number for p in person.phones]
        fields: dict[str, Any] = {
            "FirstName": person.first_name,
            "LastName": person.last_name,
            "Email": person.email,
            "Phone": phones[0] if phones else None,
            "MobilePhone": phones[1] if len(phones) > 1 else None,
            "Title": person.title,
        }
        return fields

    def seed(self, *, contacts: int, seed: int = 0) -> None:
        """Accounts, Contacts (about 70%) and Leads (some converted), Tasks, Events, Cases
        and a few Users; stamps spread over the last 90 days, many sharing one second."""
        faker = Faker(seed)
        rng = faker.rng
        org = self.org
        now = self.now
        bulk = [now - rng.randrange(86400, 90 * 86400) for _ in range(10)]

        def when() -> float:
            # A third of the rows come from bulk loads: thousands share one second.
            if rng.random() < 0.3:
                return rng.choice(bulk)
            return now - rng.randrange(3600, 90 * 86400)

        with org.lock:
            accounts = [
                org.create("Account", {"Name": c.name}, checked=False) for c in faker.companies(20)
            ]
            for n in range(4):
                org.create(
                    "User",
                    {
                        "FirstName": f"Agent{n}",
                        "LastName": "Smith",
                        "Email": f"agent{n}@example.com",
                    },
                    checked=False,
                )
            for person in faker.people(contacts):
                fields = self._person_fields(person, faker)
                place = person.place
                if rng.random() < 0.7:
                    fields |= {
                        "AccountId": rng.choice(accounts) if person.company else None,
                        "HomePhone": person.phones[2].number if len(person.phones) > 2 else None,
                        "MailingStreet": f"{rng.randint(1, 999)} Main Street",
                        "MailingCity": place.city,
                        "MailingCountry": place.country,
                    }
                    pid = org.create("Contact", fields, checked=False, at=when())
                    if rng.random() < 0.5:
                        org.create(
                            "Case",
                            {"Subject": faker.subject(), "ContactId": pid,
                             "Status": rng.choice(["New", "Working", "On Hold", "Closed"]),
                             "Priority": rng.choice(["High", "Medium", "Low"])},
                            checked=False,
                        )  # fmt: skip
                else:
                    fields |= {
                        "Company": person.company.name if person.company else "Self",
                        "City": place.city,
                        "Country": place.country,
                    }
                    pid = org.create("Lead", fields, checked=False, at=when())
                    if rng.random() < 0.1:
                        org.convert(pid)
                        continue
                if rng.random() < 0.6:
                    org.create(
                        "Task",
                        {"Subject": f"Call: {faker.subject()}", "WhoId": pid,
                         "TaskSubtype": "Call", "Status": "Completed", "CallType": "Inbound"},
                        checked=False,
                    )  # fmt: skip
                if rng.random() < 0.2:
                    org.create(
                        "Event",
                        {"Subject": "Demo", "WhoId": pid, "StartDateTime": int(self.now) - 3600},
                        checked=False,
                    )

    # -- the Sandbox protocol --------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return {"access_token": self.token}

    def bad_credentials(self) -> dict[str, str]:
        return {"access_token": "00DHs0000000001!AQ4AQrevokedOrExpiredSessionToken"}

    def bridge_env(self, base_url: str) -> dict[str, str]:
        return {"TALKDESK_BRIDGE_SALESFORCE_BASE_URL": base_url}
