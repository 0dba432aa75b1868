"""Starlette routes of the fake Intercom API and its ``error.list`` error bodies. The kit's
gateway in front of them applies auth, rate limits, latency and injected faults."""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .._gateway import Reply
from .._sandbox import json_response, vendor_app
from ._objects import CONTACT_SCHEMA, CONVERSATION_SCHEMA, TICKET_SCHEMA
from ._search import Schema, SearchError, compile_query, decode_cursor, encode_cursor
from ._store import Store

if TYPE_CHECKING:
    from ._fake import FakeIntercom

__all__ = ["ApiError", "build_app", "create_app", "default_error", "error_body"]

MAX_PER_PAGE = 150
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


def default_error(status: int) -> dict[str, Any]:
    """The vendor's error.list for a bare ``status`` (401s, 429s, injected failures)."""
    return error_body(
        _DEFAULT_CODES.get(status, "server_error" if status >= 500 else "bad_request"),
        _DEFAULT_MESSAGES.get(status, "Injected failure"),
    )


_json = json_response


def _fake(request: Request) -> FakeIntercom:
    fake: FakeIntercom = request.app.state.sandbox
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


# -- the app -------------------------------------------------------------------------------


def _api_error(exc: Exception) -> Reply:
    assert isinstance(exc, ApiError)
    return Reply.json(error_body(exc.code, exc.message, exc.field), exc.status)


def create_app(fake: FakeIntercom | None = None, **options: Any) -> ASGIApp:
    """The ASGI app of ``fake`` (or of a new ``FakeIntercom(**options)``), gateway included."""
    if fake is None:
        from ._fake import FakeIntercom

        fake = FakeIntercom(**options)
    elif options:
        raise TypeError("pass options either to FakeIntercom or to create_app, not both")
    return fake.app


def build_app(fake: FakeIntercom) -> ASGIApp:
    """The routes alone (``FakeIntercom.build_app``); the kit puts its gateway in front."""
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
    return vendor_app(fake, routes, errors={ApiError: _api_error})
