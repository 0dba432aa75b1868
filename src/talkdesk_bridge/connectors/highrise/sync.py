"""People for the engine's `WindowSync`: `since=` listings read so that nothing is skipped.

Highrise lists `GET /people.xml?since=` by ascending `updated_at` (whole seconds) and pages it
by offset `n`. Offsets over a list that changes lose records: a person updated mid-walk moves
to the end, every later one shifts back, and the one at the page boundary is never read. So
every read here is a keyset read: `since` = one second before the last second delivered, at
offset 0 (Highrise's `since` may be inclusive or exclusive: one second earlier covers both),
and only seconds known to be complete are delivered, sorted by (updated_at, id): a second is
complete once the listing has shown a later one. The engine's `after` drops what an earlier
read delivered and `Record.modified` applies the run's exact window.

Only when ties on one second fill a whole page does a read need `n`, and then each further
page overlaps the previous one by up to `_OVERLAP` entries and must find one of them again
(the order is stable: only removals shift it, and they shift it back), so a shift is seen and
absorbed rather than skipped; if none is found the second is read again from `n=0`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import JsonValue

from ..._errors import UpstreamUnavailable
from ..._models import Contact
from ..._upstream import Clock, Deadline
from ...sync import Batch, Record, Window
from .client import HighriseClient, Session
from .mapping import epoch, person_id

__all__ = ["PeopleSource", "check_key"]

log = logging.getLogger("talkdesk_bridge.highrise")

_OVERLAP = 25
_RESTARTS = 3
_MAX_STAMP = 10**11


def check_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """An offset's keyset position: (updated_at epoch second, person id)."""
    if len(key) != 2 or not all(type(v) is int and 0 <= v < 10**19 for v in key):
        raise ValueError("not a Highrise position")
    if key[0] >= _MAX_STAMP:
        raise ValueError("not a Highrise position")
    return key


def _stamp(person: dict[str, Any]) -> int | None:
    return epoch(person.get("updated_at")) or epoch(person.get("created_at"))


def _align(page: list[dict[str, Any]], tail: list[str]) -> int | None:
    """Where the previous page's overlapping tail reappears in `page` (the index of the latest
    of its entries found), or None when none is there (the listing shifted too far)."""
    where = {person_id(p): i for i, p in enumerate(page)}
    for pid in reversed(tail):
        if pid in where:
            return where[pid]
    return None


class PeopleSource:
    def __init__(
        self,
        client: HighriseClient,
        *,
        to_contact: Callable[[Session, dict[str, Any]], Contact | None],
        clock: Clock,
    ) -> None:
        self._client = client
        self._to_contact = to_contact
        self._clock = clock

    async def watermark(self, ctx: Session, deadline: Deadline) -> int:
        # Highrise has no "now" to ask; clock skew is within the lag window by design.
        return int(self._clock())

    async def fetch(
        self,
        ctx: Session,
        window: Window,
        after: tuple[Any, ...] | None,
        resume: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> Batch:
        start = after[0] if after is not None else window.lower
        since = 0 if start is None else max(0, int(start) - 1)  # the full copy: the epoch
        read: dict[str, tuple[int, dict[str, Any]]] = {}  # by id: listing entries seen
        tail: list[str] = []  # the previous page's last entries, to find again
        offset, restarts, first = 0, 0, True
        while True:
            page = await self._client.people_since(ctx, since, offset, deadline=deadline)
            if first:
                fresh, end = page, not page
            else:
                at = _align(page, tail)
                if at is None:
                    restarts += 1
                    if restarts > _RESTARTS:
                        raise UpstreamUnavailable(
                            "Highrise's people listing kept changing under the sync",
                            retry_after=5.0,
                        )
                    offset, tail, first = 0, [], True
                    continue
                fresh = page[at + 1 :]
                end = not fresh
            for person in fresh:
                pid, stamp = person_id(person), _stamp(person)
                if pid is None or stamp is None:
                    log.warning("Highrise listed a person without a usable id or updated_at")
                    continue
                read[pid] = (stamp, person)
            if end:
                return self._batch(ctx, read, None, done=True)
            last = _stamp(page[-1])
            if last is None:
                last = max((s for s, _ in read.values()), default=0)
            if last > window.upper:
                return self._batch(ctx, read, last, done=True)
            ready = [(s, int(pid)) for pid, (s, _) in read.items() if s < last]
            if ready and (after is None or max(ready) > tuple(after)):
                return self._batch(ctx, read, last, done=False)
            # Everything read is one second (ties fill the page) or already delivered: the
            # next page of the same listing, overlapping this one.
            overlap = max(1, min(_OVERLAP, len(page) // 2))
            tail = [pid for p in page[-overlap:] if (pid := person_id(p)) is not None]
            offset += len(page) - overlap
            first = False

    def _batch(
        self,
        ctx: Session,
        read: dict[str, tuple[int, dict[str, Any]]],
        below: int | None,
        *,
        done: bool,
    ) -> Batch:
        """The records of the complete seconds (all of them when `below` is None)."""
        records = [
            Record((stamp, int(pid)), pid, self._to_contact(ctx, person), modified=stamp)
            for pid, (stamp, person) in read.items()
            if below is None or stamp < below
        ]
        records.sort(key=lambda record: record.key)
        return Batch(records, done=done)
