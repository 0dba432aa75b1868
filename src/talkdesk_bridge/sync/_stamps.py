"""Modification stamps: how far back the lag window reaches, and how stamps ride in tokens.

A source's stamps are whatever its records carry (a database column's own type, epoch seconds,
epoch milliseconds). The engine only compares them, moves them back by the lag window and
round-trips them through offsets and checkpoints, so each kind of stamp says how.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from pydantic import JsonValue

from .._tokens import decode_value, encode_value

__all__ = ["EpochStamps", "NativeStamps", "Stamps", "shift_stamp"]


class Stamps(Protocol):
    def shift(self, value: Any, seconds: float) -> Any:
        """`value` moved back by `seconds`, in the same type."""

    def encode(self, value: Any) -> JsonValue: ...

    def decode(self, raw: JsonValue) -> Any:
        """The stamp `encode` made; `ValueError` for anything else."""


def shift_stamp(value: Any, seconds: float) -> Any:
    """`value` moved back by `seconds`, in its own type (datetime, date, epoch, ISO text)."""
    if isinstance(value, datetime):
        return value - timedelta(seconds=seconds)
    if isinstance(value, date):
        return value - timedelta(days=int(seconds // 86400) + 1)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int):
        return value - math.ceil(seconds)
    if isinstance(value, Decimal):
        return value - Decimal(str(seconds))
    if isinstance(value, float):
        return value - seconds
    if isinstance(value, str):
        moment = datetime.fromisoformat(value)
        shifted = moment - timedelta(seconds=seconds)
        # Spelled like the stored text, so comparisons in the database stay textual-safe.
        sep = "T" if "T" in value else " "
        return shifted.isoformat(sep=sep, timespec="microseconds" if "." in value else "seconds")
    raise ValueError(f"a {type(value).__name__} is not a timestamp")


class NativeStamps:
    """Stamps in their source's own Python type (a database column: datetime, int, text...)."""

    def shift(self, value: Any, seconds: float) -> Any:
        return shift_stamp(value, seconds)

    def encode(self, value: Any) -> JsonValue:
        encoded: JsonValue = encode_value(value)
        return encoded

    def decode(self, raw: JsonValue) -> Any:
        if raw is None or isinstance(raw, bool):
            raise ValueError("not a stamp")
        return decode_value(raw)


class EpochStamps:
    """Numbers since the epoch: `per_second` 1 for seconds, 1000 for milliseconds."""

    def __init__(self, per_second: int = 1) -> None:
        self.per_second = per_second

    def shift(self, value: Any, seconds: float) -> Any:
        return value - math.ceil(seconds * self.per_second)

    def encode(self, value: Any) -> JsonValue:
        encoded: JsonValue = value
        return encoded

    def decode(self, raw: JsonValue) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError("not an epoch stamp")
        if not 0 <= raw < 10**16:
            raise ValueError("epoch stamp out of range")
        return raw
