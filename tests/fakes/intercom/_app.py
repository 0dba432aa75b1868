"""Starlette routes of the fake Intercom API, plus the gateway that applies auth, rate limits,
latency and injected faults in front of them."""

from __future__ import annotations

import base64
import binascii
import math
import re
import socket
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._objects import CONTACT_SCHEMA, CONVERSATION_SCHEMA, TICKET_SCHEMA
from ._search import Schema, SearchError, compile_query, decode_cursor, encode_cursor
from ._store import Store

if TYPE_CHECKING:
    from ._fake import FakeIntercom

__all__ = ["ApiError", "Served", "create_app", "error_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_PER_PAGE = 150
_JSON = b"application/json; charset=utf-8"
_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "api_plan_restricted",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    422: "data_invalid",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
_DEFAULT_MESSAGES = {
    401: "Access Token Invalid",
    404: "Resource Not Found",
    405: "Method Not Allowed",
    429: "Exceeded rate limit",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ApiError(Exception):
    """Raised by handlers; rendered as an ``error.list`` body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_body(code: str, message: str | None, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"type": "error.list", "request_id": str(uuid.uuid4()), "errors": [error]}


def _default_error(status: int) -> dict[str, Any]:
    return error_body(
        _DEFAULT_CODES.get(status, "server_error" if status >= 500 else "bad_request"),
        _DEFAULT_MESSAGES.get(status, "Injected failure"),
    )


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _fake(request: Request) -> FakeIntercom:
    fake: FakeIntercom = request.app.state.fake
    return fake


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "bad_request", "Request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "Request body must be a JSON object")
    return data


def _per_page(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str) and re.fullmatch(r"\d+", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ApiError(400, "parameter_invalid", "per_page must be a positive integer", "per_page")
    if value > MAX_PER_PAGE:
        raise ApiError(
            400,
            "parameter_invalid",
            f"per_page must be less than or equal to {MAX_PER_PAGE}",
            "per_page",
        )
    return value


def _pages(page: int, per_page: int, total: int, cursor: str | None, *, omit: bool) -> Any:
    pages: dict[str, Any] = {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": math.ceil(total / per_page),
    }
    if cursor is not None:
        pages["next"] = {"per_page": per_page, "starting_after": cursor}
    elif not omit:
        pages["next"] = None
    return pages


# -- admins ---------------------------------------------------------------------------------


async def me(request: Request) -> Response:
    fake = _fake(request)
    store = fake.store
    admin = store.get_admin(store.me_id)
    assert admin is not None
    return _json(
        {
            **admin,
            "avatar": {"type": "avatar", "image_url": admin["avatar"]},
            "email_verified": True,
            "app": {
                "type": "app",
                "id_code": fake.app_id,
                "name": fake.app_name,
                "region": fake.region.upper(),  # the vendor documents "US", "EU", "AU"
                "timezone": fake.timezone,
                "created_at": store.app_created_at,
                "identity_verification": False,
            },
        }
    )


async def admins(request: Request) -> Response:
    return _json({"type": "admin.list", "admins": _fake(request).store.admins()})


# -- contacts -------------------------------------------------------------------------------


def _list_cursor(seq: int, page: int) -> str:
    return base64.b64encode(orjson.dumps(["list", seq, page])).decode()


def _read_list_cursor(cursor: str) -> tuple[int, int]:
    try:
        tag, seq, page = orjson.loads(base64.b64decode(cursor.encode(), validate=True))
        if tag != "list" or not isinstance(seq, int) or not isinstance(page, int):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ApiError(400, "client_error", "The starting_after cursor is invalid") from exc
    return seq, page


async def list_contacts(request: Request) -> Response:
    fake = _fake(request)
    per_page = _per_page(request.query_params.get("per_page"), 10)
    cursor = request.query_params.get("starting_after")
    after, page = _read_list_cursor(cursor) if cursor else (None, 0)
    records, total, nxt = fake.store.list_contacts(after, per_page)
    next_cursor = None if nxt is None else _list_cursor(nxt, page + 1)
    return _json(
        {
            "type": "list",
            "data": records,
            "total_count": total,
            "pages": _pages(page + 1, per_page, total, next_cursor, omit=fake.omit_last_next),
        }
    )


_CONTACT_BODY_FIELDS = (
    "role",
    "external_id",
    "email",
    "phone",
    "name",
    "avatar",
    "signed_up_at",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
    "custom_attributes",
)


async def create_contact(request: Request) -> Response:
    store = _fake(request).store
    body = await _body(request)
    if not any(body.get(k) for k in ("email", "external_id", "role")):
        raise ApiError(
            400, "parameter_invalid", "A contact needs at least one of email, external_id or role"
        )
    fields = {k: body[k] for k in _CONTACT_BODY_FIELDS if k in body}
    role = fields.setdefault("role", "user")
    if role not in ("user", "lead"):
        raise ApiError(400, "parameter_invalid", "role must be user or lead", "role")
    email = fields.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise ApiError(400, "parameter_invalid", "email is not a valid email address", "email")
    custom = fields.get("custom_attributes")
    if custom is not None and not isinstance(custom, dict):
        raise ApiError(400, "parameter_invalid", "custom_attributes must be an object")
    if fields.get("external_id") is not None:
        fields["external_id"] = str(fields["external_id"])
    with store.lock:  # check-then-insert must not interleave with another writer
        existing = (store.contact_with_email(email) if email else None) or (
            store.contact_with_external_id(fields["external_id"])
            if fields.get("external_id")
            else None
        )
        if existing is not None:
            raise ApiError(
                409,
                "conflict",
                f"A contact matching those details already exists with id={existing}",
            )
        contact = store.add_contact(**fields)
    return _json(contact)


async def get_contact(request: Request) -> Response:
    contact = _fake(request).store.get_contact(request.path_params["contact_id"])
    if contact is None:
        raise ApiError(404, "not_found", "User Not Found")
    return _json(contact)


async def create_note(request: Request) -> Response:
    store = _fake(request).store
    contact_id = request.path_params["contact_id"]
    body = await _body(request)
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise ApiError(400, "parameter_invalid", "body is required", "body")
    admin_id = body.get("admin_id")
    if store.get_contact(contact_id) is None:
        raise ApiError(404, "not_found", "User Not Found")
    if admin_id is not None and store.get_admin(str(admin_id)) is None:
        raise ApiError(404, "not_found", "Admin not found")
    note = store.add_note(contact_id, text, None if admin_id is None else str(admin_id))
    return _json(note)


# -- companies ------------------------------------------------------------------------------


def _page_number(value: str | None) -> int:
    if value is None:
        return 1
    if not re.fullmatch(r"\d+", value) or int(value) < 1:
        raise ApiError(400, "parameter_invalid", "page must be a positive integer", "page")
    return int(value)


async def list_companies(request: Request) -> Response:
    """``POST /companies/list?page=&per_page=``: page-numbered, default 15 per page."""
    fake = _fake(request)
    page = _page_number(request.query_params.get("page"))
    per_page = _per_page(request.query_params.get("per_page"), 15)
    records, total = fake.store.list_companies(page, per_page)
    pages = {
        "type": "pages",
        "next": None,
        "page": page,
        "per_page": per_page,
        "total_pages": math.ceil(total / per_page),
    }
    return _json({"type": "list", "data": records, "pages": pages, "total_count": total})


# -- search ---------------------------------------------------------------------------------


async def _search(
    request: Request, schema: Schema, default_per_page: int, run: Callable[..., Any]
) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    fake = _fake(request)
    body = await _body(request)
    try:
        compiled = compile_query(body.get("query"), schema, fake.store.calendar)
        pagination = body.get("pagination") or {}
        if not isinstance(pagination, dict):
            raise ApiError(400, "parameter_invalid", "pagination must be an object")
        per_page = _per_page(pagination.get("per_page"), default_per_page)
        sort = body.get("sort") or {}
        if not isinstance(sort, dict):
            raise ApiError(400, "parameter_invalid", "sort must be an object")
        sort_name = sort.get("field", "created_at")
        order = sort.get("order", "ascending")
        field = schema.field(sort_name) if isinstance(sort_name, str) else None
        if field is None:
            raise ApiError(400, "parameter_invalid", f"Cannot sort by {sort_name}", "sort")
        if order not in ("ascending", "descending"):
            raise ApiError(
                400, "parameter_invalid", "sort order must be ascending or descending", "sort"
            )
        cursor = pagination.get("starting_after")
        after, page = (None, 0) if cursor is None else decode_cursor(cursor, sort_name, order)
    except SearchError as exc:
        raise ApiError(400, exc.code, exc.message, exc.field) from exc
    result = run(compiled, sort_name, order == "descending", after, per_page)
    next_cursor = None
    if result.has_more and result.records:
        last = result.records[-1]
        value = schema.sort_value(field, last)
        next_cursor = encode_cursor(sort_name, order, value, last["id"], page + 1)
    pages = _pages(page + 1, per_page, result.total, next_cursor, omit=fake.omit_last_next)
    return result.records, result.total, pages


async def search_contacts(request: Request) -> Response:
    store = _fake(request).store
    records, total, pages = await _search(request, CONTACT_SCHEMA, 50, store.search_contacts)
    return _json({"type": "list", "data": records, "total_count": total, "pages": pages})


async def search_conversations(request: Request) -> Response:
    store = _fake(request).store
    found = await _search(request, CONVERSATION_SCHEMA, 20, store.search_conversations)
    records, total, pages = found
    body = {"type": "conversation.list", "conversations": records, "total_count": total}
    return _json({**body, "pages": pages})


# -- conversations --------------------------------------------------------------------------


async def create_conversation(request: Request) -> Response:
    store = _fake(request).store
    body = await _body(request)
    sender = body.get("from")
    if not isinstance(sender, dict) or sender.get("type") not in ("user", "lead", "contact"):
        raise ApiError(400, "parameter_invalid", "from must name a user, lead or contact", "from")
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise ApiError(400, "parameter_invalid", "body is required", "body")
    contact_id = str(sender.get("id") or "")
    if store.get_contact(contact_id) is None:
        raise ApiError(404, "not_found", "User Not Found")
    conversation = store.add_conversation(contact_id, body=text)
    return _json(
        {
            "type": "user_message",
            "id": conversation["source"]["id"],
            "created_at": conversation["created_at"],
            "body": text,
            "message_type": "inapp",
            "conversation_id": conversation["id"],
        }
    )


async def get_conversation(request: Request) -> Response:
    found = _fake(request).store.get_conversation(request.path_params["conversation_id"])
    if found is None:
        raise ApiError(404, "not_found", "Resource Not Found")
    return _json(found)


# -- tickets --------------------------------------------------------------------------------


def _ticket_out(fake: FakeIntercom, ticket: dict[str, Any], version: str | None) -> dict[str, Any]:
    if fake.ticket_state_shape(ticket["id"], version) == "object":
        return ticket
    return {**ticket, "ticket_state": ticket["ticket_state"]["category"]}  # the 2.11 shape


async def ticket_types(request: Request) -> Response:
    return _json({"type": "list", "data": _fake(request).store.ticket_types()})


async def search_tickets(request: Request) -> Response:
    fake = _fake(request)
    records, total, pages = await _search(request, TICKET_SCHEMA, 20, fake.store.search_tickets)
    version = request.headers.get("intercom-version")
    tickets = [_ticket_out(fake, t, version) for t in records]
    return _json({"type": "ticket.list", "tickets": tickets, "total_count": total, "pages": pages})


def _resolve_contact(store: Store, ref: Any) -> str:
    if not isinstance(ref, dict):
        raise ApiError(400, "parameter_invalid", "contacts must be objects", "contacts")
    found: str | None = None
    if ref.get("id"):
        found = str(ref["id"]) if store.get_contact(str(ref["id"])) is not None else None
    elif ref.get("external_id"):
        found = store.contact_with_external_id(str(ref["external_id"]))
    elif ref.get("email"):
        found = store.contact_with_email(str(ref["email"]))
    else:
        raise ApiError(400, "parameter_invalid", "contacts need an id, external_id or email")
    if found is None:
        raise ApiError(404, "not_found", "User Not Found")
    return found


async def create_ticket(request: Request) -> Response:
    fake = _fake(request)
    store = fake.store
    body = await _body(request)
    type_id = body.get("ticket_type_id")
    if type_id is None:
        raise ApiError(400, "parameter_invalid", "ticket_type_id is required", "ticket_type_id")
    if store.get_ticket_type(str(type_id)) is None:
        raise ApiError(400, "parameter_invalid", "Ticket type not found", "ticket_type_id")
    refs = body.get("contacts")
    if not isinstance(refs, list) or not refs:
        raise ApiError(400, "parameter_invalid", "contacts must be a non-empty list", "contacts")
    contact_ids = [_resolve_contact(store, ref) for ref in refs]
    attributes = body.get("ticket_attributes") or {}
    if not isinstance(attributes, dict):
        raise ApiError(400, "parameter_invalid", "ticket_attributes must be an object")
    extra: dict[str, Any] = {}
    if isinstance(body.get("created_at"), int):
        extra["created_at"] = body["created_at"]
    ticket = store.add_ticket(
        contact_ids[0],
        ticket_type_id=str(type_id),
        extra_contact_ids=contact_ids[1:],
        ticket_attributes=attributes,
        **extra,
    )
    return _json(_ticket_out(fake, ticket, request.headers.get("intercom-version")))


async def get_ticket(request: Request) -> Response:
    fake = _fake(request)
    found = fake.store.get_ticket(request.path_params["ticket_id"])
    if found is None:
        raise ApiError(404, "not_found", "Resource Not Found")
    return _json(_ticket_out(fake, found, request.headers.get("intercom-version")))


# -- errors and gateway ---------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _json(error_body(exc.code, exc.message, exc.field), exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _json(_default_error(exc.status_code), exc.status_code)


def _rate_headers(limit: int, remaining: int, reset: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(limit).encode()),
        (b"x-ratelimit-remaining", str(remaining).encode()),
        (b"x-ratelimit-reset", str(reset).encode()),
    ]


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", _JSON),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Gateway:
    """Pure ASGI middleware: records the call, then latency, hangs, auth, the rate limit and
    injected faults, in that order, before the route runs. Also stamps rate-limit headers."""

    def __init__(self, app: ASGIApp, fake: FakeIntercom) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fake = self.fake
        method: str = scope["method"]
        path: str = scope["path"]
        headers = Headers(scope=scope)
        fake.calls.append((method, path))
        fake.versions_seen.append(headers.get("intercom-version"))
        if fake.latency > 0:
            await anyio.sleep(fake.latency)
        hang = fake.faults.take("hang", method, path)
        if hang is not None:
            await anyio.sleep(hang.seconds)
        limiter = fake.limiter
        if headers.get("authorization", "") != f"Bearer {fake.token}":
            remaining, reset = limiter.peek()
            body = orjson.dumps(error_body("unauthorized", "Access Token Invalid"))
            await _send(send, 401, body, _rate_headers(limiter.limit, remaining, reset))
            return
        allowed, remaining, reset = limiter.hit()
        rate = _rate_headers(limiter.limit, remaining, reset)
        if not allowed:
            await _send(send, 429, orjson.dumps(_default_error(429)), rate)
            return
        failure = fake.faults.take("fail", method, path)
        if failure is not None:
            if failure.status == 429:
                rate = _rate_headers(limiter.limit, 0, reset)
            await _send(send, failure.status, _fault_body(failure.status, failure.body), rate)
            return
        status = fake.faults.random_status(path)
        if status is not None:
            await _send(send, status, orjson.dumps(_default_error(status)), rate)
            return
        if fake.faults.take("malformed", method, path) is not None:
            await self.app(scope, receive, _Truncating(send, rate))
            return
        dropped = fake.faults.take("reset", method, path)
        if dropped is not None:
            if dropped.processed:
                await self.app(scope, receive, _Answer())  # done, but the answer is lost
            await _drop(scope, reset=True)
            return
        if fake.faults.take("cut", method, path) is not None:
            answer = _Answer()
            await self.app(scope, receive, answer)
            await send(answer.start(rate))
            half = answer.body[: len(answer.body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            await _drop(scope, reset=False)
            return
        trickle = fake.faults.take("trickle", method, path)
        if trickle is not None:
            answer = _Answer()
            await self.app(scope, receive, answer)
            await _trickle(answer, trickle.seconds, trickle.chunk, rate, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *rate]
            await send(message)

        await self.app(scope, receive, stamped)


def _fault_body(status: int, body: Any) -> bytes:
    if body is None:
        return orjson.dumps(_default_error(status))
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()  # e.g. an HTML page from a proxy in front of the API
    return orjson.dumps(body)


class _Truncating:
    """Buffers the real response and sends a 200 with only the first half of its JSON."""

    def __init__(self, send: Send, rate: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.rate = rate
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            return
        if message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                whole = b"".join(self.chunks)
                await _send(self.send, 200, whole[: max(1, len(whole) // 2)], self.rate)


class _Answer:
    """Collects a route's response instead of sending it."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def start(self, rate: list[tuple[bytes, bytes]]) -> Message:
        headers = self.headers + rate
        return {"type": "http.response.start", "status": self.status, "headers": headers}


_TRANSPORT = "fake_intercom.transport"


class Served:
    """What ``FakeIntercom.serve()`` runs: the app, handed the connection's transport (uvicorn's
    ``send`` is a method of the request cycle that holds it) so that socket faults can cut it."""

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
        raise ConnectionResetError("the fake Intercom dropped the connection (needs serve())")
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
    answer: _Answer,
    seconds: float,
    chunk: int,
    rate: list[tuple[bytes, bytes]],
    receive: Receive,
    send: Send,
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


def create_app(fake: FakeIntercom | None = None, **options: Any) -> Starlette:
    """Build the ASGI app for ``fake`` (or for a new ``FakeIntercom(**options)``)."""
    if fake is None:
        from ._fake import FakeIntercom

        fake = FakeIntercom(**options)
    elif options:
        raise TypeError("pass options either to FakeIntercom or to create_app, not both")
    routes = [
        Route("/me", me, methods=["GET"]),
        Route("/admins", admins, methods=["GET"]),
        Route("/contacts", list_contacts, methods=["GET"]),
        Route("/contacts", create_contact, methods=["POST"]),
        Route("/contacts/search", search_contacts, methods=["POST"]),
        Route("/contacts/{contact_id}", get_contact, methods=["GET"]),
        Route("/contacts/{contact_id}/notes", create_note, methods=["POST"]),
        Route("/companies/list", list_companies, methods=["POST"]),
        Route("/conversations", create_conversation, methods=["POST"]),
        Route("/conversations/search", search_conversations, methods=["POST"]),
        Route("/conversations/{conversation_id}", get_conversation, methods=["GET"]),
        Route("/ticket_types", ticket_types, methods=["GET"]),
        Route("/tickets", create_ticket, methods=["POST"]),
        Route("/tickets/search", search_tickets, methods=["POST"]),
        Route("/tickets/{ticket_id}", get_ticket, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Gateway, fake=fake)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.fake = fake
    return app
