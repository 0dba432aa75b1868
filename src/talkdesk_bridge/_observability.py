"""Watching the bridge in production: one JSON log line per request, request ids, metrics.

The request middleware keeps a per-request `RequestStats` in a context variable, so code deep
in a connector (retries, rate-limit waits) adds to the request's log line and to the metrics
through `record_upstream` without passing anything around. Nothing here ever sees a credential:
only paths (never query strings), labels and counts are recorded.
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
import re
import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "LATENCY",
    "RATE_LIMIT_WAITS",
    "REQUESTS",
    "UPSTREAM_CALLS",
    "UPSTREAM_RETRIES",
    "JsonFormatter",
    "ObservabilityMiddleware",
    "RecentRequest",
    "RequestStats",
    "current_stats",
    "log_config",
    "metrics_endpoint",
    "recent_requests",
    "record_sync",
    "record_upstream",
]

access_log = logging.getLogger("talkdesk_bridge.access")

_ids = random.Random()
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")  # \Z: "$" lets a final newline in
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

REQUESTS = Counter(
    "talkdesk_bridge_requests_total",
    "Requests answered, by connector, endpoint and status.",
    ["connector", "endpoint", "status"],
)
LATENCY = Histogram(
    "talkdesk_bridge_request_seconds",
    "Time to answer a request, by connector and endpoint.",
    ["connector", "endpoint"],
    buckets=_LATENCY_BUCKETS,
)
UPSTREAM_CALLS = Counter(
    "talkdesk_bridge_upstream_calls_total",
    "Calls to external services, by connector and outcome (HTTP status or error kind).",
    ["connector", "outcome"],
)
UPSTREAM_ERRORS = Counter(
    "talkdesk_bridge_upstream_errors_total",
    "Failed calls to external services, by connector and error kind.",
    ["connector", "kind"],
)
UPSTREAM_RETRIES = Counter(
    "talkdesk_bridge_upstream_retries_total", "Retried upstream calls.", ["connector"]
)
RATE_LIMIT_WAITS = Counter(
    "talkdesk_bridge_upstream_rate_limit_waits_total",
    "Pauses made to respect an upstream rate limit.",
    ["connector"],
)
RATE_LIMIT_SECONDS = Counter(
    "talkdesk_bridge_upstream_rate_limit_wait_seconds_total",
    "Seconds spent waiting for upstream rate limits.",
    ["connector"],
)

SYNC_PAGES = Counter(
    "talkdesk_bridge_sync_pages_total",
    "Contact-sync pages answered, by connector and kind (first, next, last, resync).",
    ["connector", "kind"],
)
SYNC_CONTACTS = Counter(
    "talkdesk_bridge_sync_contacts_total", "Contacts sent to Talkdesk.", ["connector"]
)


@dataclass(frozen=True, slots=True)
class RecentRequest:
    """What the console's health page lists: no payloads, no query strings, no credentials."""

    at: float  # epoch seconds
    method: str
    path: str
    connector: str
    endpoint: str
    status: int
    latency_ms: float


# The latest requests of this process (a bounded ring: constant memory under any load). The
# console's own pages are left out, or its polling would push everything else out.
_RECENT: deque[RecentRequest] = deque(maxlen=100)
_RECENT_SKIP = frozenset({"console"})
_RECENT_PATH_CHARS = 200  # a hostile path is kept short


def recent_requests() -> list[RecentRequest]:
    """Newest first."""
    return list(reversed(_RECENT))


def record_sync(connector: str, kind: str, contacts: int = 0) -> None:
    SYNC_PAGES.labels(connector, kind).inc()
    if contacts:
        SYNC_CONTACTS.labels(connector).inc(contacts)


@dataclass
class RequestStats:
    request_id: str
    connector: str = "-"
    endpoint: str = "-"
    upstream_calls: int = 0
    upstream_retries: int = 0
    rate_limit_waits: int = 0


_current: contextvars.ContextVar[RequestStats | None] = contextvars.ContextVar(
    "talkdesk_bridge_request", default=None
)


def current_stats() -> RequestStats | None:
    return _current.get()


def record_upstream(
    connector: str,
    *,
    outcome: str | None = None,
    error: str | None = None,
    retry: bool = False,
    waited: float | None = None,
) -> None:
    """Count one upstream event for the metrics and for the current request's log line."""
    stats = _current.get()
    if outcome is not None:
        UPSTREAM_CALLS.labels(connector, outcome).inc()
        if stats:
            stats.upstream_calls += 1
    if error is not None:
        UPSTREAM_ERRORS.labels(connector, error).inc()
    if retry:
        UPSTREAM_RETRIES.labels(connector).inc()
        if stats:
            stats.upstream_retries += 1
    if waited is not None:
        RATE_LIMIT_WAITS.labels(connector).inc()
        RATE_LIMIT_SECONDS.labels(connector).inc(waited)
        if stats:
            stats.rate_limit_waits += 1


class ObservabilityMiddleware:
    """Request id in and out, per-request stats, one access line, request metrics.

    `routes` maps known paths to (connector, endpoint) labels; anything else is labelled
    "unknown" so hostile paths cannot blow up the metrics' cardinality. `prefixes` labels
    every path under a prefix alike (the console's pages).
    """

    def __init__(
        self,
        app: ASGIApp,
        routes: dict[str, tuple[str, str]],
        prefixes: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.prefixes = dict(prefixes or {})

    def _labels(self, path: str) -> tuple[str, str]:
        labels = self.routes.get(path)
        if labels is not None:
            return labels
        for prefix, prefixed in self.prefixes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return prefixed
        return ("-", "unknown")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = _header(scope, b"x-request-id")
        # Ids only need to be unique, not unguessable: no system call for randomness.
        request_id = (
            given if given and _REQUEST_ID.match(given) else f"{_ids.getrandbits(128):032x}"
        )
        connector, endpoint = self._labels(scope["path"])
        stats = RequestStats(request_id, connector, endpoint)
        token = _current.set(stats)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
            elapsed = time.perf_counter() - start
            REQUESTS.labels(connector, endpoint, str(status)).inc()
            LATENCY.labels(connector, endpoint).observe(elapsed)
            latency_ms = round(elapsed * 1000, 2)
            if endpoint not in _RECENT_SKIP:
                _RECENT.append(
                    RecentRequest(
                        time.time(),
                        scope["method"],
                        scope["path"][:_RECENT_PATH_CHARS],
                        connector,
                        endpoint,
                        status,
                        latency_ms,
                    )
                )
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],  # never the query string: it may hold `key`
                    "connector": connector,
                    "endpoint": endpoint,
                    "status": status,
                    "latency_ms": latency_ms,
                    "upstream_calls": stats.upstream_calls,
                    "upstream_retries": stats.upstream_retries,
                    "rate_limit_waits": stats.rate_limit_waits,
                },
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format; with several workers, every worker's values combined."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# Standard record attributes, and uvicorn's ANSI-coloured copy of its message.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        # One line per request: strftime and the json module cost twice what this does.
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line: dict[str, Any] = {
            "ts": f"{self._prefix}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            # Exception type only: a traceback's locals or messages could carry request data.
            line["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return orjson.dumps(line, default=str).decode()

    _second = -1
    _prefix = ""


def log_config(level: str, quiet: Collection[str] = ("uvicorn.access",)) -> dict[str, Any]:
    """`logging.config` for uvicorn: everything as JSON lines on stderr, uvicorn's access log
    off (it would print query strings, and our access line replaces it)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            **{name: {"handlers": [], "propagate": False, "level": "CRITICAL"} for name in quiet},
        },
    }
