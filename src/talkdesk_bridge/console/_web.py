"""The console's HTML plumbing: autoescaped templates, security headers, bounded forms."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .._errors import PayloadTooLarge

__all__ = [
    "FORM_LIMIT",
    "SECURITY_HEADERS",
    "STATIC",
    "read_form",
    "render",
    "secure",
    "static_file",
]

# Scripts and styles come from our static files only: nothing a value could inject runs.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
FORM_LIMIT = 64 * 1024  # the largest form a console page sends is a few credentials
_FIELDS = 64

STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("talkdesk_bridge.console", "templates"),
        # Every value is escaped, whatever the template's name: no "safe" by accident.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def render(name: str, status: int = 200, **context: Any) -> Response:
    html = _environment().get_template(name).render(**context)
    return secure(HTMLResponse(html, status_code=status))


@functools.cache
def _static(name: str) -> bytes:
    return (resources.files("talkdesk_bridge.console") / "static" / name).read_bytes()


def static_file(name: str) -> Response | None:
    media_type = STATIC.get(name)
    if media_type is None:
        return None
    response = Response(_static(name), media_type=media_type)
    secure(response)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, reading at most FORM_LIMIT bytes. Control characters and invalid
    UTF-8 survive as text (replacement characters): the caller decides what is valid."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > FORM_LIMIT:
        raise PayloadTooLarge(f"form is over the limit of {FORM_LIMIT} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_LIMIT:
            raise PayloadTooLarge(f"form is over the limit of {FORM_LIMIT} bytes")
        chunks.append(chunk)
    try:
        pairs = parse_qsl(
            b"".join(chunks).decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=_FIELDS,
        )
    except ValueError:  # too many fields
        raise PayloadTooLarge(f"form has more than {_FIELDS} fields") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)  # the first wins: a repeated field cannot override
    return form
