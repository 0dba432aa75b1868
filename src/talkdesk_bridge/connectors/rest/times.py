"""Times as the mapping spells them (epoch seconds or milliseconds, ISO 8601, a strftime
pattern), to and from epoch milliseconds. Zone-less times are UTC."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from .mapping import TimeSpec

__all__ = ["format_time", "parse_time", "talkdesk_date"]

_MAX_MS = 10**16


def parse_time(value: Any, spec: TimeSpec) -> int | None:
    """Epoch milliseconds, or None when `value` is not a time in `spec`'s format."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if spec.format in ("epoch_seconds", "epoch_millis"):
            number = float(value) if isinstance(value, int | float | str) else math.nan
            if not math.isfinite(number):
                return None
            ms = int(number * 1000) if spec.format == "epoch_seconds" else int(number)
        else:
            if not isinstance(value, str):
                return None
            if spec.format == "iso8601":
                moment = datetime.fromisoformat(value.strip())
            else:
                assert spec.strftime is not None
                moment = datetime.strptime(value.strip(), spec.strftime)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ms = int(moment.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return None
    return ms if 0 <= ms < _MAX_MS else None


def format_time(ms: int, spec: TimeSpec) -> str:
    """`ms` in `spec`'s format (rounded down to what the format can say)."""
    ms = max(0, ms)
    if spec.format == "epoch_millis":
        return str(ms)
    if spec.format == "epoch_seconds":
        return str(ms // 1000)
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    if spec.format == "iso8601":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert spec.strftime is not None
    return moment.strftime(spec.strftime)


def talkdesk_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
