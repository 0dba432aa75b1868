"""The gateway in front of a vendor's routes: the call log, latency, auth, rate limits and
injected faults, applied in that order before the route runs, plus the socket faults
(connection reset, body cut short, trickling body) that need a real server (``Served``).

What is vendor-specific comes from the ``Vendor`` hooks (``VendorSandbox`` implements them):
who a credential belongs to, the shape of an error, of a 429 and of rate-limit headers.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._faults import FaultPlan, FaultRule
from ._rate import RateState

__all__ = ["Call", "Gateway", "Reply", "Served", "Vendor"]

JSON_TYPE = "application/json; charset=utf-8"
_TRANSPORT = "talkdesk_sandbox.transport"
RawHeaders = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Reply:
    """An answer the gateway sends itself (errors, 401s, 429s)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = JSON_TYPE

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        return cls(status, orjson.dumps(data), list(headers))

    def with_headers(self, headers: Iterable[tuple[str, str]]) -> Reply:
        return Reply(self.status, self.body, [*self.headers, *headers], self.content_type)


@dataclass(frozen=True, slots=True)
class Call:
    """What the hooks see of a request."""

    method: str
    path: str
    headers: Headers
    query: str

    @classmethod
    def of(cls, scope: Scope) -> Call:
        query = scope.get("query_string", b"").decode("latin-1")
        return cls(scope["method"], scope["path"], Headers(scope=scope), query)


class Vendor(Protocol):
    """The hooks the gateway calls (``VendorSandbox`` has them all; override what differs)."""

    latency: float
    faults: FaultPlan

    def record(self, call: Call) -> None: ...
    def authenticate(self, call: Call) -> str | None: ...
    def unauthorized(self, call: Call) -> Reply: ...
    def check_rate(self, account: str, call: Call) -> RateState | None: ...
    def rate_headers(self, state: RateState) -> list[tuple[str, str]]: ...
    def rate_limited(self, state: RateState | None) -> Reply: ...
    def error_reply(self, status: int, message: str | None = None) -> Reply: ...


def _raw(headers: Iterable[tuple[str, str]]) -> RawHeaders:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def send_reply(send: Send, reply: Reply, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = reply.body
    headers = [
        (b"content-type", reply.content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        *_raw(reply.headers),
        *extra,
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gateway:
    """Pure ASGI app: records the call, then latency, hangs, auth, the rate limit and
    injected faults, in that order, before ``app`` runs; stamps rate-limit headers."""

    def __init__(self, app: ASGIApp, vendor: Vendor) -> None:
        self.app = app
        self.vendor = vendor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        vendor, faults = self.vendor, self.vendor.faults
        call = Call.of(scope)
        method, path = call.method, call.path
        vendor.record(call)
        if vendor.latency > 0:
            await anyio.sleep(vendor.latency)
        hang = faults.take("hang", method, path)
        if hang is not None:
            await anyio.sleep(hang.seconds)
        account = vendor.authenticate(call)
        if account is None:
            await send_reply(send, vendor.unauthorized(call))
            return
        state = vendor.check_rate(account, call)
        if state is not None and not state.allowed:
            await send_reply(send, vendor.rate_limited(state))
            return
        pairs = vendor.rate_headers(state) if state is not None else []
        rate = _raw(pairs)
        failure = faults.take("fail", method, path)
        if failure is not None:
            await send_reply(send, self._failure(failure, state, pairs))
            return
        status = faults.random_status(path, method)
        if status is not None:
            await send_reply(send, vendor.error_reply(status), rate)
            return
        await self._route(scope, receive, send, rate)

    def _failure(
        self, rule: FaultRule, state: RateState | None, rate: list[tuple[str, str]]
    ) -> Reply:
        vendor = self.vendor
        if rule.status == 429:
            exhausted = None if state is None else state.exhausted()
            if rule.body is None:
                return vendor.rate_limited(exhausted)
            headers = vendor.rate_headers(exhausted) if exhausted is not None else []
            return Reply(429, fault_body(rule.body), headers)
        if rule.body is None:
            return vendor.error_reply(rule.status).with_headers(rate)
        return Reply(rule.status, fault_body(rule.body), list(rate))

    async def _route(self, scope: Scope, receive: Receive, send: Send, rate: RawHeaders) -> None:
        faults = self.vendor.faults
        method, path = scope["method"], scope["path"]
        if faults.take("malformed", method, path) is not None:
            answer = _Answer()
            await self.app(scope, receive, answer)
            half = answer.body[: max(1, len(answer.body) // 2)]
            await send_reply(send, Reply(200, half), rate)
            return
        if faults.take("garble", method, path) is not None:
            answer = _Answer()
            await self.app(scope, receive, answer)
            body = garble(answer.body)
            answer.headers = [(k, v) for k, v in answer.headers if k.lower() != b"content-length"]
            await send(answer.start([*rate, (b"content-length", str(len(body)).encode())]))
            await send({"type": "http.response.body", "body": body})
            return
        dropped = faults.take("reset", method, path)
        if dropped is not None:
            if dropped.processed:
                await self.app(scope, receive, _Answer())  # done, but the answer is lost
            await _drop(scope, reset=True)
            return
        if faults.take("cut", method, path) is not None:
            answer = _Answer()
            await self.app(scope, receive, answer)
            await send(answer.start(rate))
            half = answer.body[: len(answer.body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            await _drop(scope, reset=False)
            return
        trickle = faults.take("trickle", method, path)
        if trickle is not None:
            answer = _Answer()
            await self.app(scope, receive, answer)
            await _trickle(answer, trickle.seconds, trickle.chunk, rate, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start" and rate:
                message["headers"] = [*message.get("headers", []), *rate]
            await send(message)

        await self.app(scope, receive, stamped)


def fault_body(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()  # e.g. an HTML page from a proxy in front of the API
    return orjson.dumps(body)


def garble(body: bytes) -> bytes:
    """Neither JSON nor UTF-8: every fourth byte replaced by 0xFF (an empty body gets one)."""
    if not body:
        return b"\xff"
    return bytes(0xFF if i % 4 == 0 else b for i, b in enumerate(body))


class _Answer:
    """Collects a route's response instead of sending it."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: RawHeaders = []
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def start(self, rate: RawHeaders) -> Message:
        headers = self.headers + rate
        return {"type": "http.response.start", "status": self.status, "headers": headers}


class Served:
    """What ``serve_app`` runs: the app, handed the connection's transport (uvicorn's ``send``
    is a method of the request cycle that holds it) so that socket faults can cut it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if scope["type"] == "http" and transport is not None:
            scope = {**scope, _TRANSPORT: transport}
        await self.app(scope, receive, send)


async def _drop(scope: Scope, *, reset: bool) -> None:
    """Close the request's connection: with a TCP RST (`reset`), else a plain close."""
    transport = scope.get(_TRANSPORT)
    if transport is None:
        raise ConnectionResetError("the sandbox dropped the connection (needs serve())")
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        # Linger 0: close() sends an RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Let the server notice the connection is gone, so it adds no answer of its own.
    await anyio.sleep(0.01)


async def _trickle(
    answer: _Answer, seconds: float, chunk: int, rate: RawHeaders, receive: Receive, send: Send
) -> None:
    pieces = [answer.body[i : i + chunk] for i in range(0, len(answer.body), chunk)] or [b""]

    async def stream() -> None:
        await send(answer.start(rate))
        # Each piece on its own schedule: the server's loop may round short sleeps to nothing.
        started = time.monotonic()
        for n, piece in enumerate(pieces, 1):
            await anyio.sleep(max(0.0, started + seconds * n / len(pieces) - time.monotonic()))
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def client_left(scope: anyio.CancelScope) -> None:
        # The route has read the request: the next message is the client going away.
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(client_left, group.cancel_scope)
        await stream()
        group.cancel_scope.cancel()
