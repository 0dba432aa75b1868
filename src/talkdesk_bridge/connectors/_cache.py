"""Per-account facts worth one upstream call an hour (the app id, ticket types, company names).

Keys are account keys (hashes), never tokens. Concurrent misses for one key share one load.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["AccountCache"]

V = TypeVar("V")


class AccountCache(Generic[V]):
    """A bounded LRU of loaded values with a time to live, loading each key once at a time."""

    def __init__(
        self, ttl: float, *, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._values: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._loading: dict[str, asyncio.Task[tuple[V, float]]] = {}

    def _fresh(self, key: str) -> tuple[float, V] | None:
        entry = self._values.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry

    def has(self, key: str) -> bool:
        return self._fresh(key) is not None

    def put(self, key: str, value: V, ttl: float | None = None) -> None:
        ttl = self._ttl if ttl is None else ttl
        if ttl > 0:
            self._values[key] = (self._clock() + ttl, value)
            self._values.move_to_end(key)
            while len(self._values) > self._max:
                self._values.popitem(last=False)

    async def get(self, key: str, load: Callable[[], Awaitable[tuple[V, float | None]]]) -> V:
        """The cached value, else `load()`'s, which returns (value, ttl or None for default)."""
        if (entry := self._fresh(key)) is not None:
            self._values.move_to_end(key)
            return entry[1]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, load))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: one waiter giving up (its own deadline) must not cancel the others' load.
        value, _ = await asyncio.shield(task)
        return value

    def _finished(self, key: str, task: asyncio.Task[tuple[V, float]]) -> None:
        self._loading.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter may have given up already

    async def _load(
        self, key: str, load: Callable[[], Awaitable[tuple[V, float | None]]]
    ) -> tuple[V, float]:
        value, ttl = await load()
        self.put(key, value, ttl)
        return value, self._ttl if ttl is None else ttl

    def cancel(self) -> list[asyncio.Task[tuple[V, float]]]:
        tasks = list(self._loading.values())
        for task in tasks:
            task.cancel()
        return tasks
