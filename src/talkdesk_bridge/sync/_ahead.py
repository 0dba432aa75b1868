"""Read-ahead: the next upstream read of a run, started while Talkdesk takes the current page.

Keyed by (account, the next offset): only a request carrying exactly that offset uses it, so a
page is never served to another run. Entries are few and short-lived (bounded memory), and a
failed read-ahead is only a missed shortcut: the request then reads for itself.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .._errors import UpstreamFailed, UpstreamTimeout, UpstreamUnavailable
from .._upstream import Clock, Deadline

__all__ = ["ReadAhead"]

B = TypeVar("B")

_ENTRIES = 32
_SECONDS = 30.0


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # never "exception was never retrieved"


class ReadAhead(Generic[B]):
    def __init__(self, name: str, monotonic: Clock) -> None:
        self._name = name
        self._monotonic = monotonic
        self._tasks: OrderedDict[tuple[str, str], tuple[float, asyncio.Task[B]]] = OrderedDict()

    def start(self, key: tuple[str, str], read: Callable[[], Awaitable[B]]) -> None:
        now = self._monotonic()
        while self._tasks and (
            len(self._tasks) >= _ENTRIES or next(iter(self._tasks.values()))[0] <= now
        ):
            _, (_, stale) = self._tasks.popitem(last=False)
            stale.cancel()

        async def run() -> B:
            return await read()

        task = asyncio.ensure_future(run())
        task.add_done_callback(_retrieve)
        self._tasks[key] = (now + _SECONDS, task)

    async def take(self, key: tuple[str, str], deadline: Deadline) -> B | None:
        """The read started for `key`, or None (never started, expired, or failed)."""
        found = self._tasks.pop(key, None)
        if found is None:
            return None
        expires, task = found
        if expires <= self._monotonic():
            task.cancel()
            return None
        try:
            async with asyncio.timeout(deadline.remaining()):
                return await asyncio.shield(task)
        except TimeoutError:
            raise UpstreamTimeout(f"{self._name} did not answer in time") from None
        except (UpstreamUnavailable, UpstreamTimeout, UpstreamFailed):
            return None  # read it again, with this request's budget

    async def close(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
