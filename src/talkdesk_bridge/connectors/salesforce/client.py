"""The Salesforce REST API calls the connector makes, over the shared `Upstream` caller.

The token travels only in the Authorization header, to a host `hosts.valid_instance_url`
accepted. Salesforce's errors are JSON arrays of `{message, errorCode}`; `refine` reads them:
401 `INVALID_SESSION_ID` stays a 401 (Talkdesk refreshes the token), 403
`REQUEST_LIMIT_EXCEEDED` is "come back later" (503 with Retry-After), never an auth error.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from ..._errors import (
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from ..._upstream import Deadline, Upstream, scrub

__all__ = [
    "SERVICE",
    "ApiError",
    "Rejected",
    "SalesforceClient",
    "Session",
    "checked_id",
    "error_of",
    "rate_headers",
    "refine",
    "server_time",
]

SERVICE = "Salesforce"
# 15- or 18-character record ids; the first three characters name the object.
_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?", re.ASCII)
PREFIXES = {"contact": "003", "lead": "00Q", "user": "005", "account": "001", "case": "500"}
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
# A spent daily allowance: there is nothing to gain by asking again within a request.
_LIMIT_RETRY = 60.0
_CONCURRENCY_RETRY = 2.0
_RETRIABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "QUERY_TIMEOUT", "SERVER_UNAVAILABLE"})


def checked_id(value: object, *kinds: str) -> str | None:
    """`value` when it is a Salesforce id of one of `kinds` (by prefix), else None."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        return None
    if kinds and value[:3] not in {PREFIXES[k] for k in kinds}:
        return None
    return value


def kind_of(record_id: str) -> str | None:
    return next((k for k, p in PREFIXES.items() if record_id.startswith(p)), None)


@dataclass(frozen=True, slots=True)
class ApiError:
    code: str | None
    message: str | None
    body: Any


def error_of(response: httpx.Response) -> ApiError:
    """The first `{errorCode, message}` of a Salesforce error body (an array, or an object
    for OAuth endpoints)."""
    try:
        body = orjson.loads(response.content)
    except ValueError:
        text = response.text.strip()[:200] if response.content else None
        return ApiError(None, text or None, None)
    first = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        return ApiError(None, None, body)
    code = first.get("errorCode", first.get("error"))
    message = first.get("message", first.get("error_description"))
    return ApiError(
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
        body,
    )


class Rejected(UpstreamRejected):
    """A refusal with Salesforce's own error (validation, duplicates) for actions to read."""

    def __init__(self, message: str, status: int, api: ApiError) -> None:
        super().__init__(message, upstream_status=status)
        self.api = api


def refine(response: httpx.Response, error: UpstreamError) -> UpstreamError:
    """Salesforce's meaning of a failed answer (the `Upstream` hook)."""
    found = error_of(response)
    # The token went out in this request's header: it never comes back in a message.
    sent = response.request.headers.get("authorization", "") if _has_request(response) else ""
    said = scrub((found.message or found.code or "")[:300], [sent.removeprefix("Bearer ")])
    status = response.status_code
    if status == 401:
        return UpstreamUnauthorized(
            f"{SERVICE} rejected the session" + (f": {said}" if said else ""),
            upstream_status=401,
        )
    if status == 403 and found.code == "REQUEST_LIMIT_EXCEEDED":
        concurrent = "Concurrent" in (found.message or "")
        return UpstreamUnavailable(
            f"{SERVICE} API limit reached: {said}",
            retry_after=_CONCURRENCY_RETRY if concurrent else _LIMIT_RETRY,
            upstream_status=403,
        )
    if found.code in _RETRIABLE_CODES:
        return UpstreamUnavailable(f"{SERVICE} is busy: {said}", upstream_status=status)
    if 400 <= status < 500 and isinstance(error, UpstreamRejected):
        return Rejected(f"{SERVICE} refused the request ({status}): {said}", status, found)
    return error


def _has_request(response: httpx.Response) -> bool:
    try:
        _ = response.request
    except RuntimeError:  # a response built by hand (a composite subresponse)
        return False
    return True


def rate_headers(response: httpx.Response, now: float) -> tuple[int | None, float | None]:
    """The `Upstream` hook: remaining calls from `Sforce-Limit-Info`. The allowance is a
    rolling 24 h: when it is spent, pace for a minute instead of spending calls on 403s."""
    match = _LIMIT_INFO.search(response.headers.get("sforce-limit-info", ""))
    if match is None:
        return None, None
    remaining = max(0, int(match[2]) - int(match[1]))
    return remaining, (now + _LIMIT_RETRY if remaining == 0 else None)


def server_time(headers: httpx.Headers) -> int | None:
    """The server's clock from an answer's `Date` (the last one, should a proxy add one)."""
    dates = headers.get_list("date")
    if dates:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            return int(email.utils.parsedate_to_datetime(dates[-1]).timestamp())
    return None


@dataclass(frozen=True, slots=True)
class Session:
    """One request's view of an org: its instance, token and rate-limit account."""

    instance_url: str
    account: str
    token: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class SalesforceClient:
    def __init__(self, upstream: Upstream, *, version: str) -> None:
        self.upstream = upstream
        self.version = version

    @property
    def data_path(self) -> str:
        return f"/services/data/{self.version}"

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
    ) -> Any:
        return await self.upstream.request(
            method,
            session.instance_url + path,
            account=session.account,
            deadline=deadline,
            idempotent=idempotent,
            headers={**session.headers, **(headers or {})},
            json=json,
            params=params,
            secrets=(session.token,),
        )

    async def userinfo(
        self, login_url: str, token: str, account: str, *, deadline: Deadline
    ) -> dict[str, Any]:
        body = await self.upstream.request(
            "GET",
            login_url + "/services/oauth2/userinfo",
            account=account,
            deadline=deadline,
            idempotent=True,
            headers={"Authorization": f"Bearer {token}"},
            secrets=(token,),
        )
        if not isinstance(body, dict):
            raise UpstreamFailed(f"{SERVICE} userinfo answered with an unexpected body")
        return body

    async def server_clock(self, session: Session, *, deadline: Deadline) -> int | None:
        """The server's time, from the `Date` of the cheapest authenticated call (the API
        version's resource list)."""
        answer = await self.upstream.exchange(
            "GET",
            session.instance_url + self.data_path + "/",
            account=session.account,
            deadline=deadline,
            idempotent=True,
            headers=session.headers,
            secrets=(session.token,),
        )
        return server_time(answer.headers)

    async def query(
        self,
        session: Session,
        soql: str,
        *,
        deadline: Deadline,
        all_rows: bool = False,
        batch_size: int | None = None,
    ) -> dict[str, Any]:
        """One page of a query (no query locator followed: callers page by keyset)."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        body = await self.call(
            session,
            "GET",
            self.data_path + ("/queryAll" if all_rows else "/query"),
            deadline=deadline,
            idempotent=True,
            params={"q": soql},
            headers=headers,
        )
        return _records_body(body)

    async def search(
        self, session: Session, sosl: str, *, deadline: Deadline
    ) -> list[dict[str, Any]]:
        body = await self.call(
            session,
            "GET",
            self.data_path + "/search",
            deadline=deadline,
            idempotent=True,
            params={"q": sosl},
        )
        rows = body.get("searchRecords") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise UpstreamFailed(f"{SERVICE} answered a search without searchRecords")
        return [r for r in rows if isinstance(r, dict)]

    async def composite_queries(
        self, session: Session, queries: Mapping[str, tuple[str, bool]], *, deadline: Deadline
    ) -> dict[str, dict[str, Any] | UpstreamError]:
        """Several queries in one round trip (`/composite`, at most 5 queries): each one's
        records body, or the error it met. `queries`: reference -> (SOQL, queryAll)."""
        requests = [
            {
                "method": "GET",
                "url": self.data_path
                + ("/queryAll" if all_rows else "/query")
                + "?q="
                + quote(soql, safe=""),
                "referenceId": ref,
            }
            for ref, (soql, all_rows) in queries.items()
        ]
        body = await self.call(
            session,
            "POST",
            self.data_path + "/composite",
            deadline=deadline,
            idempotent=True,  # queries only: repeating them changes nothing
            json={"allOrNone": False, "compositeRequest": requests},
        )
        answers = body.get("compositeResponse") if isinstance(body, dict) else None
        if not isinstance(answers, list):
            raise UpstreamFailed(f"{SERVICE} answered a composite call without its responses")
        out: dict[str, dict[str, Any] | UpstreamError] = {}
        for answer in answers:
            if not isinstance(answer, dict) or answer.get("referenceId") not in queries:
                continue
            ref = str(answer["referenceId"])
            status = answer.get("httpStatusCode")
            if status == 200:
                try:
                    out[ref] = _records_body(answer.get("body"))
                except UpstreamFailed as exc:
                    out[ref] = exc
                continue
            fake = httpx.Response(
                status if isinstance(status, int) and 400 <= status < 600 else 502,
                content=orjson.dumps(answer.get("body")),
            )
            generic: UpstreamError = UpstreamRejected(
                f"{SERVICE} refused a query ({fake.status_code})", upstream_status=fake.status_code
            )
            if fake.status_code >= 500:
                generic = UpstreamUnavailable(
                    f"{SERVICE} is unavailable ({fake.status_code})",
                    upstream_status=fake.status_code,
                )
            out[ref] = refine(fake, generic)
        for ref in queries:
            out.setdefault(ref, UpstreamFailed(f"{SERVICE} left out the answer to {ref}"))
        return out

    async def create(
        self, session: Session, sobject: str, fields: Mapping[str, Any], *, deadline: Deadline
    ) -> str:
        """A new record's id (creates are never retried blindly)."""
        body = await self.call(
            session,
            "POST",
            f"{self.data_path}/sobjects/{sobject}",
            deadline=deadline,
            idempotent=False,
            json=dict(fields),
        )
        new_id = body.get("id") if isinstance(body, dict) else None
        if checked_id(new_id) is None:
            raise UpstreamFailed(f"{SERVICE} created a {sobject} but answered without its id")
        assert isinstance(new_id, str)
        return new_id


def _records_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise UpstreamFailed(f"{SERVICE} answered a query without its records")
    return body


def records(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in body["records"] if isinstance(r, dict)]


def first_match(error: UpstreamError) -> str | None:
    """The id of the record a DUPLICATES_DETECTED answer points at."""
    found = error.api if isinstance(error, Rejected) else None
    if found is None or found.code != "DUPLICATES_DETECTED":
        return None
    body = found.body
    first = body[0] if isinstance(body, list) and body else body
    result = first.get("duplicateResult") if isinstance(first, dict) else None
    matches = result.get("matchResults") if isinstance(result, dict) else None
    for match in matches if isinstance(matches, list) else []:
        for item in match.get("matchRecords", []) if isinstance(match, dict) else []:
            record = item.get("record") if isinstance(item, dict) else None
            if isinstance(record, dict) and (rid := checked_id(record.get("Id"))):
                return rid
    return None


def validation_message(error: UpstreamError) -> str | None:
    """A Salesforce validation error's message, for an action's 400."""
    found = error.api if isinstance(error, Rejected) else None
    if found is None or error.upstream_status != 400:
        return None
    return found.message or found.code


def ids(values: Sequence[str]) -> list[str]:
    return [v for v in values if checked_id(v)]
