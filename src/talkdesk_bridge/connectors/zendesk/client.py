"""The Zendesk Support API v2 endpoints the connector uses, over the shared `Upstream` caller.

Two callers, two rate-limit buckets: the incremental export has its own 10-a-minute bucket
(header `zendesk-ratelimit-incremental-exports`), so it is paced apart and never spends the
account's general budget. The subdomain is one DNS label before it becomes a host; ids that go
into a path are digits only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ..._errors import Unauthorized, UpstreamError, UpstreamFailed, UpstreamUnavailable
from ..._upstream import Deadline, Upstream, account_key
from .._base import Auth, auth_value

__all__ = [
    "EXPORT_BUCKET",
    "AuthType",
    "Session",
    "ZendeskClient",
    "checked_id",
    "export_rate_headers",
    "general_rate_headers",
    "refine",
]

SERVICE = "Zendesk"
EXPORT_BUCKET = "zendesk-ratelimit-incremental-exports"
AuthType = Literal["oauth2", "api_token"]
_ID = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
_BUCKET = re.compile(r"(total|remaining|resets)=(\d+)")
# Zendesk's advice when a 429 carries no Retry-After.
_DEFAULT_RETRY = 60.0


def checked_id(value: object) -> str | None:
    """`value` as a Zendesk id (positive int64 digits), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _ID.fullmatch(value.strip()):
        return None
    return value.strip()


def _bucket(response: httpx.Response, now: float, name: str) -> tuple[int | None, float | None]:
    parts = dict(_BUCKET.findall(response.headers.get(name, "")))
    remaining, resets = parts.get("remaining"), parts.get("resets")
    return (
        None if remaining is None else int(remaining),
        None if resets is None else now + int(resets),
    )


def export_rate_headers(response: httpx.Response, now: float) -> tuple[int | None, float | None]:
    return _bucket(response, now, EXPORT_BUCKET)


def general_rate_headers(response: httpx.Response, now: float) -> tuple[int | None, float | None]:
    remaining = response.headers.get("ratelimit-remaining") or response.headers.get(
        "x-rate-limit-remaining"
    )
    reset = response.headers.get("ratelimit-reset")  # seconds until the window resets
    try:
        return (
            None if remaining is None else int(remaining),
            None if reset is None else now + float(reset),
        )
    except ValueError:
        return None, None


def refine(response: httpx.Response, error: UpstreamError) -> UpstreamError:
    """A 429 without Retry-After waits for the bucket's reset, else Zendesk's advised minute
    (the shared reading would retry after one second and burn the bucket)."""
    if response.status_code != 429 or "retry-after" in response.headers:
        return error
    _, wait = _bucket(response, 0.0, EXPORT_BUCKET)
    if wait is None:
        _, wait = general_rate_headers(response, 0.0)
    wait = wait if wait and 0 < wait <= 3600 else _DEFAULT_RETRY
    return UpstreamUnavailable(error.message, retry_after=wait, upstream_status=429)


@dataclass(frozen=True, slots=True)
class Session:
    """One request's view of a Zendesk account: where to call and with which credential."""

    subdomain: str
    base_url: str
    account: str  # the general rate-limit bucket
    export_account: str  # the incremental exports' own bucket
    authorization: str = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False, default=())

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization}

    @property
    def web(self) -> str:
        """The agent UI's host (links for agents always point at Zendesk itself)."""
        return f"https://{self.subdomain}.zendesk.com"


class ZendeskClient:
    def __init__(
        self, upstream: Upstream, export: Upstream, *, base_url: str | None, auth_type: AuthType
    ) -> None:
        self.upstream = upstream
        self.export_upstream = export
        self._base_url = base_url
        self.auth_type = auth_type

    def session(self, auth: Auth) -> Session:
        subdomain = auth_value(auth, "subdomain", "label").lower()
        secrets: tuple[str, ...]
        if self.auth_type == "oauth2":
            token = auth_value(auth, "access_token")
            authorization, secrets = f"Bearer {token}", (token,)
        else:
            email = auth_value(auth, "email")
            if "@" not in email or ":" in email:
                raise Unauthorized("auth.email must be the agent's email address")
            token = auth_value(auth, "api_token")
            basic = base64.b64encode(f"{email}/token:{token}".encode()).decode()
            authorization, secrets = f"Basic {basic}", (token, basic)
        base = self._base_url or f"https://{subdomain}.zendesk.com"
        # The host is part of the account: the same token means nothing on another one.
        key = account_key("zendesk", base, subdomain, authorization)
        return Session(
            subdomain, base, key, account_key("zendesk-export", key), authorization, secrets
        )

    # --- plumbing -----------------------------------------------------------------------

    async def call(
        self,
        session: Session,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        idempotent: bool,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        export: bool = False,
    ) -> dict[str, Any]:
        upstream = self.export_upstream if export else self.upstream
        body = await upstream.request(
            method,
            session.base_url + "/api/v2" + path,
            account=session.export_account if export else session.account,
            deadline=deadline,
            idempotent=idempotent,
            headers={**session.headers, **(headers or {})},
            json=json,
            params=params,
            secrets=session.secrets,
        )
        if not isinstance(body, dict):
            raise UpstreamFailed(f"{SERVICE} answered {path} with an unexpected body")
        return body

    async def get(
        self,
        session: Session,
        path: str,
        *,
        deadline: Deadline,
        params: Mapping[str, str | int] | None = None,
    ) -> dict[str, Any]:
        return await self.call(
            session, "GET", path, deadline=deadline, idempotent=True, params=params
        )

    # --- reads --------------------------------------------------------------------------

    async def me(self, session: Session, *, deadline: Deadline) -> dict[str, Any]:
        return _dict(await self.get(session, "/users/me", deadline=deadline), "user")

    async def export_users(
        self,
        session: Session,
        *,
        cursor: str | None,
        start_time: int | None,
        per_page: int,
        deadline: Deadline,
    ) -> dict[str, Any]:
        params: dict[str, str | int] = {"per_page": per_page, "include": "identities"}
        if cursor is not None:
            params["cursor"] = cursor
        else:
            params["start_time"] = start_time or 0
        return await self.call(
            session,
            "GET",
            "/incremental/users/cursor",
            deadline=deadline,
            idempotent=True,
            params=params,
            export=True,
        )

    async def organizations(
        self, session: Session, *, after: str | None, deadline: Deadline
    ) -> dict[str, Any]:
        params: dict[str, str | int] = {"page[size]": 100}
        if after:
            params["page[after]"] = after
        return await self.get(session, "/organizations", deadline=deadline, params=params)

    async def user(self, session: Session, user_id: str, *, deadline: Deadline) -> dict[str, Any]:
        return _dict(await self.get(session, f"/users/{user_id}", deadline=deadline), "user")

    async def search_users(
        self, session: Session, params: Mapping[str, str | int], *, deadline: Deadline
    ) -> list[dict[str, Any]]:
        body = await self.get(session, "/users/search", deadline=deadline, params=params)
        return _dicts(body.get("users"))

    async def requested_tickets(
        self, session: Session, user_id: str, *, per_page: int, deadline: Deadline
    ) -> list[dict[str, Any]]:
        body = await self.get(
            session,
            f"/users/{user_id}/tickets/requested",
            deadline=deadline,
            params={"per_page": per_page, "sort_by": "updated_at", "sort_order": "desc"},
        )
        return _dicts(body.get("tickets"))

    async def agents(
        self, session: Session, *, after: str | None, deadline: Deadline
    ) -> dict[str, Any]:
        params: dict[str, str | int] = {"page[size]": 100}
        if after:
            params["page[after]"] = after
        # role[] twice: a mapping holds one value per key, so it travels in the path.
        return await self.get(
            session, "/users?role%5B%5D=agent&role%5B%5D=admin", deadline=deadline, params=params
        )

    # --- writes -------------------------------------------------------------------------

    async def create_ticket(
        self, session: Session, ticket: Mapping[str, Any], *, key: str, deadline: Deadline
    ) -> dict[str, Any]:
        # With an Idempotency-Key a replay returns the same ticket: safe to retry.
        body = await self.call(
            session,
            "POST",
            "/tickets",
            deadline=deadline,
            idempotent=True,
            json={"ticket": dict(ticket)},
            headers={"Idempotency-Key": key},
        )
        return _dict(body, "ticket")

    async def add_comment(
        self, session: Session, ticket_id: str, body: str, *, deadline: Deadline
    ) -> dict[str, Any]:
        answer = await self.call(
            session,
            "PUT",
            f"/tickets/{ticket_id}",
            deadline=deadline,
            idempotent=False,  # a repeat would add the note twice
            json={"ticket": {"comment": {"body": body, "public": False}}},
        )
        return _dict(answer, "ticket")

    async def create_or_update_user(
        self, session: Session, user: Mapping[str, Any], *, deadline: Deadline
    ) -> dict[str, Any]:
        answer = await self.call(
            session,
            "POST",
            "/users/create_or_update",
            deadline=deadline,
            # Matched by email: a repeat finds the same user. Without one it could duplicate.
            idempotent=bool(user.get("email")),
            json={"user": dict(user)},
        )
        return _dict(answer, "user")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _dict(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise UpstreamFailed(f"{SERVICE} answered without its {key!r} object")
    return value
