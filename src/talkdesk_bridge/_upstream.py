"""Calling an external service's HTTP API: the parts every HTTP connector shares.

- `classify` turns an httpx response or exception into the bridge's `UpstreamError` classes, the
  one place that decides what an upstream status means for Talkdesk.
- `RetryPolicy` (modelled on hynek/stamina): retry only errors whose class is retriable, only for
  idempotent calls (or calls the upstream provably did not process: a 429, a refused
  connection), with exponential backoff and jitter, never past the request's `Deadline`.
- `RateBudget` paces calls per upstream *account* from the rate-limit headers the service sends;
  `InProcessRateBudget` keeps that state in this process (a shared store can implement the same
  protocol). Accounts are named by `account_key`, a hash: credentials are never used as keys.
- `Upstream` holds the one pooled `httpx.AsyncClient` and runs a call through all of the above.

Credentials never reach a log line, an exception or an error message: messages quote only the
upstream's own error text, scrubbed of the secrets sent with the call.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from ._errors import (
    InvalidRequest,
    UpstreamError,
    UpstreamFailed,
    UpstreamGarbled,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from ._observability import record_upstream
from ._transport import AiohttpTransport

__all__ = [
    "Answer",
    "Clock",
    "Deadline",
    "InProcessRateBudget",
    "RateBudget",
    "RateHeaders",
    "Refine",
    "RetryPolicy",
    "Sleep",
    "Upstream",
    "account_key",
    "classify",
    "scrub",
]

log = logging.getLogger("talkdesk_bridge.upstream")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
# A vendor's own reading of a failed answer (e.g. a 403 that means "rate limited").
Refine = Callable[[httpx.Response, UpstreamError], UpstreamError]
# (calls remaining, window reset as unix time) from a vendor's rate-limit headers.
RateHeaders = Callable[[httpx.Response, float], tuple[int | None, float | None]]

_MESSAGE_LIMIT = 300
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Longest wait a rate-limit header may ask for; anything longer is a broken header.
_MAX_RESET_WAIT = 3600.0
# Bytes no HTTP field value may hold (RFC 9110 5.5: CTLs other than HTAB).
_UNSENDABLE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def account_key(service: str, *secrets: str) -> str:
    """A stable, non-reversible name for the upstream account a credential belongs to."""
    digest = hashlib.sha256(service.encode())
    for secret in secrets:
        digest.update(b"\0" + secret.encode())
    return digest.hexdigest()[:32]


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


class Deadline:
    """A request's time budget; every wait and every upstream call must fit in what is left."""

    __slots__ = ("_clock", "expires_at")

    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.expires_at = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def allows(self, wait: float, call: float = 0.1) -> bool:
        """Whether waiting `wait` seconds still leaves `call` seconds for a call afterwards.

        Without that margin a paced wait can eat the whole budget and end in a timeout (504)
        where the truth is "rate limited, come back later" (503 with Retry-After).
        """
        return wait + call < self.remaining()

    def timeout(self, cap: float) -> float:
        return max(0.001, min(cap, self.remaining()))


# --- classification ---------------------------------------------------------------------------


def _upstream_message(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of the first error in a JSON error body, when there is one."""
    try:
        body = orjson.loads(response.content)
    except ValueError:
        return None, None
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else body
    if not isinstance(first, dict):
        return None, None
    code, message = first.get("code"), first.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )


def _seconds(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _retry_after(response: httpx.Response, now: float, *, limited: bool) -> float | None:
    """Seconds until the upstream accepts calls again: Retry-After, else (for a 429 only, as
    every answer carries it) the rate-limit window's reset."""
    after = _seconds(response.headers.get("retry-after"))
    if after is None and limited:
        reset = _seconds(response.headers.get("x-ratelimit-reset"))
        after = None if reset is None else reset - now
    if after is None:
        return None
    return min(max(after, 0.0), _MAX_RESET_WAIT)


def classify(
    outcome: httpx.Response | BaseException,
    *,
    service: str,
    now: float | None = None,
    secrets: Iterable[str] = (),
) -> UpstreamError | None:
    """The bridge error an upstream outcome means, or None for a usable (2xx) response.

    401 -> UpstreamUnauthorized; 403/404/409/422 (and other 4xx) -> UpstreamRejected;
    429 and 5xx -> UpstreamUnavailable with `retry_after`; timeouts -> UpstreamTimeout; other
    transport errors -> UpstreamUnavailable; undecodable JSON (a ValueError) -> UpstreamFailed.
    """
    secrets = tuple(secrets)
    if isinstance(outcome, httpx.TimeoutException):
        return UpstreamTimeout(f"{service} did not answer in time")
    if isinstance(outcome, TimeoutError):
        return UpstreamTimeout(f"{service} did not answer in time")
    if isinstance(outcome, httpx.TransportError):
        # The exception's text names the host and the failure, never headers.
        return UpstreamUnavailable(f"{service} could not be reached ({type(outcome).__name__})")
    if isinstance(outcome, ValueError):
        return UpstreamGarbled(f"{service} answered with a body that is not valid JSON")
    if isinstance(outcome, BaseException):
        return UpstreamFailed(f"calling {service} failed ({type(outcome).__name__})")
    status = outcome.status_code
    if 200 <= status < 300:
        return None
    code, text = _upstream_message(outcome)
    detail = scrub((text or code or outcome.reason_phrase or "")[:_MESSAGE_LIMIT], secrets)
    said = f": {detail}" if detail else ""
    wall = time.time() if now is None else now
    if status == 401:
        return UpstreamUnauthorized(
            f"{service} rejected the credentials{said}", upstream_status=status
        )
    if status == 429:
        return UpstreamUnavailable(
            f"{service} rate limit reached",
            retry_after=_retry_after(outcome, wall, limited=True) or 1.0,
            upstream_status=status,
        )
    if status >= 500:
        return UpstreamUnavailable(
            f"{service} is unavailable ({status}){said}",
            retry_after=_retry_after(outcome, wall, limited=False),
            upstream_status=status,
        )
    if 400 <= status < 500:
        return UpstreamRejected(
            f"{service} refused the request ({status}){said}", upstream_status=status
        )
    return UpstreamFailed(
        f"{service} answered with unexpected status {status}", upstream_status=status
    )


# --- retries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter, for retriable errors only."""

    attempts: int = 4
    wait_initial: float = 0.1
    wait_max: float = 5.0
    wait_exp_base: float = 2.0
    wait_jitter: float = 0.1

    def should_retry(
        self, error: UpstreamError, attempt: int, *, idempotent: bool, sent: bool = True
    ) -> bool:
        """`sent=False`: the request never left (connect failure), so repeating it is safe."""
        if attempt >= self.attempts or not error.retriable:
            return False
        # A 429 is refused before any work is done; other failures may have half-happened.
        return idempotent or not sent or error.upstream_status == 429

    def wait(self, attempt: int, error: UpstreamError, rng: random.Random | None = None) -> float:
        jitter = (rng or random).uniform(0, self.wait_jitter)
        backoff = min(self.wait_max, self.wait_initial * self.wait_exp_base ** (attempt - 1))
        if error.upstream_status == 429 and error.retry_after is not None:
            # The reset is when the window opens; backing off past it only wastes the budget.
            return error.retry_after + jitter
        return max(backoff + jitter, error.retry_after or 0.0)


# --- rate limits --------------------------------------------------------------------------------


class RateBudget(Protocol):
    """Per-account pacing from the upstream's rate-limit headers."""

    async def delay(self, account: str, now: float) -> float:
        """Seconds to wait before the next call for `account`; reserves that call."""

    async def observe(
        self, account: str, *, remaining: int | None, reset_at: float | None, now: float
    ) -> None:
        """Record what the upstream said is left of the current window."""


@dataclass(slots=True)
class _Window:
    remaining: int
    reset_at: float


class InProcessRateBudget:
    """Rate-limit windows per account, in this process (bounded LRU of accounts).

    When a window is nearly spent, calls are spread over what is left of it instead of
    running into 429s; when it is spent, callers wait for the reset.
    """

    def __init__(self, *, low_water: int = 10, max_accounts: int = 10_000) -> None:
        self._low_water = low_water
        self._max_accounts = max_accounts
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    async def delay(self, account: str, now: float) -> float:
        window = self._windows.get(account)
        if window is None or now >= window.reset_at:
            return 0.0
        left = window.reset_at - now
        if window.remaining <= 0:
            return left
        window.remaining -= 1
        if window.remaining >= self._low_water:
            return 0.0
        # Spread the last few calls of the window evenly over its rest.
        return left / (window.remaining + 2)

    async def observe(
        self, account: str, *, remaining: int | None, reset_at: float | None, now: float
    ) -> None:
        if remaining is None or reset_at is None or reset_at <= now:
            return
        reset_at = min(reset_at, now + _MAX_RESET_WAIT)
        window = self._windows.get(account)
        if window is not None and window.reset_at == reset_at:
            # Answers arrive out of order; the lowest count is the latest news.
            window.remaining = min(window.remaining, remaining)
        else:
            self._windows[account] = _Window(remaining, reset_at)
        self._windows.move_to_end(account)
        while len(self._windows) > self._max_accounts:
            self._windows.popitem(last=False)


def _default_rate_headers(response: httpx.Response, now: float) -> tuple[int | None, float | None]:
    remaining = _seconds(response.headers.get("x-ratelimit-remaining"))
    return (
        None if remaining is None else int(remaining),
        _seconds(response.headers.get("x-ratelimit-reset")),
    )


def _unconfirmed(
    service: str, method: str, error: UpstreamError, *, idempotent: bool, sent: bool
) -> UpstreamError:
    """A write that reached the service but was not confirmed is not "try again later" (503/504
    invite a retry, and a retry could write twice): it is a 502 that says so."""
    if idempotent or not sent or not error.retriable or error.upstream_status == 429:
        return error
    return UpstreamFailed(
        f"{service} did not confirm the {method}; it may have been applied: check before "
        "repeating it",
        upstream_status=error.upstream_status,
    )


# --- the caller -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    body: Any  # decoded
    headers: httpx.Headers


class Upstream:
    """One service's pooled HTTP client plus its timeouts, retries and rate-limit pacing."""

    def __init__(
        self,
        service: str,
        *,
        timeout: float,
        policy: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        max_connections: int = 100,
        refine: Refine | None = None,
        rate_headers: RateHeaders | None = None,
        decode: Callable[[bytes], Any] | None = None,
    ) -> None:
        """`refine` and `rate_headers` are the vendor's hooks: how it says what `classify`
        cannot know, and where its rate-limit headers are (default: X-RateLimit-*); `decode`
        reads a 2xx body for vendors that do not answer JSON (a ValueError: garbled)."""
        self.service = service
        self._decode: Callable[[bytes], Any] = decode or orjson.loads
        self._refine = refine
        self._rate_headers = rate_headers or _default_rate_headers
        self.label = service.lower()  # metrics label: the connector's name
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.budget: RateBudget = budget or InProcessRateBudget()
        self.clock = clock
        self.sleep = sleep
        self._transport = transport
        self._headers = dict(headers or {})
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._client is None:
            transport = self._transport or AiohttpTransport(
                max_connections=self._limits.max_connections or 100
            )
            self._client = httpx.AsyncClient(
                transport=transport,
                headers=self._headers,
                timeout=self.timeout,
                limits=self._limits,
                follow_redirects=False,
                trust_env=False,
            )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError(f"the {self.service} client is not started")
        return self._client

    async def _pace(self, account: str, deadline: Deadline) -> None:
        wait = await self.budget.delay(account, self.clock())
        if wait <= 0:
            return
        if not deadline.allows(wait):
            record_upstream(self.label, error="RateLimitBudget")
            raise UpstreamUnavailable(
                f"{self.service} rate limit reached for this account", retry_after=wait
            )
        record_upstream(self.label, waited=wait)
        await self.sleep(wait)

    async def _observe(self, account: str, response: httpx.Response) -> None:
        remaining, reset_at = self._rate_headers(response, self.clock())
        if response.status_code == 429:
            remaining = 0
        await self.budget.observe(
            account,
            remaining=None if remaining is None else int(remaining),
            reset_at=reset_at,
            now=self.clock(),
        )

    def _build(
        self,
        method: str,
        url: str,
        content: bytes | None,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> httpx.Request:
        """The request, or 422 when a value cannot travel in one. Connectors validate what
        they send first (credentials are a 401 there); this keeps any slip from being a 500."""
        unsendable = InvalidRequest(f"a value of this request cannot be sent to {self.service}")
        try:
            request = self.client.build_request(
                method, url, content=content, params=params, headers=headers, timeout=timeout
            )
        except (httpx.InvalidURL, ValueError, TypeError):  # non-ASCII in a header, a bad URL
            raise unsendable from None
        # httpx passes control characters in header values; the wire (or aiohttp) would not.
        if any(_UNSENDABLE.search(value) for _, value in request.headers.raw):
            raise unsendable
        return request

    async def request(
        self,
        method: str,
        url: str,
        *,
        account: str,
        deadline: Deadline,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        secrets: Iterable[str] = (),
    ) -> Any:
        """The decoded body of a 2xx answer; otherwise raises an `UpstreamError`. `content`
        is a body already encoded (its Content-Type in `headers`), instead of `json`."""
        answer = await self.exchange(
            method,
            url,
            account=account,
            deadline=deadline,
            idempotent=idempotent,
            headers=headers,
            json=json,
            content=content,
            params=params,
            secrets=secrets,
        )
        return answer.body

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        account: str,
        deadline: Deadline,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        secrets: Iterable[str] = (),
    ) -> Answer:
        """`request`, with the answer's headers (e.g. the server's clock in `Date`)."""
        secrets = tuple(secrets)
        call_headers = dict(headers or {})
        if content is None and json is not None:
            content = orjson.dumps(json)
            call_headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            await self._pace(account, deadline)
            if deadline.expired:
                raise UpstreamTimeout(f"{self.service} did not answer within the time budget")
            sent = True
            error: UpstreamError
            limit = deadline.timeout(self.timeout)
            request = self._build(method, url, content, params, call_headers, limit)
            try:
                async with asyncio.timeout(limit):
                    response = await self.client.send(request)
            except (httpx.HTTPError, TimeoutError) as exc:
                sent = not isinstance(exc, _NOT_SENT)
                error = classify(exc, service=self.service) or UpstreamFailed(str(exc))
                record_upstream(self.label, outcome=type(exc).__name__)
            else:
                record_upstream(self.label, outcome=str(response.status_code))
                await self._observe(account, response)
                outcome = classify(
                    response, service=self.service, now=self.clock(), secrets=secrets
                )
                if outcome is not None and self._refine is not None:
                    outcome = self._refine(response, outcome)
                if outcome is None:
                    try:
                        return Answer(self._decode(response.content), response.headers)
                    except ValueError as exc:
                        outcome = classify(exc, service=self.service)
                        assert outcome is not None
                error = outcome
            record_upstream(self.label, error=type(error).__name__)
            if not self.policy.should_retry(error, attempt, idempotent=idempotent, sent=sent):
                raise _unconfirmed(self.service, method, error, idempotent=idempotent, sent=sent)
            wait = self.policy.wait(attempt, error)
            if not deadline.allows(wait):
                raise error
            record_upstream(self.label, retry=True)
            log.info(
                "%s %s failed (%s), retry %d in %.2fs",
                method,
                httpx.URL(url).path,
                error.upstream_status or type(error).__name__,
                attempt,
                wait,
            )
            await self.sleep(wait)
