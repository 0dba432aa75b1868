"""Calls to the company's API over the shared `Upstream`: auth headers, URLs, paging links.

The host never changes: every URL is the mapping's base URL plus a declared path whose
`{slots}` take values percent-encoded as one segment (`/` included), and query parameters are
encoded by httpx. A `Link: rel="next"` from the API is followed only when it stays on the base
URL's scheme, host, port and path; redirects are never followed (the shared client's rule).
Credentials travel only in headers and are scrubbed from every message.
"""

from __future__ import annotations

import base64
import math
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ..._errors import InvalidRequest, UpstreamError, UpstreamFailed, UpstreamUnavailable
from ..._upstream import Answer, Deadline, Upstream, account_key
from .._base import Auth, auth_value
from .mapping import ApiMapping, AuthMapping

__all__ = ["SERVICE", "RestClient", "Session", "WindowBudget", "next_link", "segment"]

SERVICE = "Company API"
USER_AGENT = "talkdesk-bridge REST connector (https://www.talkdesk.com/)"
_MAX_SEGMENT = 256
_MAX_WAIT = 3600.0
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")


def segment(value: str, what: str) -> str:
    """`value` percent-encoded as one path segment; 422 naming `what` when it cannot be one."""
    text = value.strip()
    if not text or len(text) > _MAX_SEGMENT or text in (".", ".."):
        raise InvalidRequest(f"{what} is not a usable id")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        raise InvalidRequest(f"{what} is not a usable id")
    try:
        return quote(text.encode("utf-8"), safe="")
    except UnicodeEncodeError:  # a lone surrogate
        raise InvalidRequest(f"{what} is not a usable id") from None


def next_link(header: str | None) -> str | None:
    """The URL of `rel="next"` in a Link header (RFC 8288), or None."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        params = match.group(2)
        rels = re.search(r'rel\s*=\s*"?([^";]+)"?', params)
        if rels and "next" in rels.group(1).lower().split():
            return match.group(1).strip()
    return None


@dataclass(frozen=True, slots=True)
class Session:
    headers: dict[str, str]
    account: str
    secrets: tuple[str, ...]


class WindowBudget:
    """The mapping's `rate_limit` (requests per window) per account, as a token bucket that
    refills evenly: calls are spaced instead of running into the API's 429s."""

    def __init__(self, requests: int, per_seconds: float, *, max_accounts: int = 10_000) -> None:
        self._capacity = float(requests)
        self._rate = requests / per_seconds
        self._max_accounts = max_accounts
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    async def delay(self, account: str, now: float) -> float:
        tokens, at = self._buckets.get(account, (self._capacity, now))
        tokens = min(self._capacity, tokens + max(0.0, now - at) * self._rate) - 1.0
        self._buckets[account] = (tokens, now)
        self._buckets.move_to_end(account)
        while len(self._buckets) > self._max_accounts:
            self._buckets.popitem(last=False)
        return 0.0 if tokens >= 0 else -tokens / self._rate

    async def observe(
        self, account: str, *, remaining: int | None, reset_at: float | None, now: float
    ) -> None:
        if remaining == 0 and reset_at is not None and reset_at > now:
            # The API says the window is spent (a 429): nothing until its reset.
            wait = min(reset_at - now, _MAX_WAIT)
            self._buckets[account] = (-wait * self._rate, now)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(value, 0.0), _MAX_WAIT) if math.isfinite(value) else None


def refiner(api: ApiMapping) -> Any:
    retry = frozenset(api.retry_statuses)

    def refine(response: httpx.Response, error: UpstreamError) -> UpstreamError:
        status = response.status_code
        if status in (301, 302, 303, 307, 308):
            return UpstreamFailed(
                f"{SERVICE} redirected the call; redirects are not followed (is base_url right?)",
                upstream_status=status,
            )
        if status in retry and status != 429:
            return UpstreamUnavailable(
                f"{SERVICE} asked to retry later ({status})",
                retry_after=_retry_after(response),
                upstream_status=status,
            )
        if status >= 500 and status not in retry:
            # Not a status the mapping calls temporary: asking again would not help.
            return UpstreamFailed(f"{SERVICE} failed ({status})", upstream_status=status)
        return error

    return refine


class RestClient:
    def __init__(
        self, upstream: Upstream, api: ApiMapping, auth: AuthMapping, base_url: str
    ) -> None:
        self.upstream = upstream
        self.api = api
        self.auth = auth
        self.base = base_url.rstrip("/")
        parts = urlsplit(self.base)
        self._origin = (parts.scheme, parts.hostname, parts.port)
        self._base_path = parts.path.rstrip("/")

    def session(self, auth: Auth) -> Session:
        spec = self.auth
        if spec.type == "basic":
            user = auth_value(auth, spec.username_field)
            password = auth_value(auth, spec.password_field)
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
            secrets: tuple[str, ...] = (password, token)
            key = account_key("rest", user, password)
        else:
            value = auth_value(auth, spec.field)
            if spec.type == "bearer":
                headers = {"Authorization": f"Bearer {value}"}
            else:
                assert spec.header is not None
                headers = {spec.header: value}
            secrets = (value,)
            key = account_key("rest", value)
        return Session(headers, key, secrets)

    def url(self, path: str, values: Mapping[str, str] | None = None) -> str:
        """The base URL plus `path` with each `{slot}` taking its value as one segment."""
        given = values or {}

        def fill(match: re.Match[str]) -> str:
            return segment(given.get(match.group(1), ""), match.group(1))

        return self.base + _SLOT.sub(fill, path)

    def follow(self, link: str) -> str:
        """A next link from the API, when it stays where the base URL is."""
        try:
            url = httpx.URL(self.base).join(link)
        except (httpx.InvalidURL, ValueError):
            raise UpstreamFailed(f"{SERVICE} sent a next link that is not a URL") from None
        where = (url.scheme, url.host, url.port)
        path = url.path
        if where != self._origin or not (
            path == self._base_path or path.startswith(self._base_path + "/")
        ):
            raise UpstreamFailed(f"{SERVICE} sent a next link off its base URL; not followed")
        return str(url)

    async def get(
        self,
        session: Session,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        deadline: Deadline,
    ) -> Answer:
        return await self.upstream.exchange(
            "GET",
            url,
            account=session.account,
            deadline=deadline,
            idempotent=True,
            headers=session.headers,
            params=params,
            secrets=session.secrets,
        )

    async def send(
        self, session: Session, method: str, url: str, body: Any, *, deadline: Deadline
    ) -> Any:
        return await self.upstream.request(
            method,
            url,
            account=session.account,
            deadline=deadline,
            idempotent=method == "PUT",
            headers=session.headers,
            json=body if body is not None else {},
            secrets=session.secrets,
        )
