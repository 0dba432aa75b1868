"""Rate limits: fixed windows per account (or token), on the injected clock.

The limiter only counts; what a vendor says about it is the vendor's: the gateway hands the
``RateState`` of every call to the sandbox's ``rate_headers`` (stamped on normal answers) and,
when a call is over the limit, to its ``rate_limited`` (the vendor's 429 with its headers).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

from ._clock import Clock

__all__ = ["RateLimiter", "RateState"]


@dataclass(frozen=True, slots=True)
class RateState:
    """One account's window after (or, from ``peek``, without) a call."""

    allowed: bool  # False: this call is over the limit
    limit: int
    remaining: int  # calls left in the window
    reset: int  # when the window ends, unix seconds (rounded up)
    window: float  # the window's length in seconds
    retry_after: float  # seconds from now until the window ends
    key: str  # the account or token the window belongs to

    def exhausted(self) -> RateState:
        """The same window with nothing left (what an injected 429 reports)."""
        return replace(self, allowed=False, remaining=0)


class RateLimiter:
    """``limit`` calls per ``window`` seconds for each key.

    ``aligned`` windows start at multiples of ``window`` on the clock (the vendor's 10-second
    buckets, a per-minute quota); otherwise a key's window starts at its first call.
    """

    def __init__(self, limit: int, window: float, clock: Clock, *, aligned: bool = True) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit needs limit >= 1 and window > 0")
        self.limit = int(limit)
        self.window = float(window)
        self.clock = clock
        self.aligned = aligned
        self._windows: dict[str, list[float]] = {}  # key -> [window start, calls used]
        self._lock = threading.Lock()

    def _current(self, key: str, now: float) -> list[float]:
        slot = self._windows.get(key)
        if self.aligned:
            start = math.floor(now / self.window) * self.window
            if slot is None or slot[0] != start:
                slot = self._windows[key] = [start, 0]
        elif slot is None or now >= slot[0] + self.window:
            slot = self._windows[key] = [now, 0]
        return slot

    def _state(self, key: str, slot: list[float], now: float, allowed: bool) -> RateState:
        end = slot[0] + self.window
        return RateState(
            allowed=allowed,
            limit=self.limit,
            remaining=max(self.limit - int(slot[1]), 0),
            reset=math.ceil(end),
            window=self.window,
            retry_after=max(end - now, 0.0),
            key=key,
        )

    def peek(self, key: str = "") -> RateState:
        """The window's state without spending budget."""
        with self._lock:
            now = float(self.clock())
            return self._state(key, self._current(key, now), now, True)

    def hit(self, key: str = "") -> RateState:
        """Spend one call; ``allowed`` is False (and nothing spent) when over the limit."""
        with self._lock:
            now = float(self.clock())
            slot = self._current(key, now)
            if slot[1] >= self.limit:
                return self._state(key, slot, now, False)
            slot[1] += 1
            return self._state(key, slot, now, True)

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
