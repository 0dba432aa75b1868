"""Highrise's XML as the API writes it: hyphenated names, `type="integer"`/`"datetime"`,
`nil="true"` for nulls, `type="array"` lists (self-closing when empty), and both spellings of
the avatar field (`avatar-url` in the docs, `avatar_url` in real answers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["DECLARATION", "datetime_text", "errors_xml", "render_list", "render_one"]

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def datetime_text(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _element(name: str, value: Any) -> str:
    if value is None:
        return f'<{name} nil="true"/>'
    if isinstance(value, bool):
        return f'<{name} type="boolean">{"true" if value else "false"}</{name}>'
    if isinstance(value, int):
        return f'<{name} type="integer">{value}</{name}>'
    if isinstance(value, dt.datetime):
        return f'<{name} type="datetime">{value.strftime("%Y-%m-%dT%H:%M:%SZ")}</{name}>'
    if isinstance(value, list):
        if not value:
            return f'<{name} type="array"/>'
        inner = "".join(_element(tag, item) for tag, item in value)
        return f'<{name} type="array">{inner}</{name}>'
    if isinstance(value, Mapping):
        return f"<{name}>{''.join(_element(k, v) for k, v in value.items())}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


def render_one(name: str, fields: Mapping[str, Any]) -> str:
    return _element(name, dict(fields))


def render_list(name: str, item: str, rendered: Iterable[str]) -> bytes:
    body = "".join(rendered)
    if not body:
        return f'{DECLARATION}<{name} type="array"/>\n'.encode()
    return f'{DECLARATION}<{name} type="array">{body}</{name}>\n'.encode()


def errors_xml(*messages: str) -> bytes:
    inner = "".join(f"<error>{escape(m)}</error>" for m in messages)
    return f"{DECLARATION}<errors>{inner}</errors>\n".encode()
