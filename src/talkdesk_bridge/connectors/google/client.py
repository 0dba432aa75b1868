"""Google's People API (v1), the calls the connector makes, over the shared `Upstream` caller.

Google's own reading of failed answers lives in `refine`: an expired sync token is a 400
(`EXPIRED_SYNC_TOKEN`; 410 in old documents), a missing scope a 403 whose message names the
scope to grant, a quota 429 carries no Retry-After (the buckets are per minute). The token
travels only in the Authorization header; nothing from a request reaches a path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from ..._errors import UpstreamError, UpstreamFailed, UpstreamRejected, UpstreamUnavailable
from ..._upstream import Deadline, Upstream, account_key, scrub
from .._base import Auth, auth_value

__all__ = [
    "API_HOST",
    "SCOPE_PREFIX",
    "GoogleClient",
    "ScopeMissing",
    "Session",
    "SyncTokenExpired",
    "rate_headers",
    "refine",
]

SERVICE = "Google"
API_HOST = "https://people.googleapis.com"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
_MESSAGE_LIMIT = 300
# Sync and page tokens are Google's opaque base64-ish strings: checked before they are sent.
_TOKEN = re.compile(r"[A-Za-z0-9_\-=.~+/]{1,2048}", re.ASCII)


class SyncTokenExpired(UpstreamRejected):
    """Google no longer knows the sync token: the connector starts a full sync."""


class ScopeMissing(UpstreamRejected):
    """The token lacks the OAuth scope a method needs (a 403 naming it)."""


def opaque_token(value: object) -> str | None:
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def _error(response: httpx.Response) -> tuple[str, str | None]:
    """(message, ErrorInfo reason) of Google's error envelope."""
    try:
        body = orjson.loads(response.content)
    except ValueError:
        return "", None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", None
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    reason = None
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
            reason = detail["reason"]
            break
    return str(message)[:_MESSAGE_LIMIT], reason


def refine(response: httpx.Response, error: UpstreamError, now: float) -> UpstreamError:
    """Google's reading of a failed answer (`Upstream`'s hook; `now` from the caller's clock)."""
    status = response.status_code
    message, reason = _error(response)
    if (
        status == 410
        or reason == "EXPIRED_SYNC_TOKEN"
        or "sync token is expired" in message.lower()
    ):
        return SyncTokenExpired("Google's sync token expired", upstream_status=status)
    if status == 403 and (reason == "ACCESS_TOKEN_SCOPE_INSUFFICIENT" or "scopes" in message):
        return ScopeMissing("Google refused: insufficient scopes", upstream_status=403)
    if status == 403 and reason in ("SERVICE_DISABLED", "accessNotConfigured"):
        return UpstreamRejected(
            "the People API is not enabled in the OAuth client's Google Cloud project",
            upstream_status=403,
        )
    if status == 429 and "retry-after" not in response.headers:
        # Per-minute buckets and no Retry-After: come back when the next minute starts.
        wait = max(1.0, 60.0 - math.fmod(now, 60.0))
        return UpstreamUnavailable(
            "Google's per-user quota is spent for this minute",
            retry_after=wait,
            upstream_status=429,
        )
    if message and isinstance(error, UpstreamRejected):
        return UpstreamRejected(
            f"Google refused the request ({status}): {message}", upstream_status=status
        )
    return error


def rate_headers(response: httpx.Response, now: float) -> tuple[int | None, float | None]:
    """Google sends no rate-limit headers; a quota 429 closes the account's minute."""
    if response.status_code != 429:
        return None, None
    after = response.headers.get("retry-after")
    try:
        wait = float(after) if after is not None else 60.0 - math.fmod(now, 60.0)
    except ValueError:
        wait = 60.0 - math.fmod(now, 60.0)
    return 0, now + min(max(wait, 1.0), 3600.0)


@dataclass(frozen=True, slots=True)
class Session:
    """One request's view of a Google account: the token and its account key."""

    account: str
    token: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class GoogleClient:
    def __init__(self, upstream: Upstream, *, base_url: str | None) -> None:
        self.upstream = upstream
        self.base_url = (base_url or API_HOST) + "/v1"

    def session(self, auth: Auth) -> Session:
        token = auth_value(auth, "access_token")
        return Session(account_key("google", self.base_url, token), token)

    async def _call(
        self,
        session: Session,
        method: str,
        path: str,
        *,
        scope: str,
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
        except ScopeMissing:
            raise ScopeMissing(
                f"Google refused: the access token lacks the scope {SCOPE_PREFIX}{scope}; "
                "add it to the integration's OAuth scopes and reconnect",
                upstream_status=403,
            ) from None
        except UpstreamError as exc:
            exc.message = scrub(exc.message, (session.token,))
            exc.args = (exc.message,)
            raise
        if not isinstance(body, dict):
            raise UpstreamFailed(f"{SERVICE} answered {path} with an unexpected body")
        return body

    async def connections(
        self, session: Session, params: Mapping[str, str | int], *, deadline: Deadline
    ) -> dict[str, Any]:
        return await self._call(
            session,
            "GET",
            "/people/me/connections",
            scope="contacts.readonly",
            deadline=deadline,
            params=params,
        )

    async def search(
        self, session: Session, query: str, *, read_mask: str, size: int, deadline: Deadline
    ) -> list[dict[str, Any]]:
        body = await self._call(
            session,
            "GET",
            "/people:searchContacts",
            scope="contacts.readonly",
            deadline=deadline,
            params={"query": query, "readMask": read_mask, "pageSize": size},
        )
        results = body.get("results")
        found = []
        for result in results if isinstance(results, list) else ():
            person = result.get("person") if isinstance(result, dict) else None
            if isinstance(person, dict):
                found.append(person)
        return found

    async def create_contact(
        self, session: Session, person: Mapping[str, Any], *, fields: str, deadline: Deadline
    ) -> dict[str, Any]:
        return await self._call(
            session,
            "POST",
            "/people:createContact",
            scope="contacts",
            deadline=deadline,
            idempotent=False,  # a repeated create duplicates
            params={"personFields": fields},
            json=dict(person),
        )
