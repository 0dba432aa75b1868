"""Inbound HTTP plumbing: bounded body reading, strict parsing, JSON responses."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ._errors import BridgeError, InvalidRequest, MalformedRequest, PayloadTooLarge

__all__ = ["error_response", "json_response", "parse_body", "read_json"]

M = TypeVar("M", bound=BaseModel)


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(exc: BridgeError) -> Response:
    return json_response(exc.body(), exc.status, exc.headers())


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, reading at most `limit` bytes (the declared length is not trusted)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise MalformedRequest("request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson's message carries position info, never the body itself.
        raise MalformedRequest(f"request body is not valid JSON: {exc.msg}") from None


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def parse_body(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise MalformedRequest("request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = [f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        raise InvalidRequest("invalid request: " + "; ".join(problems)) from None
