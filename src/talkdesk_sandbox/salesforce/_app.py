"""The Salesforce REST routes: OAuth token and userinfo, `/services/data/vXX.X/...` (query,
queryAll, query locators, search, sObject create/read/update/delete, composite), with
Salesforce's bodies: JSON arrays of `{message, errorCode}` for errors, 201
`{id, success, errors}` for creates, and an HTTP `Date` from the sandbox's clock on every answer.
"""

from __future__ import annotations

import email.utils
import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._sandbox import vendor_app
from ._org import OBJECTS, WriteError
from ._soql import SoqlError, parse_datetime_literal, render_datetime

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ._sandbox import SalesforceSandbox

__all__ = ["build_app", "error_list"]

_VERSION = re.compile(r"v(\d{2})\.0")
OLDEST_VERSION, NEWEST_VERSION = 31, 66
MAX_SUBREQUESTS, MAX_SUB_QUERIES = 25, 5
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([A-Za-z0-9_.\[\]]+)\}")


def error_list(code: str, message: str, fields: list[str] | None = None) -> list[dict[str, Any]]:
    error: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        error["fields"] = fields
    return [error]


class _Answer(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _respond(sandbox: SalesforceSandbox, status: int, body: Any) -> Response:
    content = b"" if body is None else orjson.dumps(body)
    response = Response(content, status_code=status, media_type="application/json")
    response.headers["Date"] = email.utils.formatdate(sandbox.now, usegmt=True)
    return response


def _user(sandbox: SalesforceSandbox, request: Request) -> str:
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    session = sandbox.sessions.get(token)
    return session.user_id if session else ""


# -- OAuth -----------------------------------------------------------------------------------


async def token(request: Request) -> Response:
    sandbox: SalesforceSandbox = request.app.state.sandbox
    form = dict(parse_qsl((await request.body()).decode("latin-1")))
    grant = form.get("grant_type")
    base = str(request.base_url).rstrip("/")
    if grant == "refresh_token":
        issued = sandbox.refresh(form.get("refresh_token", ""))
    elif grant == "authorization_code":
        issued = sandbox.exchange(form.get("code", ""))
    else:
        return _respond(
            sandbox,
            400,
            {"error": "unsupported_grant_type", "error_description": "grant type not supported"},
        )
    if issued is None:
        return _respond(
            sandbox,
            400,
            {"error": "invalid_grant", "error_description": "expired access/refresh token"},
        )
    access, refresh = issued
    body = {
        "access_token": access,
        "signature": secrets.token_urlsafe(24),
        "scope": "api refresh_token",
        "instance_url": sandbox.instance_url or base,
        "id": f"https://login.salesforce.com/id/{sandbox.org.org_id}/{sandbox.admin_id}",
        "token_type": "Bearer",
        "issued_at": str(int(sandbox.now * 1000)),  # a string, and no expires_in
    }
    if refresh:
        body["refresh_token"] = refresh
    return _respond(sandbox, 200, body)


async def userinfo(request: Request) -> Response:
    sandbox: SalesforceSandbox = request.app.state.sandbox
    user_id = _user(sandbox, request)
    user = sandbox.org.get(user_id) or {}
    base = sandbox.instance_url or str(request.base_url).rstrip("/")
    return _respond(
        sandbox,
        200,
        {
            "sub": f"https://login.salesforce.com/id/{sandbox.org.org_id}/{user_id}",
            "user_id": user_id,
            "organization_id": sandbox.org.org_id,
            "email": user.get("Email"),
            "name": user.get("Name"),
            # Salesforce sends the placeholder itself: "v{version}".
            "urls": {
                "rest": f"{base}/services/data/v{{version}}/",
                "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
                "query": f"{base}/services/data/v{{version}}/query/",
            },
        },
    )


async def versions(request: Request) -> Response:
    sandbox: SalesforceSandbox = request.app.state.sandbox
    return _respond(
        sandbox,
        200,
        [
            {"label": f"v{n}", "url": f"/services/data/v{n}.0", "version": f"{n}.0"}
            for n in range(OLDEST_VERSION, NEWEST_VERSION + 1)
        ],
    )


# -- /services/data/vXX.X/... ------------------------------------------------------------------


async def data(request: Request) -> Response:
    sandbox: SalesforceSandbox = request.app.state.sandbox
    version = request.path_params["version"]
    m = _VERSION.fullmatch(version)
    if m is None or int(m[1]) > NEWEST_VERSION:
        return _respond(
            sandbox, 404, error_list("NOT_FOUND", "The requested resource does not exist")
        )
    if int(m[1]) < OLDEST_VERSION:
        return _respond(
            sandbox, 410, error_list("API_VERSION_RETIRED", "This API version is retired")
        )
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return _respond(sandbox, 400, error_list("JSON_PARSER_ERROR", "Unexpected character"))
    status, answer = dispatch(
        sandbox,
        request.method,
        version,
        "/" + request.path_params["rest"],
        dict(request.query_params),
        body,
        user=_user(sandbox, request),
        batch=_batch_size(request.headers.get("sforce-query-options", "")),
    )
    return _respond(sandbox, status, answer)


def _batch_size(header: str) -> int | None:
    m = re.search(r"batchSize=(\d+)", header)
    return int(m[1]) if m else None


def dispatch(
    sandbox: SalesforceSandbox,
    method: str,
    version: str,
    path: str,
    params: Mapping[str, str],
    body: Any,
    *,
    user: str,
    batch: int | None = None,
    composite: bool = False,
) -> tuple[int, Any]:
    """One REST call (also a composite subrequest): (status, body)."""
    try:
        return _route(sandbox, method, version, path, params, body, user, batch, composite)
    except SoqlError as exc:
        return exc.status, error_list(exc.code, exc.message)
    except WriteError as exc:
        return 400, exc.body()
    except _Answer as exc:
        return exc.status, exc.body


def _not_found() -> _Answer:
    return _Answer(404, error_list("NOT_FOUND", "The requested resource does not exist"))


def _route(
    sandbox: SalesforceSandbox,
    method: str,
    version: str,
    path: str,
    params: Mapping[str, str],
    body: Any,
    user: str,
    batch: int | None,
    composite: bool,
) -> tuple[int, Any]:
    org, engine = sandbox.org, sandbox.engine
    parts = [p for p in path.split("/") if p]
    if not parts and method == "GET":
        base = f"/services/data/{version}"
        return 200, {
            "sobjects": f"{base}/sobjects",
            "query": f"{base}/query",
            "queryAll": f"{base}/queryAll",
            "search": f"{base}/search",
            "composite": f"{base}/composite",
        }
    head = parts[0] if parts else ""
    if head in ("query", "queryAll") and method == "GET":
        if len(parts) == 2:
            return 200, engine.more(parts[1], user=user, now=sandbox.now)
        if len(parts) == 1:
            q = params.get("q")
            if not q:
                raise _Answer(400, error_list("MALFORMED_QUERY", "A query string is required"))
            return 200, engine.query(
                q, all_rows=head == "queryAll", user=user, batch=batch, now=sandbox.now
            )
    if head == "search" and method == "GET" and len(parts) == 1:
        q = params.get("q")
        if not q:
            raise _Answer(400, error_list("MALFORMED_SEARCH", "A search string is required"))
        return 200, engine.search(q, now=sandbox.now, index_lag=sandbox.search_lag)
    if head == "composite" and method == "POST" and len(parts) == 1 and not composite:
        return 200, _composite(sandbox, version, body, user)
    if head == "sobjects" and len(parts) >= 2:
        sobject = next((o for o in OBJECTS if o.lower() == parts[1].lower()), None)
        if sobject is None:
            raise _Answer(404, error_list("NOT_FOUND", "The requested resource does not exist"))
        if len(parts) == 2 and method == "POST":
            if not isinstance(body, dict):
                raise _Answer(400, error_list("JSON_PARSER_ERROR", "a JSON object is required"))
            new_id = org.create(sobject, body, owner=body.get("OwnerId") or sandbox.admin_id)
            return 201, {"id": new_id, "success": True, "errors": []}
        if len(parts) == 3 and parts[2] in ("updated", "deleted") and method == "GET":
            return 200, _replication(sandbox, sobject, parts[2], params)
        if len(parts) == 3:
            rid = parts[2]
            row = org.visible(sobject, rid) if len(rid) == 18 else org.get(rid)
            if row is None or row.get("IsDeleted"):
                raise _not_found()
            if method == "GET":
                fields = [f for f, k in OBJECTS[sobject].items() if not k.startswith("parent")]
                return 200, engine.render(sobject, row, fields)
            if method == "PATCH":
                if not isinstance(body, dict):
                    raise _Answer(400, error_list("JSON_PARSER_ERROR", "a JSON object is required"))
                org.update(row["Id"], body)
                return 204, None
            if method == "DELETE":
                org.delete(row["Id"])
                return 204, None
    raise _not_found()


def _replication(
    sandbox: SalesforceSandbox, sobject: str, kind: str, params: Mapping[str, str]
) -> dict[str, Any]:
    """getUpdated / getDeleted: ids changed in [start, end] (seconds, inclusive), with
    `latestDateCovered` held at the start of any transaction still open."""
    try:
        start = parse_datetime_literal(params.get("start", ""))
        end = parse_datetime_literal(params.get("end", ""))
    except SoqlError:
        raise _Answer(
            400, error_list("INVALID_REPLICATION_DATE", "start and end must be UTC datetimes")
        ) from None
    now = int(sandbox.now)
    end = min(end, now)
    reach = 15 if kind == "deleted" else 30
    if start >= end or start < now - reach * 86_400:
        raise _Answer(
            400,
            error_list(
                "INVALID_REPLICATION_DATE",
                f"startDate must chronologically precede endDate and be within {reach} days",
            ),
        )
    covered = end
    if (open_since := sandbox.org.open_since()) is not None:
        covered = min(covered, open_since)
    rows = [
        r
        for r in sandbox.org.rows(sobject).values()
        if start <= r["SystemModstamp"] <= covered
        and bool(r.get("IsDeleted")) == (kind == "deleted")
    ]
    if kind == "updated":
        return {"ids": sorted(r["Id"] for r in rows), "latestDateCovered": render_datetime(covered)}
    return {
        "deletedRecords": [
            {"id": r["Id"], "deletedDate": render_datetime(r["SystemModstamp"])} for r in rows
        ],
        "earliestDateAvailable": render_datetime(now - reach * 86_400),
        "latestDateCovered": render_datetime(covered),
    }


def _resolve(value: Any, results: Mapping[str, Any]) -> Any:
    """`@{ref.path}` references to earlier subrequests' bodies."""
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, results) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(m: re.Match[str]) -> str:
        if m[1] not in results:
            raise _Answer(400, error_list("INVALID_REFERENCE", f"unknown reference {m[1]}"))
        current: Any = results[m[1]]
        for step in re.findall(r"[A-Za-z0-9_]+|\[\d+\]", m[2]):
            try:
                current = current[int(step[1:-1])] if step.startswith("[") else current[step]
            except (KeyError, IndexError, TypeError):
                raise _Answer(
                    400, error_list("INVALID_REFERENCE", f"reference {m[0]} not found")
                ) from None
        return str(current)

    return _REFERENCE.sub(lookup, value)


def _composite(sandbox: SalesforceSandbox, version: str, body: Any, user: str) -> dict[str, Any]:
    requests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise _Answer(400, error_list("JSON_PARSER_ERROR", "compositeRequest is required"))
    if len(requests) > MAX_SUBREQUESTS:
        raise _Answer(
            400, error_list("LIMIT_EXCEEDED", f"Maximum number of subrequests is {MAX_SUBREQUESTS}")
        )
    queries = sum(
        1
        for r in requests
        if isinstance(r, dict) and re.search(r"/(query|queryAll)(\?|/|$)", str(r.get("url", "")))
    )
    if queries > MAX_SUB_QUERIES:
        raise _Answer(
            400, error_list("LIMIT_EXCEEDED", f"Maximum number of queries is {MAX_SUB_QUERIES}")
        )
    all_or_none = bool(body.get("allOrNone"))
    results: dict[str, Any] = {}
    answers: list[dict[str, Any]] = []
    halted = False
    for sub in requests:
        if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
            raise _Answer(400, error_list("JSON_PARSER_ERROR", "every subrequest needs a url"))
        ref = str(sub.get("referenceId", ""))
        if halted:
            answers.append(
                {
                    "body": error_list(
                        "PROCESSING_HALTED",
                        "The transaction was rolled back since another operation in the same "
                        "transaction failed.",
                    ),
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": ref,
                }
            )
            continue
        try:
            url = _resolve(sub["url"], results)
            sub_body = _resolve(sub.get("body"), results)
        except _Answer as exc:
            status, answer = exc.status, exc.body
        else:
            parts = urlsplit(url)
            prefix = f"/services/data/{version}"
            if not parts.path.startswith(prefix):
                status, answer = (
                    404,
                    error_list("NOT_FOUND", "The requested resource does not exist"),
                )
            else:
                status, answer = dispatch(
                    sandbox,
                    str(sub.get("method", "GET")).upper(),
                    version,
                    parts.path[len(prefix) :] or "/",
                    dict(parse_qsl(parts.query)),
                    sub_body,
                    user=user,
                    composite=True,
                )
        if 200 <= status < 300:
            results[ref] = answer
        elif all_or_none:
            halted = True
        answers.append(
            {"body": answer, "httpHeaders": {}, "httpStatusCode": status, "referenceId": ref}
        )
    return {"compositeResponse": answers}


def build_app(sandbox: SalesforceSandbox) -> Starlette:
    return vendor_app(
        sandbox,
        [
            Route("/services/oauth2/token", token, methods=["POST"]),
            Route("/services/oauth2/userinfo", userinfo, methods=["GET", "POST"]),
            Route("/services/data", versions, methods=["GET"]),
            Route("/services/data/", versions, methods=["GET"]),
            Route("/services/data/{version}", data, methods=["GET"]),
            Route(
                "/services/data/{version}/{rest:path}",
                data,
                methods=["GET", "POST", "PATCH", "DELETE"],
            ),
        ],
    )
