"""The routes of the fake Zendesk Support API v2 (paths with or without ``.json``)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._gateway import Reply
from .._index import HIGH_ID, sort_key
from .._sandbox import json_response, vendor_app
from ._data import (
    WITHHELD,
    decode_cursor,
    encode_cursor,
    render_identities,
    render_ticket,
    render_user,
)

if TYPE_CHECKING:
    from ._sandbox import ZendeskSandbox

__all__ = ["build_app"]

Handler = Callable[[Request], Awaitable[Response]]
_SEARCH_CAP = 1000
_OFFSET_PAGES = 100


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body


def _invalid(field: str, description: str) -> ApiError:
    return ApiError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field: [{"description": description, "error": "InvalidValue"}]},
        },
    )


def _sandbox(request: Request) -> ZendeskSandbox:
    sandbox: ZendeskSandbox = request.app.state.sandbox
    return sandbox


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _role(request: Request, *, needs: tuple[str, ...] = ("agent", "admin")) -> str:
    caller = _sandbox(request).caller(request.headers.get("authorization"))
    if caller == "scopeless":
        raise ApiError(403, {"error": "Forbidden", "description": "You are missing the scope"})
    if caller not in needs:
        if caller == "agent":
            raise ApiError(
                403, {"error": {"title": "Forbidden", "message": "You do not have access"}}
            )
        raise ApiError(401, {"error": "Couldn't authenticate you"})
    return caller


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except ValueError:
        raise ApiError(400, {"error": "InvalidJSON"}) from None
    if not isinstance(body, dict):
        raise ApiError(400, {"error": "InvalidJSON"})
    return body


def _int(value: str | None, default: int, *, name: str) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(
            400, {"error": "InvalidValue", "description": f"{name} must be an integer"}
        ) from None


# -- users -------------------------------------------------------------------------------


async def me(request: Request) -> Response:
    sandbox = _sandbox(request)
    caller = sandbox.caller(request.headers.get("authorization"))
    if caller == "scopeless":
        raise ApiError(403, {"error": "Forbidden", "description": "You are missing the scope"})
    if caller == "anonymous":
        anonymous = {
            "id": None,
            "name": "Anonymous user",
            "email": "invalid@example.com",
            "role": "end-user",
            "active": True,
        }
        return json_response({"user": anonymous})
    uid = sandbox.admin_id if caller == "admin" else sandbox.agent_id
    user = sandbox.user(uid)
    assert user is not None
    return json_response({"user": render_user(user, _base(request))})


async def show_user(request: Request) -> Response:
    _role(request)
    user = _sandbox(request).user(request.path_params["id"])
    if user is None:
        raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
    return json_response({"user": render_user(user, _base(request))})


def _matches(user: dict[str, Any], term: str) -> bool:
    kind, _, value = term.partition(":")
    if not _:
        kind, value = "", term
    values: list[str] = []
    if kind in ("", "email"):
        values += [v.lower() for k, v in user["identities"] if k == "email"]
    if kind in ("", "phone"):
        phones = [v for k, v in user["identities"] if k == "phone_number"]
        phones += [user["phone"]] if user.get("phone") else []
        # E.164 or its digits match; a "+" sent unencoded arrives as a space and does not.
        values += phones + [p.lstrip("+") for p in phones]
    return value.lower() in values if kind != "phone" else value in values


async def search_users(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    params = request.query_params
    per_page = min(_int(params.get("per_page"), 100, name="per_page"), 100)
    page = _int(params.get("page"), 1, name="page")
    if page * per_page > _SEARCH_CAP * 10:
        raise ApiError(422, {"error": "InvalidPaginationParameter"})
    external = params.get("external_id")
    query = (params.get("query") or "").strip()
    sandbox.users.sync()
    found: list[dict[str, Any]] = []
    with sandbox.lock:
        for user in sandbox.users.index.records.values():  # the lagging index
            if external is not None:
                if (user.get("external_id") or "").lower() == external.lower():
                    found.append(user)
            elif query and _matches(user, query):
                found.append(user)
    found.sort(key=lambda u: int(u["id"]))
    chunk = found[(page - 1) * per_page : page * per_page]
    base = _base(request)
    more = page * per_page < len(found)
    return json_response(
        {
            "users": [render_user(u, base) for u in chunk],
            "count": len(found),
            "next_page": f"{base}/api/v2/users/search.json?page={page + 1}" if more else None,
            "previous_page": None,
        }
    )


def _cursor_page(
    request: Request, items: list[Any], render: Callable[[Any], dict[str, Any]], key: str
) -> Response:
    """Zendesk's cursor pagination over items sorted by id (``page[size]``/``page[after]``);
    ``page=N`` offset pagination stops after 100 pages."""
    params = request.query_params
    if "page" in params:
        page = _int(params.get("page"), 1, name="page")
        per_page = min(_int(params.get("per_page"), 100, name="per_page"), 100)
        if page > _OFFSET_PAGES:
            raise ApiError(400, {"error": "InvalidPaginationDepth"})
        chunk = items[(page - 1) * per_page : page * per_page]
        return json_response({key: [render(i) for i in chunk], "count": len(items)})
    size = min(_int(params.get("page[size]"), 100, name="page[size]"), 100)
    after = params.get("page[after]")
    start = 0
    if after:
        try:
            start = next(n for n, i in enumerate(items) if int(i["id"]) > int(after, 16))
        except (StopIteration, ValueError):
            start = len(items)
    chunk = items[start : start + size]
    more = start + size < len(items)
    cursor = format(int(chunk[-1]["id"]), "x") if chunk else None
    return json_response(
        {
            key: [render(i) for i in chunk],
            "meta": {
                "has_more": more,
                "after_cursor": cursor if more else None,
                "before_cursor": None,
            },
            "links": {"next": None, "prev": None},
        }
    )


async def list_users(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    roles = request.query_params.getlist("role[]") or request.query_params.getlist("role")
    users = [u for _, u in sandbox.users.live() if not roles or u["role"] in roles]
    users.sort(key=lambda u: int(u["id"]))
    base = _base(request)
    return _cursor_page(request, users, lambda u: render_user(u, base), "users")


async def list_organizations(request: Request) -> Response:
    _role(request)
    orgs = [
        {"id": oid, "name": name} for oid, name in sorted(_sandbox(request).organizations.items())
    ]
    return _cursor_page(request, orgs, lambda o: o, "organizations")


def _find_by_email(sandbox: ZendeskSandbox, email: str) -> dict[str, Any] | None:
    for _, user in sandbox.users.live():
        if any(k == "email" and v.lower() == email.lower() for k, v in user["identities"]):
            return user
    return None


async def create_or_update_user(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    user = (await _body(request)).get("user")
    if not isinstance(user, dict) or not isinstance(user.get("name"), str) or not user["name"]:
        raise _invalid("name", "Name: is too short (minimum one character)")
    email = user.get("email")
    with sandbox.lock:
        existing = _find_by_email(sandbox, email) if isinstance(email, str) and email else None
        if existing is not None:
            updated = sandbox.update_user(existing["id"], name=user["name"])
            return json_response({"user": render_user(updated, _base(request))}, 200)
        uid = sandbox.add_user(
            user["name"],
            email=email if isinstance(email, str) else None,
            phone=user.get("phone") if isinstance(user.get("phone"), str) else None,
        )
        created = sandbox.user(uid)
    assert created is not None
    return json_response({"user": render_user(created, _base(request))}, 201)


async def create_user(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    user = (await _body(request)).get("user")
    if not isinstance(user, dict) or not isinstance(user.get("name"), str) or not user["name"]:
        raise _invalid("name", "Name: is too short (minimum one character)")
    email = user.get("email") if isinstance(user.get("email"), str) else None
    with sandbox.lock:
        if email and _find_by_email(sandbox, email) is not None:
            raise _invalid("email", f"Email: {email} is already being used by another user")
        uid = sandbox.add_user(user["name"], email=email)
        created = sandbox.user(uid)
    assert created is not None
    return json_response({"user": render_user(created, _base(request))}, 201)


async def delete_user(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    uid = request.path_params["id"]
    if sandbox.user(uid) is None:
        raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
    sandbox.delete_user(uid)
    user = sandbox.user(uid)
    assert user is not None
    return json_response({"user": render_user(user, _base(request))})


async def merge_user(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    user = (await _body(request)).get("user")
    winner = user.get("id") if isinstance(user, dict) else None
    try:
        sandbox.merge_users(str(request.path_params["id"]), str(winner))
    except KeyError:
        raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"}) from None
    merged = sandbox.user(str(winner))
    assert merged is not None
    return json_response({"user": render_user(merged, _base(request))})


# -- the incremental export ----------------------------------------------------------------


async def export_users(request: Request) -> Response:
    _role(request, needs=("admin",))
    sandbox = _sandbox(request)
    params = request.query_params
    now = sandbox.now
    horizon = math.floor(now) - WITHHELD  # the last minute is withheld
    per_page = min(max(_int(params.get("per_page"), 1000, name="per_page"), 1), 1000)
    cursor_text = params.get("cursor")
    if cursor_text is not None:
        cursor = decode_cursor(cursor_text)
        expired = (
            cursor is not None
            and sandbox.cursor_ttl is not None
            and now - cursor[2] > sandbox.cursor_ttl
        )
        if cursor is None or expired:
            raise ApiError(400, {"error": "InvalidCursor", "description": "Invalid cursor"})
        after_t, after_id = cursor[0], cursor[1]
    else:
        start = _int(params.get("start_time"), -1, name="start_time")
        if start < 0:
            raise ApiError(400, {"error": "InvalidValue", "description": "start_time is required"})
        if start > now - WITHHELD:
            raise ApiError(
                400,
                {
                    "error": "StartTimeTooRecent",
                    "description": "Too recent start_time. Use a start_time older than 1 minute",
                },
            )
        after_t, after_id = start - 0.5, ""
    page = sandbox.users.scan(after=(sort_key(after_t), after_id), limit=per_page + 1)
    shown = [u for u in page.records if u["updated_at"] <= horizon]
    users, more = shown[:per_page], len(shown) > per_page
    last: tuple[float, str] | None = None
    if users and (after_t < 0 or users[0]["updated_at"] > after_t + sandbox.empty_gap):
        # The export walks time slices: a walk's start, or a long quiet stretch, comes back
        # as an empty page that is not the end.
        users, more = [], True
        last = (shown[0]["updated_at"] - 1, HIGH_ID)
    elif users:
        last = (users[-1]["updated_at"], users[-1]["id"])
    end = not more
    base = _base(request)
    after = encode_cursor(last[0], last[1], now) if last else None
    include = "identities" in (params.get("include") or "").split(",")
    body: dict[str, Any] = {
        "users": [render_user(u, base) for u in users],
        "after_cursor": after,
        # Whether after_url keeps per_page/include is unconfirmed: this one drops them.
        "after_url": f"{base}/api/v2/incremental/users/cursor.json?cursor={after}"
        if after
        else None,
        "before_cursor": None,
        "before_url": None,
        "end_of_stream": end,
    }
    if include:
        body["identities"] = [i for u in users for i in render_identities(u)]
    return json_response(body)


# -- tickets -------------------------------------------------------------------------------


async def requested_tickets(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    uid = request.path_params["id"]
    if sandbox.user(uid) is None:
        raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
    params = request.query_params
    per_page = min(_int(params.get("per_page"), 100, name="per_page"), 100)
    field = params.get("sort_by") or "id"
    if field not in ("id", "updated_at", "created_at", "status"):
        field = "id"
    tickets = [t for t in sandbox.tickets.values() if t["requester_id"] == int(uid)]
    tickets.sort(key=lambda t: (t[field], t["id"]), reverse=params.get("sort_order") == "desc")
    base = _base(request)
    return json_response(
        {
            "tickets": [render_ticket(t, base) for t in tickets[:per_page]],
            "count": len(tickets),
            "next_page": None,
            "previous_page": None,
        }
    )


async def show_ticket(request: Request) -> Response:
    _role(request)
    ticket = _sandbox(request).tickets.get(_int(request.path_params["id"], 0, name="id"))
    if ticket is None:
        raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
    return json_response({"ticket": render_ticket(ticket, _base(request))})


async def create_ticket(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    raw = await request.body()
    key = request.headers.get("idempotency-key")
    with sandbox.lock:
        if key and key in sandbox.idempotency:
            seen, tid = sandbox.idempotency[key]
            if seen != raw:
                raise ApiError(
                    400,
                    {
                        "error": "IdempotentRequestError",
                        "description": "Key reused with another payload",
                    },
                )
            response = json_response(
                {"ticket": render_ticket(sandbox.tickets[tid], _base(request))}, 201
            )
            response.headers["x-idempotency-lookup"] = "hit"
            return response
        ticket = (await _body(request)).get("ticket")
        if not isinstance(ticket, dict):
            raise _invalid("ticket", "Ticket: is missing")
        raw_comment = ticket.get("comment")
        comment: dict[str, Any] = raw_comment if isinstance(raw_comment, dict) else {}
        subject = ticket.get("subject") if isinstance(ticket.get("subject"), str) else ""
        requester_id = ticket.get("requester_id")
        if requester_id is not None:
            if sandbox.user(str(requester_id)) is None:
                raise _invalid("requester", "Requester: is invalid")
        else:
            requester = ticket.get("requester")
            if not isinstance(requester, dict):
                raise _invalid("requester", "Requester: can't be blank")
            email = requester.get("email")
            found = _find_by_email(sandbox, email) if isinstance(email, str) else None
            if found is not None:
                requester_id = int(found["id"])
            else:
                requester_id = int(
                    sandbox.add_user(
                        str(requester.get("name") or email or "Caller"),
                        email=email if isinstance(email, str) else None,
                        phone=requester.get("phone")
                        if isinstance(requester.get("phone"), str)
                        else None,
                    )
                )
        assignee = ticket.get("assignee_id")
        if assignee is not None:
            agent = sandbox.user(str(assignee))
            if agent is None or agent["role"] == "end-user":
                raise _invalid("assignee", "Assignee: is not an agent")
        priority = ticket.get("priority")
        if priority not in (None, "low", "normal", "high", "urgent"):
            raise _invalid("priority", "Priority: is invalid")
        tid = sandbox.add_ticket(
            str(requester_id),
            subject or str(comment.get("body") or "")[:50],
            description=str(comment.get("body") or ""),
            status="new" if assignee is None else "open",
            priority=priority,
        )
        sandbox.tickets[tid]["assignee_id"] = assignee
        sandbox.tickets[tid]["comments"][0]["public"] = comment.get("public", True)
        if key:
            sandbox.idempotency[key] = (raw, tid)
    base = _base(request)
    response = json_response({"ticket": render_ticket(sandbox.tickets[tid], base)}, 201)
    response.headers["Location"] = f"{base}/api/v2/tickets/{tid}.json"
    if key:
        response.headers["x-idempotency-lookup"] = "miss"
    return response


async def update_ticket(request: Request) -> Response:
    _role(request)
    sandbox = _sandbox(request)
    tid = _int(request.path_params["id"], 0, name="id")
    body = await _body(request)
    with sandbox.lock:
        ticket = sandbox.tickets.get(tid)
        if ticket is None:
            raise ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
        change = body.get("ticket")
        comment = change.get("comment") if isinstance(change, dict) else None
        if isinstance(comment, dict):
            if len(ticket["comments"]) >= 5000:
                raise _invalid("comment", "Comments: too many")
            if not isinstance(comment.get("body"), str) or not comment["body"]:
                raise _invalid("comment", "Comment: body can't be blank")
            ticket["comments"].append(
                {"body": comment["body"], "public": comment.get("public", True)}
            )
        ticket["updated_at"] = math.floor(sandbox.now)
    return json_response({"ticket": render_ticket(ticket, _base(request))})


def build_app(sandbox: ZendeskSandbox) -> Starlette:
    def route(path: str, endpoint: Handler, methods: list[str]) -> list[Route]:
        full = "/api/v2" + path
        return [
            Route(full, endpoint, methods=methods),
            Route(full + ".json", endpoint, methods=methods),
        ]

    routes = [
        *route("/users/me", me, ["GET"]),
        *route("/users/search", search_users, ["GET"]),
        *route("/users/create_or_update", create_or_update_user, ["POST"]),
        *route("/users", list_users, ["GET"]),
        *route("/users", create_user, ["POST"]),
        *route("/users/{id:int}", show_user, ["GET"]),
        *route("/users/{id:int}", delete_user, ["DELETE"]),
        *route("/users/{id:int}/tickets/requested", requested_tickets, ["GET"]),
        *route("/users/{id:int}/merge", merge_user, ["PUT"]),
        *route("/organizations", list_organizations, ["GET"]),
        *route("/incremental/users/cursor", export_users, ["GET"]),
        *route("/tickets", create_ticket, ["POST"]),
        *route("/tickets/{id:int}", show_ticket, ["GET"]),
        *route("/tickets/{id:int}", update_ticket, ["PUT"]),
    ]

    def render(exc: Exception) -> Reply:
        assert isinstance(exc, ApiError)
        return Reply.json(exc.body, exc.status)

    return vendor_app(sandbox, routes, errors={ApiError: render})
