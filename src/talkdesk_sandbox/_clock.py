"""Clocks: every time a sandbox stamps, lags or windows comes from one injected callable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "ManualClock", "wall_clock"]

Clock = Callable[[], float]
"""Unix seconds now. Pass ``wall_clock`` (the default everywhere) or a ``ManualClock``."""


def wall_clock() -> float:
    return time.time()


class ManualClock:
    """A clock tests drive by hand: ``clock = ManualClock(1_700_000_000); clock.advance(60)``.

    Share one between a sandbox and the code under test (the bridge's connectors accept a
    ``clock`` too), so lags and rate-limit windows pass without real waiting."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, timestamp: float) -> None:
        with self._lock:
            self._now = float(timestamp)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"
