"""The reusable upstream parts (`_upstream.py`): classification, retries, pacing, deadlines.

HTTP is served by httpx's own MockTransport (no network); the project's code runs for real.
"""

from __future__ import annotations

import logging
import random
import traceback
from typing import Any

import httpx
import orjson
import pytest

from talkdesk_bridge._errors import (
    InvalidRequest,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from talkdesk_bridge._upstream import (
    Deadline,
    InProcessRateBudget,
    RetryPolicy,
    Upstream,
    account_key,
    classify,
)

SECRET = "tok-very-secret-42"
NOW = 1_720_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    content = b"" if body is None else orjson.dumps(body)
    return httpx.Response(status, content=content, headers=headers)


def error_list(code: str, message: str) -> dict[str, Any]:
    return {
        "type": "error.list",
        "request_id": "r1",
        "errors": [{"code": code, "message": message}],
    }


# --- classify ---------------------------------------------------------------------------------


def test_classify_statuses() -> None:
    assert classify(response(200, {}), service="X") is None
    assert classify(response(204), service="X") is None
    unauthorized = classify(
        response(401, error_list("unauthorized", "Access Token Invalid")), service="X"
    )
    assert isinstance(unauthorized, UpstreamUnauthorized) and unauthorized.status == 401
    assert "Access Token Invalid" in unauthorized.message
    for status in (403, 404, 409, 422):
        error = classify(response(status, error_list("c", f"m{status}")), service="X")
        assert isinstance(error, UpstreamRejected)
        assert error.status == status and error.upstream_status == status
        assert f"m{status}" in error.message and not error.retriable
    bad_request = classify(response(400, error_list("parameter_invalid", "nope")), service="X")
    assert isinstance(bad_request, UpstreamRejected) and bad_request.status == 502
    for status in (500, 502, 503, 504):
        error = classify(response(status, "<html>busy</html>"), service="X")
        assert isinstance(error, UpstreamUnavailable) and error.retriable and error.status == 503


def test_classify_rate_limits_use_the_reset_header() -> None:
    limited = classify(
        response(
            429,
            error_list("rate_limit_exceeded", "slow down"),
            **{"X-RateLimit-Reset": str(int(NOW) + 7)},
        ),
        service="X",
        now=NOW,
    )
    assert isinstance(limited, UpstreamUnavailable)
    assert limited.retry_after == 7 and limited.headers() == {"Retry-After": "7"}
    # Retry-After wins when present; a reset in the past still asks for a short wait.
    assert classify(response(429, **{"Retry-After": "3"}), service="X", now=NOW).retry_after == 3  # type: ignore[union-attr]
    stale = classify(
        response(429, **{"X-RateLimit-Reset": str(int(NOW) - 5)}), service="X", now=NOW
    )
    assert stale is not None and stale.headers() == {"Retry-After": "1"}


def test_classify_exceptions() -> None:
    request = httpx.Request("GET", "https://api.example.com/x")
    assert isinstance(
        classify(httpx.ReadTimeout("t", request=request), service="X"), UpstreamTimeout
    )
    assert isinstance(classify(TimeoutError(), service="X"), UpstreamTimeout)
    refused = classify(httpx.ConnectError("refused", request=request), service="X")
    assert isinstance(refused, UpstreamUnavailable) and refused.retriable
    assert isinstance(classify(ValueError("bad json"), service="X"), UpstreamFailed)


def test_classify_scrubs_secrets_from_upstream_messages() -> None:
    echoed = response(404, error_list("not_found", f"no token {SECRET} here"))
    error = classify(echoed, service="X", secrets=[SECRET])
    assert error is not None and SECRET not in error.message and "[redacted]" in error.message


def test_account_key_is_stable_and_hides_the_secret() -> None:
    key = account_key("intercom", "https://api.intercom.io", SECRET)
    assert key == account_key("intercom", "https://api.intercom.io", SECRET)
    assert key != account_key("intercom", "https://api.intercom.io", SECRET + "x")
    assert key != account_key("intercom", "https://api.eu.intercom.io", SECRET)
    assert SECRET not in key and len(key) == 32


# --- retry policy, deadline, rate budget ------------------------------------------------------


def test_retry_policy_decisions() -> None:
    policy = RetryPolicy(attempts=3)
    busy = UpstreamUnavailable("busy", upstream_status=503)
    limited = UpstreamUnavailable("limited", retry_after=4, upstream_status=429)
    rejected = UpstreamRejected("no", upstream_status=404)
    assert policy.should_retry(busy, 1, idempotent=True)
    assert not policy.should_retry(busy, 3, idempotent=True)  # attempts are bounded
    assert not policy.should_retry(busy, 1, idempotent=False)  # a create may have happened
    assert policy.should_retry(busy, 1, idempotent=False, sent=False)  # it never left
    assert policy.should_retry(limited, 1, idempotent=False)  # a 429 did no work
    assert not policy.should_retry(rejected, 1, idempotent=True)
    assert not policy.should_retry(UpstreamFailed("garbled"), 1, idempotent=True)


def test_retry_waits_grow_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(attempts=10, wait_initial=0.1, wait_max=1.0, wait_jitter=0.05)
    rng = random.Random(1)
    busy = UpstreamUnavailable("busy", upstream_status=503)
    waits = [policy.wait(n, busy, rng) for n in range(1, 8)]
    for n, wait in enumerate(waits, start=1):
        base = min(1.0, 0.1 * 2 ** (n - 1))
        assert base <= wait <= base + 0.05
    limited = UpstreamUnavailable("limited", retry_after=6, upstream_status=429)
    assert 6 <= policy.wait(1, limited, rng) <= 6.05  # exactly until the reset, not backoff


def test_deadline() -> None:
    clock = Clock(100.0)
    deadline = Deadline(2.0, clock)
    assert deadline.remaining() == 2.0 and deadline.allows(1.8) and not deadline.allows(1.95)
    assert deadline.allows(1.95, call=0.0)  # a wait must leave room for the call after it
    assert deadline.timeout(10) == 2.0 and deadline.timeout(0.5) == 0.5
    clock.now += 2.5
    assert deadline.expired and deadline.remaining() == 0


async def test_rate_budget_waits_for_the_reset_and_paces_the_tail() -> None:
    budget = InProcessRateBudget(low_water=5)
    assert await budget.delay("a", NOW) == 0  # nothing known yet
    await budget.observe("a", remaining=0, reset_at=NOW + 8, now=NOW)
    assert await budget.delay("a", NOW) == 8
    assert await budget.delay("b", NOW) == 0  # accounts are separate
    assert await budget.delay("a", NOW + 8) == 0  # the window rolled
    await budget.observe("c", remaining=100, reset_at=NOW + 10, now=NOW)
    assert await budget.delay("c", NOW) == 0
    await budget.observe("c", remaining=3, reset_at=NOW + 10, now=NOW)
    spread = [await budget.delay("c", NOW) for _ in range(3)]
    assert all(0 < s < 10 for s in spread) and spread == sorted(spread)
    assert await budget.delay("c", NOW) == 10  # spent: wait for the reset
    # Out-of-order answers: a higher count for the same window does not undo a lower one.
    await budget.observe("c", remaining=50, reset_at=NOW + 10, now=NOW)
    assert await budget.delay("c", NOW) == 10


async def test_rate_budget_is_bounded() -> None:
    budget = InProcessRateBudget(max_accounts=3)
    for n in range(5):
        await budget.observe(f"k{n}", remaining=0, reset_at=NOW + 5, now=NOW)
    assert await budget.delay("k0", NOW) == 0 and await budget.delay("k4", NOW) == 5


# --- the caller -------------------------------------------------------------------------------


def caller(handler: Any, clock: Clock, *, attempts: int = 4, timeout: float = 5.0) -> Upstream:
    return Upstream(
        "Example",
        timeout=timeout,
        policy=RetryPolicy(attempts=attempts, wait_initial=0.1, wait_jitter=0.0),
        transport=httpx.MockTransport(handler),
        headers={"X-Version": "9"},
        clock=clock,
        sleep=clock.sleep,
    )


async def call(up: Upstream, clock: Clock, *, idempotent: bool = True, budget: float = 20) -> Any:
    return await up.request(
        "POST" if not idempotent else "GET",
        "https://api.example.com/things",
        account="acct",
        deadline=Deadline(budget, clock),
        idempotent=idempotent,
        headers={"Authorization": f"Bearer {SECRET}"},
        json={"a": 1} if not idempotent else None,
        secrets=[SECRET],
    )


async def test_reads_are_retried_with_backoff_until_they_succeed() -> None:
    clock = Clock()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response(503) if len(seen) < 3 else response(200, {"ok": True})

    up = caller(handler, clock)
    await up.start()
    try:
        assert await call(up, clock) == {"ok": True}
    finally:
        await up.close()
    assert len(seen) == 3 and clock.sleeps == [0.1, 0.2]
    assert all(r.headers["x-version"] == "9" for r in seen)


async def test_creates_are_not_retried_after_a_5xx_but_are_when_never_sent() -> None:
    clock = Clock()
    calls: list[str] = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append("sent")
        return response(502)

    up = caller(failing, clock)
    await up.start()
    with pytest.raises(UpstreamFailed, match="may have been applied"):  # 502, not "retry later"
        await call(up, clock, idempotent=False)
    await up.close()
    assert calls == ["sent"]

    def refused_once(request: httpx.Request) -> httpx.Response:
        calls.append("try")
        if calls.count("try") == 1:
            raise httpx.ConnectError("refused", request=request)
        return response(200, {"id": "1"})

    up = caller(refused_once, clock)
    await up.start()
    assert await call(up, clock, idempotent=False) == {"id": "1"}
    await up.close()


async def test_429_waits_for_the_reset_when_it_fits_else_503_with_retry_after() -> None:
    clock = Clock()

    def handler(request: httpx.Request) -> httpx.Response:
        reset = {"X-RateLimit-Reset": str(int(NOW) + 6), "X-RateLimit-Remaining": "0"}
        if clock.now < NOW + 6:
            return response(429, error_list("rate_limit_exceeded", "Exceeded"), **reset)
        return response(
            200,
            {"ok": 1},
            **{"X-RateLimit-Remaining": "99", "X-RateLimit-Reset": str(int(NOW) + 10)},
        )

    up = caller(handler, clock)
    await up.start()
    assert await call(up, clock, idempotent=False) == {"ok": 1}  # a 429 did nothing: safe
    assert clock.sleeps == [6.0]
    clock.now = NOW
    clock.sleeps.clear()
    with pytest.raises(UpstreamUnavailable) as raised:
        await call(up, clock, budget=2)
    await up.close()
    assert clock.sleeps == [] and raised.value.headers() == {"Retry-After": "6"}


async def test_undecodable_json_and_timeouts() -> None:
    clock = Clock()
    up = caller(lambda r: httpx.Response(200, content=b'{"half":'), clock)
    await up.start()
    with pytest.raises(UpstreamFailed):
        await call(up, clock)
    await up.close()

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    up = caller(slow, clock, attempts=2)
    await up.start()
    with pytest.raises(UpstreamTimeout):
        await call(up, clock)
    await up.close()


async def test_credentials_never_reach_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    replies = iter(
        [
            response(503, error_list("service_unavailable", f"echo {SECRET}")),
            response(401, error_list("unauthorized", f"bad token {SECRET}")),
        ]
    )
    up = caller(lambda r: next(replies), clock)
    await up.start()
    with pytest.raises(UpstreamUnauthorized) as raised:
        await call(up, clock)
    await up.close()
    assert SECRET not in str(raised.value) and SECRET not in raised.value.message
    assert SECRET not in orjson.dumps(raised.value.body()).decode()
    assert SECRET not in caplog.text
    assert SECRET not in "".join(traceback.format_exception(raised.value))


async def test_the_client_is_pooled_and_must_be_started() -> None:
    clock = Clock()
    up = caller(lambda r: response(200, {}), clock)
    with pytest.raises(RuntimeError):
        _ = up.client
    await up.start()
    first = up.client
    await up.start()
    assert up.client is first
    await up.close()
    await up.close()


async def test_a_garbled_body_is_asked_again_for_reads_only() -> None:
    clock = Clock()
    calls: list[str] = []

    def cut_once(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            return httpx.Response(200, content=b'{"half": ')
        return response(200, {"ok": True})

    up = caller(cut_once, clock)
    await up.start()
    assert await call(up, clock) == {"ok": True}
    assert calls == ["GET", "GET"]
    calls.clear()
    with pytest.raises(UpstreamFailed, match="may have been applied"):
        await call(up, clock, idempotent=False)
    assert calls == ["POST"]
    await up.close()


@pytest.mark.parametrize(
    ("header", "url"),
    [
        ("Bearer \x00", "https://api.example.com/things"),
        ("Bearer tok\r\nX-Injected: 1", "https://api.example.com/things"),
        ("Bearer ｅｖｉｌ", "https://api.example.com/things"),  # noqa: RUF001
        (f"Bearer {SECRET}", "https://api.exa\x00mple.com/things"),
    ],
)
async def test_a_value_no_request_can_carry_is_a_422_and_nothing_is_sent(
    header: str, url: str
) -> None:
    """Connectors validate credentials first (401); this is the defence behind that."""
    clock = Clock()
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return response(200, {"ok": True})

    up = caller(handler, clock)
    await up.start()
    try:
        with pytest.raises(InvalidRequest) as caught:
            await up.request(
                "GET",
                url,
                account="acct",
                deadline=Deadline(5, clock),
                idempotent=True,
                headers={"Authorization": header},
                secrets=[SECRET],
            )
    finally:
        await up.close()
    assert caught.value.status == 422 and not sent
    assert SECRET not in caught.value.message and "Bearer" not in caught.value.message
