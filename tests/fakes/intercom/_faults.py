"""Rate limiting and fault injection for the fake Intercom API."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FaultPlan", "FaultRule", "RateLimiter"]


class RateLimiter:
    """Fixed windows aligned to the clock, like the vendor's 10-second buckets."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit needs limit >= 1 and window > 0")
        self.limit = int(limit)
        self.window = float(window)
        self.clock = clock
        self._window_start = -math.inf
        self._used = 0
        self._lock = threading.Lock()

    def _roll(self, now: float) -> None:
        start = math.floor(now / self.window) * self.window
        if start != self._window_start:
            self._window_start = start
            self._used = 0

    def _reset(self) -> int:
        return math.ceil(self._window_start + self.window)

    def peek(self) -> tuple[int, int]:
        """(remaining, reset) without spending budget."""
        with self._lock:
            self._roll(self.clock())
            return max(self.limit - self._used, 0), self._reset()

    def hit(self) -> tuple[bool, int, int]:
        """Spend one call: (allowed, remaining after it, reset as unix seconds)."""
        with self._lock:
            self._roll(self.clock())
            if self._used >= self.limit:
                return False, 0, self._reset()
            self._used += 1
            return True, self.limit - self._used, self._reset()


@dataclass(slots=True)
class FaultRule:
    kind: str  # "fail" | "hang" | "malformed" | "reset" | "cut" | "trickle"
    remaining: int
    path_prefix: str | None = None
    method: str | None = None
    status: int = 503
    body: Any = None
    seconds: float = 0.0
    processed: bool = True  # "reset": the route runs before the connection is dropped
    chunk: int = 16  # "trickle": bytes per piece of the body

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


class FaultPlan:
    """Queued one-shot faults (consumed FIFO per kind) plus an optional random failure rate."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rate = 0.0
        self._statuses: tuple[int, ...] = (500, 503)
        self._random_prefix: str | None = None
        self._rng = random.Random(0)

    def add(self, rule: FaultRule) -> None:
        if rule.remaining > 0:
            with self._lock:
                self._rules.append(rule)

    def take(self, kind: str, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def set_random(
        self, rate: float, statuses: Sequence[int], seed: int | None, path_prefix: str | None
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._rate = rate
            self._statuses = tuple(statuses)
            self._random_prefix = path_prefix
            self._rng = random.Random(seed)

    def random_status(self, path: str) -> int | None:
        with self._lock:
            if self._rate <= 0 or not self._statuses:
                return None
            if self._random_prefix is not None and not path.startswith(self._random_prefix):
                return None
            if self._rng.random() >= self._rate:
                return None
            return self._rng.choice(self._statuses)

    def pending(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._rate = 0.0
