"""Fault injection: queued rules the gateway consumes, plus an optional random failure rate.

A rule matches by method and path prefix (either may be None: any) and fires ``remaining``
times. The gateway applies them before the route runs, so a failed or hung request has no
side effect; only ``reset`` with ``processed=True`` and the answer faults (``malformed``,
``garble``, ``cut``, ``trickle``) run the route first, as when an answer is lost on its way.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultRule"]

FAULT_KINDS = ("fail", "hang", "malformed", "garble", "reset", "cut", "trickle")


@dataclass(slots=True)
class FaultRule:
    kind: str  # one of FAULT_KINDS
    remaining: int
    path_prefix: str | None = None
    method: str | None = None
    status: int = 503  # "fail": the status; the body is the vendor's error unless ``body``
    body: Any = None  # "fail": bytes or str as is, anything else as JSON
    seconds: float = 0.0  # "hang": sleep before answering; "trickle": spread the body over
    processed: bool = True  # "reset": the route runs before the connection is dropped
    chunk: int = 16  # "trickle": bytes per piece of the body

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


class FaultPlan:
    """Queued rules (the first matching rule of a kind fires) and a seeded random rate."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rate = 0.0
        self._statuses: tuple[int, ...] = (500, 503)
        self._random_prefix: str | None = None
        self._random_method: str | None = None
        self._rng = random.Random(0)

    def add(self, rule: FaultRule) -> None:
        if rule.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        if rule.remaining > 0:
            with self._lock:
                self._rules.append(rule)

    def take(self, kind: str, method: str, path: str) -> FaultRule | None:
        """Consume one firing of the first rule of ``kind`` matching the request."""
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def set_random(
        self,
        rate: float,
        statuses: Sequence[int],
        seed: int | None,
        path_prefix: str | None,
        method: str | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._rate = rate
            self._statuses = tuple(statuses)
            self._random_prefix = path_prefix
            self._random_method = None if method is None else method.upper()
            self._rng = random.Random(seed)

    def random_status(self, path: str, method: str | None = None) -> int | None:
        """A status to fail this request with, drawn at the random rate, or None."""
        with self._lock:
            if self._rate <= 0 or not self._statuses:
                return None
            if self._random_prefix is not None and not path.startswith(self._random_prefix):
                return None
            if self._random_method is not None and method != self._random_method:
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
