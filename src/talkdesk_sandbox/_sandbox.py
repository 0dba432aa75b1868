"""``VendorSandbox``: the base a vendor sandbox subclasses, and helpers for its routes."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ._clock import Clock, wall_clock
from ._faults import FaultPlan, FaultRule
from ._gateway import Call, Gateway, Reply
from ._rate import RateLimiter, RateState
from ._server import serve_app

__all__ = ["VendorSandbox", "json_response", "reply_response", "vendor_app"]


class VendorSandbox:
    """A fake vendor API: its ASGI ``app`` behind a ``Gateway`` that applies the call log,
    ``latency``, auth, rate limits and faults. Control methods are thread-safe, so a test
    thread may drive a sandbox that ``serve()`` runs in a server thread.

    Subclasses write ``build_app`` and ``authenticate``, and usually ``error_reply``,
    ``rate_headers`` and ``rate_limited``; see the package docstring.
    """

    connector: str = ""  # the bridge connector this sandbox stands in for
    title: str = "vendor sandbox"  # for server thread names and messages

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        rate_aligned: bool = True,
    ) -> None:
        self.clock: Clock = clock if clock is not None else wall_clock
        self.latency = float(latency)  # seconds added to every call
        self.faults = FaultPlan()
        self.calls: list[tuple[str, str]] = []  # (method, path) of every call, in order
        self._rate_aligned = rate_aligned
        self.limiter: RateLimiter | None = None
        if rate_limit is not None:
            self.rate_limit = rate_limit
        self._app: ASGIApp | None = None

    # -- to write in a vendor ------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        """The vendor's routes (called once); ``vendor_app`` builds a Starlette one."""
        raise NotImplementedError

    def authenticate(self, call: Call) -> str | None:
        """The account (or token) a call's credentials belong to; None answers 401."""
        raise NotImplementedError

    def error_reply(self, status: int, message: str | None = None) -> Reply:
        """The vendor's error answer for ``status`` (401s, 429s, injected failures, 404s)."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Injected failure"
        return Reply.json({"error": message or phrase}, status)

    def rate_headers(self, state: RateState) -> list[tuple[str, str]]:
        """Rate-limit headers stamped on every answer past auth (none by default)."""
        return []

    def rate_limited(self, state: RateState | None) -> Reply:
        """The vendor's 429 (``state`` is None when an injected 429 has no limiter)."""
        reply = self.error_reply(429)
        if state is None:
            return reply
        retry = [("Retry-After", str(max(1, round(state.retry_after))))]
        return reply.with_headers([*self.rate_headers(state), *retry])

    def unauthorized(self, call: Call) -> Reply:
        return self.error_reply(401)

    def check_rate(self, account: str, call: Call) -> RateState | None:
        """Spend one call of ``account``'s budget; override for several windows or
        per-endpoint limits. None: no limit."""
        return None if self.limiter is None else self.limiter.hit(account)

    def record(self, call: Call) -> None:
        """Log a call (extend to remember headers, e.g. the API version asked for)."""
        self.calls.append((call.method, call.path))

    # -- ASGI and serving ------------------------------------------------------------------

    @property
    def app(self) -> ASGIApp:
        """The vendor API as an ASGI app (built once): use with ``httpx.ASGITransport``."""
        if self._app is None:
            self._app = Gateway(self.build_app(), self)
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def serve(
        self, host: str = "127.0.0.1", port: int = 0
    ) -> contextlib.AbstractContextManager[str]:
        """Run the app on a real uvicorn server in a thread; yields its base URL. Only a
        served sandbox can inject the socket faults (``reset_next``, ``cut_next``)."""
        return serve_app(self.app, host, port, name=self.title)

    # -- clock and rate limit --------------------------------------------------------------

    @property
    def now(self) -> float:
        return float(self.clock())

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """(calls, window seconds) per account, or None; setting it starts fresh windows."""
        return None if self.limiter is None else (self.limiter.limit, self.limiter.window)

    @rate_limit.setter
    def rate_limit(self, value: tuple[int, float] | None) -> None:
        self.limiter = (
            None
            if value is None
            else RateLimiter(value[0], value[1], self.clock, aligned=self._rate_aligned)
        )

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        path_prefix: str | None = None,
        body: Any = None,
        *,
        method: str | None = None,
    ) -> None:
        """The next ``n`` matching requests fail with ``status`` before the route runs (no
        side effect). ``body``: bytes/str as is, else JSON; default the vendor's error."""
        self.faults.add(FaultRule("fail", n, path_prefix, method, status=status, body=body))

    def rate_limit_burst(self, n: int = 1) -> None:
        """The next ``n`` requests get the vendor's 429, their window reported exhausted."""
        self.fail_next(n, status=429)

    def hang_next(
        self, n: int, seconds: float, path_prefix: str | None = None, *, method: str | None = None
    ) -> None:
        """The next ``n`` matching requests sleep ``seconds`` (real time) before answering."""
        self.faults.add(FaultRule("hang", n, path_prefix, method, seconds=seconds))

    def malformed_next(
        self, n: int = 1, path_prefix: str | None = None, *, method: str | None = None
    ) -> None:
        """The next ``n`` matching requests run, then answer 200 with half their body."""
        self.faults.add(FaultRule("malformed", n, path_prefix, method))

    def garble_next(
        self, n: int = 1, path_prefix: str | None = None, *, method: str | None = None
    ) -> None:
        """The next ``n`` matching requests run; their status stays, their body is garbled
        (neither JSON nor UTF-8)."""
        self.faults.add(FaultRule("garble", n, path_prefix, method))

    def reset_next(
        self,
        n: int = 1,
        path_prefix: str | None = None,
        *,
        method: str | None = None,
        processed: bool = True,
    ) -> None:
        """The next ``n`` matching requests get no answer: the connection is reset (TCP RST).

        With ``processed`` the request runs first (a create takes effect), as when a
        connection dies on the way back. Needs ``serve()``; over ``httpx.ASGITransport`` the
        request raises ``ConnectionResetError`` instead."""
        self.faults.add(FaultRule("reset", n, path_prefix, method, processed=processed))

    def cut_next(
        self, n: int = 1, path_prefix: str | None = None, *, method: str | None = None
    ) -> None:
        """The next ``n`` matching requests run; the answer's status and headers (promising the
        whole body in Content-Length) and half its body go out, then the connection closes.
        Needs ``serve()``; over ``httpx.ASGITransport`` it raises ``ConnectionResetError``."""
        self.faults.add(FaultRule("cut", n, path_prefix, method))

    def trickle_next(
        self,
        n: int = 1,
        seconds: float = 2.0,
        path_prefix: str | None = None,
        *,
        method: str | None = None,
        chunk: int = 16,
    ) -> None:
        """The next ``n`` matching requests run; their answer's body then trickles out in
        ``chunk``-byte pieces spread over ``seconds`` (real time), each piece soon after the
        last, so a per-read timeout never fires. Stops early when the client goes away."""
        if chunk < 1:
            raise ValueError("chunk must be at least 1 byte")
        self.faults.add(FaultRule("trickle", n, path_prefix, method, seconds=seconds, chunk=chunk))

    def random_failures(
        self,
        rate: float,
        statuses: Sequence[int] = (500, 503),
        seed: int | None = 0,
        path_prefix: str | None = None,
        *,
        method: str | None = None,
    ) -> None:
        """Fail each authorised request with probability ``rate``; ``rate=0`` turns it off."""
        self.faults.set_random(rate, statuses, seed, path_prefix, method)

    def reset_faults(self) -> None:
        self.faults.clear()

    # -- observation -----------------------------------------------------------------------

    def call_count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return sum(
            1
            for m, p in self.calls
            if (method is None or m == method.upper())
            and (path_prefix is None or p.startswith(path_prefix))
        )

    @property
    def call_counts(self) -> Counter[tuple[str, str]]:
        return Counter(self.calls)

    def reset_calls(self) -> None:
        self.calls.clear()


# -- helpers for a vendor's routes ----------------------------------------------------------


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def reply_response(reply: Reply) -> Response:
    response = Response(reply.body, status_code=reply.status, media_type=reply.content_type)
    for name, value in reply.headers:
        response.headers.append(name, value)
    return response


def vendor_app(
    sandbox: VendorSandbox,
    routes: Sequence[BaseRoute],
    *,
    errors: Mapping[type[Exception], Callable[[Exception], Reply]] | None = None,
) -> Starlette:
    """A Starlette app for ``routes`` whose 404s and 405s (and the exceptions in ``errors``)
    answer in the vendor's shape; routes find the sandbox at ``request.app.state.sandbox``."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return reply_response(sandbox.error_reply(exc.status_code))

    def handler(render: Callable[[Exception], Reply]) -> Callable[..., Any]:
        async def handle(request: Request, exc: Exception) -> Response:
            return reply_response(render(exc))

        return handle

    handlers: dict[Any, Callable[..., Any]] = {HTTPException: http_error}
    for kind, render in (errors or {}).items():
        handlers[kind] = handler(render)
    app = Starlette(routes=list(routes), exception_handlers=handlers)
    app.state.sandbox = sandbox
    return app
