"""Opaque offsets and checkpoints: versioned, URL-safe JSON that round-trips typed values.

Talkdesk never interprets them, but a client can send anything back: decoding checks the shape
and raises `InvalidRequest` naming the field, never a 500.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from ._errors import InvalidRequest

__all__ = ["decode_token", "decode_value", "encode_token", "encode_value"]

_VERSION = 1


def encode_value(value: Any) -> Any:
    """A database value as JSON that `decode_value` turns back into the same Python type."""
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot encode {type(value).__name__} in a token")


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if isinstance(text, str):
            try:
                if tag == "$dt":
                    return datetime.fromisoformat(text)
                if tag == "$d":
                    return date.fromisoformat(text)
                if tag == "$dec":
                    return Decimal(text)
            except ValueError:
                pass
        raise ValueError("bad tagged value")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError("unexpected value")


def encode_token(payload: dict[str, Any]) -> str:
    raw = orjson.dumps({"v": _VERSION, **payload})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token: str, field: str) -> dict[str, Any]:
    """The payload of a token we issued; `field` names it in the error (e.g. meta.offset)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise InvalidRequest(f"{field} is not a value this bridge issued") from None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        raise InvalidRequest(f"{field} is not a value this bridge issued")
    return payload
