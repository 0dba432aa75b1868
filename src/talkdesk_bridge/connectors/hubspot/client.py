"""HubSpot's CRM API v3 (and account info), the calls the connector makes, over `Upstream`.

HubSpot's own reading of failed answers lives in `refine`: `MISSING_SCOPES` is a 403 naming
the scope, a search 429 ("secondly limit") carries no headers and lasts a second, the app's
10-second bucket a full interval, a DAILY 429 until the portal's midnight (not retried). The
search endpoint's 5 requests/second per portal is paced here (`SearchGate`): its answers carry
no rate-limit headers for the shared budget to read. The token travels only in the
Authorization header; ids reach paths only after a strict pattern, emails percent-encoded.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from ..._errors import (
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamUnavailable,
)
from ..._upstream import Clock, Deadline, Sleep, Upstream, account_key, scrub
from .._base import Auth, auth_value

__all__ = [
    "API_HOST",
    "DailyLimit",
    "HubSpotClient",
    "ScopeMissing",
    "SearchGate",
    "Session",
    "checked_email",
    "checked_id",
    "rate_headers",
    "refine",
]

SERVICE = "HubSpot"
API_HOST = "https://api.hubapi.com"
_MESSAGE_LIMIT = 300
_ID = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
_EMAIL = re.compile(r"[\x21-\x7e]{1,254}", re.ASCII)
_CURSOR = re.compile(r"[A-Za-z0-9_\-=]{1,256}", re.ASCII)
_MAX_GATES = 10_000


class ScopeMissing(UpstreamRejected):
    """The token lacks a scope (HubSpot's 403 `MISSING_SCOPES`)."""


class DailyLimit(UpstreamUnavailable):
    """The portal's daily call budget is spent: waiting inside a request cannot help."""

    retriable = False


def checked_id(value: object) -> str | None:
    """A HubSpot record id (digits), safe in a path; None otherwise."""
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, str | int) else ""
    return text if _ID.fullmatch(text) else None


def checked_email(value: str) -> str | None:
    text = value.strip()
    if not _EMAIL.fullmatch(text) or text.count("@") != 1 or text.startswith("@"):
        return None
    return text


def opaque_cursor(value: object) -> str | None:
    return value if isinstance(value, str) and _CURSOR.fullmatch(value) else None


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _scopes(body: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    errors = body.get("errors")
    for error in errors if isinstance(errors, list) else ():
        context = error.get("context") if isinstance(error, dict) else None
        scopes = context.get("requiredGranularScopes") if isinstance(context, dict) else None
        found.extend(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else None
    return [s[:80] for s in found][:5]


def until_midnight(now: float, zone: tzinfo = UTC) -> float:
    """Seconds from `now` to the next midnight in `zone` (the portal's day)."""
    moment = datetime.fromtimestamp(now, zone)
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), zone)
    return max(1.0, midnight.timestamp() - now)


def refine(response: httpx.Response, error: UpstreamError, now: float) -> UpstreamError:
    """HubSpot's reading of a failed answer (`Upstream`'s hook)."""
    status = response.status_code
    body = _error(response)
    category = body.get("category")
    message = str(body.get("message") or "")[:_MESSAGE_LIMIT]
    if status == 403 and category == "MISSING_SCOPES":
        scopes = _scopes(body)
        named = ", ".join(scopes) if scopes else "a scope this feature needs"
        return ScopeMissing(
            f"HubSpot refused: the token lacks the scope {named}; add it to the app and "
            "install it again",
            upstream_status=403,
        )
    if status == 429:
        if body.get("policyName") == "DAILY":
            return DailyLimit(
                "HubSpot's daily API limit for this portal is spent",
                retry_after=until_midnight(now),
                upstream_status=429,
            )
        if body.get("policyName") is None and "your secondly limit" in message.lower():
            return UpstreamUnavailable(
                "HubSpot's search rate limit reached", retry_after=1.0, upstream_status=429
            )
        interval = _number(response.headers.get("x-hubspot-ratelimit-interval-milliseconds"))
        wait = interval / 1000 if interval else 10.0
        return UpstreamUnavailable(
            "HubSpot rate limit reached", retry_after=min(wait, 60.0), upstream_status=429
        )
    if status == 423:
        return UpstreamUnavailable("HubSpot: the record is locked", retry_after=2.0)
    if status == 477:
        return UpstreamUnavailable(
            "HubSpot: the portal is being migrated",
            retry_after=_number(response.headers.get("retry-after")) or 30.0,
            upstream_status=477,
        )
    return error


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def rate_headers(response: httpx.Response, now: float) -> tuple[int | None, float | None]:
    """The app's 10-second bucket from `X-HubSpot-RateLimit-*` (absent on search answers)."""
    remaining = _number(response.headers.get("x-hubspot-ratelimit-remaining"))
    interval = _number(response.headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    if remaining is None:
        return None, None
    # A rolling window: the whole interval is the safe horizon.
    return int(remaining), now + (interval / 1000 if interval else 10.0)


class SearchGate:
    """Spaces searches per portal: HubSpot's 5/s is the portal's, shared by every
    integration, and its answers carry no headers to pace by."""

    def __init__(self, per_second: float, clock: Clock, sleep: Sleep) -> None:
        self.interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next: OrderedDict[str, float] = OrderedDict()

    async def wait(self, account: str, deadline: Deadline) -> None:
        now = self._clock()
        at = max(now, self._next.get(account, 0.0))
        wait = at - now
        if wait > 0 and not deadline.allows(wait):
            raise UpstreamUnavailable("HubSpot search rate limit reached", retry_after=wait)
        self._next[account] = at + self.interval
        self._next.move_to_end(account)
        while len(self._next) > _MAX_GATES:
            self._next.popitem(last=False)
        if wait > 0:
            await self._sleep(wait)


@dataclass(frozen=True, slots=True)
class Session:
    """One request's view of a HubSpot portal: the token and its account key."""

    account: str
    token: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class HubSpotClient:
    def __init__(self, upstream: Upstream, gate: SearchGate, *, base_url: str | None) -> None:
        self.upstream = upstream
        self.gate = gate
        self.base_url = base_url or API_HOST
        self.zones: OrderedDict[str, tzinfo] = OrderedDict()  # portal time zones, for DAILY

    def session(self, auth: Auth) -> Session:
        token = auth_value(auth, "access_token")
        return Session(account_key("hubspot", self.base_url, token), token)

    async def _call(
        self,
        session: Session,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        idempotent: bool = True,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        try:
            body = await self.upstream.request(
                method,
                self.base_url + path,
                account=session.account,
                deadline=deadline,
                idempotent=idempotent,
                headers=session.headers,
                params=params,
                json=json,
                secrets=(session.token,),
            )
        except DailyLimit as exc:
            zone = self.zones.get(session.account)
            if zone is not None:
                exc.retry_after = until_midnight(self.upstream.clock(), zone)
            raise
        except UpstreamError as exc:
            exc.message = scrub(exc.message, (session.token,))
            exc.args = (exc.message,)
            raise
        if not isinstance(body, dict):
            raise UpstreamFailed(f"{SERVICE} answered {method} {path} with an unexpected body")
        return body

    async def account_info(self, session: Session, *, deadline: Deadline) -> dict[str, Any]:
        return await self._call(session, "GET", "/account-info/v3/details", deadline=deadline)

    async def probe(self, session: Session, path: str, *, deadline: Deadline) -> None:
        """One `limit=1` read: proves the scope behind `path`."""
        await self._call(session, "GET", path, deadline=deadline, params={"limit": 1})

    async def list_contacts(
        self,
        session: Session,
        *,
        after: str | None,
        limit: int,
        properties: str,
        deadline: Deadline,
    ) -> dict[str, Any]:
        params: dict[str, str | int] = {
            "limit": limit,
            "properties": properties,
            "archived": "false",
        }
        if after is not None:
            params["after"] = after
        return await self._call(
            session, "GET", "/crm/v3/objects/contacts", deadline=deadline, params=params
        )

    async def search_contacts(
        self, session: Session, body: Mapping[str, Any], *, deadline: Deadline
    ) -> dict[str, Any]:
        await self.gate.wait(session.account, deadline)
        return await self._call(
            session, "POST", "/crm/v3/objects/contacts/search", deadline=deadline, json=body
        )

    async def get_contact(
        self,
        session: Session,
        ref: str,
        *,
        properties: str,
        associations: str | None,
        by_email: bool = False,
        deadline: Deadline,
    ) -> dict[str, Any] | None:
        """The live contact by id (a merged-away id answers its survivor) or primary email;
        None when HubSpot knows none."""
        params: dict[str, str | int] = {"properties": properties}
        if associations:
            params["associations"] = associations
        if by_email:
            params["idProperty"] = "email"
        path = "/crm/v3/objects/contacts/" + quote(ref, safe="@")
        try:
            return await self._call(session, "GET", path, deadline=deadline, params=params)
        except UpstreamRejected as exc:
            if exc.upstream_status == 404:
                return None
            raise

    async def batch_read(
        self,
        session: Session,
        kind: str,
        ids: Sequence[str],
        properties: Sequence[str],
        *,
        deadline: Deadline,
    ) -> list[dict[str, Any]]:
        """Records of `kind` by id (HubSpot drops unknown ids, answering 207)."""
        body = await self._call(
            session,
            "POST",
            f"/crm/v3/objects/{kind}/batch/read",
            deadline=deadline,
            json={"inputs": [{"id": i} for i in ids], "properties": list(properties)},
        )
        results = body.get("results")
        return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []

    async def create(
        self, session: Session, kind: str, body: Mapping[str, Any], *, deadline: Deadline
    ) -> dict[str, Any]:
        return await self._call(
            session,
            "POST",
            f"/crm/v3/objects/{kind}",
            deadline=deadline,
            idempotent=False,  # a repeated create duplicates
            json=dict(body),
        )

    async def ticket_pipelines(self, session: Session, *, deadline: Deadline) -> list[Any]:
        body = await self._call(session, "GET", "/crm/v3/pipelines/tickets", deadline=deadline)
        results = body.get("results")
        return results if isinstance(results, list) else []

    async def owners(
        self, session: Session, *, after: str | None, limit: int, deadline: Deadline
    ) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": limit, "archived": "false"}
        if after is not None:
            params["after"] = after
        return await self._call(session, "GET", "/crm/v3/owners", deadline=deadline, params=params)
