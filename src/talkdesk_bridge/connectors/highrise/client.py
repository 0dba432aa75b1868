"""Highrise's XML API, the calls the connector makes, over the shared `Upstream` caller.

Every account has its own host, `https://{account}.highrisehq.com`, built here from a
validated DNS label (so a user's input can never pick another host); redirects are never
followed (a 302 means the account's SSL setting or name is wrong). The token travels only
in the Basic `Authorization` header; `/me.xml` answers it back in its body, so bodies are
never logged or quoted, except the `<error>` texts of a 422.

Highrise's own reading of failed answers (`refine`): 503 + `Retry-After` is its rate limit
(150 calls per 5 s per account; email search 2 per 10 s), refused before any work, so the
wait is honoured exactly, on writes too; 422 `<errors>` and 507 (the plan's limit) are
refusals with a message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..._errors import (
    UpstreamError,
    UpstreamFailed,
    UpstreamGarbled,
    UpstreamRejected,
    UpstreamUnavailable,
)
from ..._upstream import Deadline, Upstream, account_key, scrub
from .._base import Auth, auth_value
from . import xml

__all__ = [
    "USER_AGENT",
    "HighriseClient",
    "Session",
    "checked_id",
    "rate_headers",
    "refine",
    "since_param",
]

SERVICE = "Highrise"
USER_AGENT = "talkdesk-bridge Highrise connector (https://www.talkdesk.com/)"
_ID = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
_MESSAGE_LIMIT = 300
_MAX_WAIT = 3600.0


def checked_id(value: object) -> str | None:
    """A Highrise record id (positive integer) as text, or None: ids reach URL paths."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and _ID.fullmatch(value.strip()):
        return value.strip()
    return None


def since_param(epoch: int) -> str:
    """Highrise's `since`: 14 digits of UTC, second resolution."""
    import datetime as dt

    moment = dt.datetime.fromtimestamp(max(0, epoch), dt.UTC)
    return moment.strftime("%Y%m%d%H%M%S")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(value, 0.0), _MAX_WAIT) if value == value else None


def _errors(response: httpx.Response) -> str:
    """The `<error>` texts of a 422 (Rails' `<errors>`), joined; "" when there are none."""
    try:
        body = xml.decode(response.content)
    except ValueError:
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):
        errors = errors.get("error")
    items = errors if isinstance(errors, list) else [errors]
    texts = [str(e).strip() for e in items if isinstance(e, str) and e.strip()]
    return "; ".join(texts)[:_MESSAGE_LIMIT]


def _email_search(request: httpx.Request) -> bool:
    return request.url.path.endswith("/people/search.xml") and any(
        key == "criteria[email]" for key in request.url.params
    )


def refine(response: httpx.Response, error: UpstreamError) -> UpstreamError:
    """Highrise's reading of a failed answer (`Upstream`'s hook)."""
    status = response.status_code
    if status in (503, 429) and (after := _retry_after(response)) is not None:
        # The documented rate-limit answer: nothing was done, so even a write may repeat
        # after the wait (status 429 tells the retry policy so).
        which = "email search" if _email_search(response.request) else "API"
        return UpstreamUnavailable(
            f"Highrise {which} rate limit reached", retry_after=after, upstream_status=429
        )
    if status in (301, 302, 303, 307, 308):
        return UpstreamFailed(
            "Highrise redirected the call (the account's SSL setting or name is not what the "
            "bridge uses); redirects are not followed",
            upstream_status=status,
        )
    if status == 422:
        said = _errors(response)
        return UpstreamRejected(
            "Highrise refused the data" + (f": {said}" if said else " (no reason given)"),
            upstream_status=422,
        )
    if status == 507:
        return UpstreamRejected(
            "Highrise refused: the account has reached its plan's limit (507 Insufficient Storage)",
            upstream_status=507,
        )
    if status == 404:
        return UpstreamRejected("Highrise: the record could not be found", upstream_status=404)
    return error


def rate_headers(response: httpx.Response, now: float) -> tuple[int | None, float | None]:
    """Highrise sends no rate-limit headers; a rate-limit answer closes the account's window
    until `Retry-After` (except email search's own limit, which spares the rest)."""
    if response.status_code not in (503, 429) or _email_search(response.request):
        return None, None
    after = _retry_after(response)
    return (None, None) if after is None else (0, now + after)


@dataclass(frozen=True, slots=True)
class Session:
    """One request's view of a Highrise account: its base URL, token and account key."""

    account: str  # the subdomain
    base_url: str
    key: str
    token: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        basic = base64.b64encode(f"{self.token}:X".encode()).decode()
        return {"Authorization": f"Basic {basic}"}

    @property
    def web(self) -> str:
        """The account's web address (people's pages live under it)."""
        return f"https://{self.account}.highrisehq.com"


class HighriseClient:
    def __init__(self, upstream: Upstream, *, base_url: str | None) -> None:
        self.upstream = upstream
        self.base_url = base_url

    def session(self, auth: Auth) -> Session:
        token = auth_value(auth, "api_token")
        account = auth_value(auth, "account", "label").lower()
        base = self.base_url or f"https://{account}.highrisehq.com"
        return Session(account, base, account_key("highrise", base, account, token), token)

    async def _call(
        self,
        session: Session,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        params: Mapping[str, str | int] | None = None,
        body: bytes | None = None,
    ) -> Any:
        headers = session.headers
        if body is not None:
            headers["Content-Type"] = "application/xml"  # else Highrise reads form data
        try:
            return await self.upstream.request(
                method,
                session.base_url + path,
                account=session.key,
                deadline=deadline,
                idempotent=method == "GET",  # no idempotency key: a POST is never repeated
                headers=headers,
                params=params,
                content=body,
                secrets=(session.token,),
            )
        except UpstreamGarbled:
            raise UpstreamGarbled(
                f"{SERVICE} answered {path} with a body that is not acceptable XML"
            ) from None
        except UpstreamError as exc:
            exc.message = scrub(exc.message, (session.token,))
            exc.args = (exc.message,)
            raise

    async def _one(self, session: Session, path: str, root: str, **kw: Any) -> dict[str, Any]:
        body = await self._call(session, kw.pop("method", "GET"), path, **kw)
        value = body.get(root) if isinstance(body, dict) else None
        if not isinstance(value, dict):
            raise UpstreamFailed(f"{SERVICE} answered {path} without a <{root}>")
        return value

    async def _many(
        self, session: Session, path: str, root: str, item: str, **kw: Any
    ) -> list[dict[str, Any]]:
        body = await self._call(session, "GET", path, **kw)
        if not isinstance(body, dict) or root not in body:
            raise UpstreamFailed(f"{SERVICE} answered {path} without a <{root}> list")
        return xml.many(body[root], item)

    async def me(self, session: Session, *, deadline: Deadline) -> dict[str, Any]:
        return await self._one(session, "/me.xml", "user", deadline=deadline)

    async def people_since(
        self, session: Session, since: int, offset: int, *, deadline: Deadline
    ) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"since": since_param(since)}
        if offset:
            params["n"] = offset
        return await self._many(
            session, "/people.xml", "people", "person", deadline=deadline, params=params
        )

    async def person(self, session: Session, person_id: str, *, deadline: Deadline) -> Any:
        return await self._one(session, f"/people/{person_id}.xml", "person", deadline=deadline)

    async def search(
        self, session: Session, criteria: str, value: str, *, deadline: Deadline
    ) -> list[dict[str, Any]]:
        return await self._many(
            session,
            "/people/search.xml",
            "people",
            "person",
            deadline=deadline,
            params={"term" if criteria == "term" else f"criteria[{criteria}]": value},
        )

    async def recordings(
        self, session: Session, person_id: str, kind: str, offset: int, *, deadline: Deadline
    ) -> list[dict[str, Any]]:
        """A person's notes or emails (`kind`), 25 per page from `offset`."""
        params = {"n": offset} if offset else None
        return await self._many(
            session,
            f"/people/{person_id}/{kind}s.xml",
            f"{kind}s",
            kind,
            deadline=deadline,
            params=params,
        )

    async def tasks(
        self, session: Session, person_id: str, *, deadline: Deadline
    ) -> list[dict[str, Any]]:
        return await self._many(
            session, f"/people/{person_id}/tasks.xml", "tasks", "task", deadline=deadline
        )

    async def users(self, session: Session, *, deadline: Deadline) -> list[dict[str, Any]]:
        return await self._many(session, "/users.xml", "users", "user", deadline=deadline)

    async def create(
        self, session: Session, things: str, root: str, fields: Mapping[str, Any], *,
        deadline: Deadline,
    ) -> dict[str, Any]:  # fmt: skip
        return await self._one(
            session,
            f"/{things}.xml",
            root,
            method="POST",
            deadline=deadline,
            body=xml.dump(root, fields),
        )
