"""A versioned record store with eventually consistent reads, as vendors' search indexes are.

Every write (create, update, delete) appends a ``Version`` stamped with its write time from the
injected clock (stamps never step back, even if the clock does). Reads come in two kinds:

- *live* reads (``get``, ``live_page``, ``len``): the newest version at once, as a vendor's
  "get by id" endpoint answers from its primary database;
- *visible* reads (``visible``, ``scan``, ``tombstones``, and any ``SortedIndex`` passed as
  ``index``): only versions whose visibility time has passed, as list, search and export
  endpoints answer from a lagging index. A version stamped ``t`` becomes visible at
  ``t + max(lag, delay)``: ``lag`` is the store's, ``delay`` a write's own (a *late commit*:
  ``update(id, record, delay=600)`` is stamped now, seen by visible reads only 10 minutes on).

A newer version always wins: a late version never replaces one written after it. Deleting
writes a tombstone (``None``); the record disappears from visible reads when the tombstone
becomes visible, and ``tombstones(since)`` lists visible deletions for "deleted since" APIs.
"""

from __future__ import annotations

import heapq
import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._clock import Clock
from ._index import Key, Page, SortedIndex

__all__ = ["LivePage", "Version", "VersionedStore"]

R = TypeVar("R")


def _item(name: str) -> Callable[[Any], Any]:
    return lambda record: record[name]


@dataclass(frozen=True, slots=True)
class Version(Generic[R]):
    seq: int  # store-wide write order
    stamp: float  # write time (the clock's, or a back-dated one for seed data)
    record: R | None  # None: a deletion
    delay: float = 0.0  # this write's own visibility delay (a late commit)

    def visible_at(self, lag: float) -> float:
        return self.stamp + max(lag, self.delay)


@dataclass(slots=True)
class LivePage(Generic[R]):
    records: list[R]
    total: int  # live records
    next_after: int | None  # pass as ``after`` for the next page; None on the last page


class VersionedStore(Generic[R]):
    """Records by id with full version history and lagged visibility (see the module doc).

    ``index`` is the visible view (a ``SortedIndex`` whose fields a vendor's search sorts
    by); by default one with the single field ``modified``, read from each record with
    ``fields[modified]`` or, for dict records, ``record[modified]``. ``scan`` pages the visible
    records sorted by (modified, id). Pass the vendor's own ``lock`` (an ``RLock``) when other
    state must change atomically with the store; every method takes it.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        lag: float = 0.0,
        modified: str = "updated_at",
        fields: Mapping[str, Callable[[R], Any]] | None = None,
        index: SortedIndex[R] | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        if index is not None and fields is not None:
            raise TypeError("pass sort fields either to the index or to the store, not both")
        self.clock = clock
        self.lock = lock if lock is not None else threading.RLock()
        self.modified = modified
        if index is None:
            getters: dict[str, Callable[[R], Any]] = dict(fields or {})
            getters.setdefault(modified, _item(modified))
            index = SortedIndex(getters)
        self.index: SortedIndex[R] = index
        self._lag = float(lag)
        self._seq = 0
        self._last_stamp = -math.inf
        self._live: dict[str, R] = {}
        self._history: dict[str, list[Version[R]]] = {}
        # creation order of live records: seq per id, and parallel sorted lists for paging
        self._created: dict[str, int] = {}
        self._order_seqs: list[int] = []
        self._order_ids: list[str] = []
        # visibility: seq of the newest visible version per id, pending versions by due time
        self._visible_seq: dict[str, int] = {}
        self._pending: list[tuple[float, int, str, Version[R]]] = []
        self._tombstones: dict[str, float] = {}

    # -- time ------------------------------------------------------------------------------

    def now(self) -> float:
        return float(self.clock())

    def _stamp(self) -> float:
        # Monotonic write stamps: a clock that steps back must not reorder versions.
        self._last_stamp = max(self._last_stamp, self.now())
        return self._last_stamp

    @property
    def lag(self) -> float:
        return self._lag

    @lag.setter
    def lag(self, seconds: float) -> None:
        with self.lock:
            self._lag = float(seconds)
            self._rebuild()

    # -- writes ----------------------------------------------------------------------------

    def create(
        self, record_id: str, record: R, *, stamp: float | None = None, delay: float = 0.0
    ) -> Version[R]:
        """A new live record; ValueError when ``record_id`` is live already. ``stamp``
        back-dates the write (seed data; clamped to now), ``delay`` makes it a late commit."""
        with self.lock:
            if record_id in self._live:
                raise ValueError(f"record {record_id} already exists")
            return self._write(record_id, record, stamp, delay)

    def update(
        self, record_id: str, record: R, *, stamp: float | None = None, delay: float = 0.0
    ) -> Version[R]:
        """A new version of a live record; KeyError when there is none."""
        with self.lock:
            if record_id not in self._live:
                raise KeyError(f"no record {record_id}")
            return self._write(record_id, record, stamp, delay)

    def put(
        self, record_id: str, record: R, *, stamp: float | None = None, delay: float = 0.0
    ) -> Version[R]:
        """Create or update."""
        with self.lock:
            return self._write(record_id, record, stamp, delay)

    def delete(
        self, record_id: str, *, stamp: float | None = None, delay: float = 0.0
    ) -> Version[R]:
        """Write a tombstone; KeyError when the record is not live."""
        with self.lock:
            if record_id not in self._live:
                raise KeyError(f"no record {record_id}")
            return self._write(record_id, None, stamp, delay)

    def load(self, items: Iterable[tuple[str, R, float]]) -> None:
        """Bulk-create historic records ``(id, record, stamp)``: each counts as written at
        its stamp (clamped to now), so only recent ones are still hidden by the lag. Much
        faster than one ``create`` each: the visible view is updated once."""
        with self.lock:
            now = self.now()
            due: list[tuple[str, R | None]] = []
            for record_id, record, stamp in items:
                if record_id in self._live:
                    raise ValueError(f"record {record_id} already exists")
                version = self._append(record_id, record, min(float(stamp), now), 0.0)
                if version.visible_at(self._lag) <= now:
                    self._visible_seq[record_id] = version.seq
                    self._tombstones.pop(record_id, None)
                    due.append((record_id, record))
                else:
                    self._queue(record_id, version)
            self.index.apply_many(due)

    def _write(
        self, record_id: str, record: R | None, stamp: float | None, delay: float
    ) -> Version[R]:
        if delay < 0:
            raise ValueError("delay must not be negative")
        written = self._stamp() if stamp is None else min(float(stamp), self.now())
        version = self._append(record_id, record, written, float(delay))
        self._queue(record_id, version)
        return version

    def _append(self, record_id: str, record: R | None, stamp: float, delay: float) -> Version[R]:
        self._seq += 1
        version = Version(self._seq, stamp, record, delay)
        self._history.setdefault(record_id, []).append(version)
        if record is None:
            del self._live[record_id]
            i = bisect_left(self._order_seqs, self._created.pop(record_id))
            del self._order_seqs[i]
            del self._order_ids[i]
        else:
            if record_id not in self._live:
                self._created[record_id] = self._seq
                self._order_seqs.append(self._seq)
                self._order_ids.append(record_id)
            self._live[record_id] = record
        return version

    def _queue(self, record_id: str, version: Version[R]) -> None:
        heapq.heappush(
            self._pending, (version.visible_at(self._lag), version.seq, record_id, version)
        )

    # -- visibility ------------------------------------------------------------------------

    def sync(self) -> None:
        """Make due versions visible (in ``index``). Visible reads call it; call it yourself
        before reading ``index`` directly."""
        with self.lock:
            now = self.now()
            pending = self._pending
            if not pending or pending[0][0] > now:
                return
            batch: list[tuple[str, R | None]] = []
            while pending and pending[0][0] <= now:
                _, seq, record_id, version = heapq.heappop(pending)
                if seq < self._visible_seq.get(record_id, 0):
                    continue  # a late commit overtaken by a newer write
                self._visible_seq[record_id] = seq
                if version.record is None:
                    self._tombstones[record_id] = version.stamp
                else:
                    self._tombstones.pop(record_id, None)
                batch.append((record_id, version.record))
            self.index.apply_many(batch)

    def _rebuild(self) -> None:
        """Recompute the visible view from full histories (the lag changed)."""
        now, lag = self.now(), self._lag
        visible: list[tuple[str, R]] = []
        pending: list[tuple[float, int, str, Version[R]]] = []
        self._visible_seq.clear()
        self._tombstones.clear()
        for record_id, versions in self._history.items():
            shown: Version[R] | None = None
            for version in versions:
                due = version.visible_at(lag)
                if due <= now:
                    if shown is None or version.seq > shown.seq:
                        shown = version
                else:
                    pending.append((due, version.seq, record_id, version))
            if shown is not None:
                self._visible_seq[record_id] = shown.seq
                if shown.record is None:
                    self._tombstones[record_id] = shown.stamp
                else:
                    visible.append((record_id, shown.record))
        heapq.heapify(pending)
        self._pending = pending
        self.index.reset(visible)

    # -- live reads ------------------------------------------------------------------------

    def get(self, record_id: str) -> R | None:
        """The live record (not lagged), or None when missing or deleted."""
        with self.lock:
            return self._live.get(record_id)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._live

    def __len__(self) -> int:
        return len(self._live)

    def live(self) -> Iterator[tuple[str, R]]:
        """Live records in creation order (a snapshot)."""
        with self.lock:
            items = [(rid, self._live[rid]) for rid in self._order_ids]
        return iter(items)

    def live_page(self, after: int | None, limit: int) -> LivePage[R]:
        """One page of live records in creation order, after the cursor ``after``."""
        with self.lock:
            seqs = self._order_seqs
            start = 0 if after is None else bisect_left(seqs, after + 1)
            ids = self._order_ids[start : start + limit]
            end = start + len(ids)
            nxt = seqs[end - 1] if ids and end < len(seqs) else None
            return LivePage([self._live[rid] for rid in ids], len(seqs), nxt)

    def known(self, record_id: str) -> bool:
        """Whether ``record_id`` was ever written (ids are not reused)."""
        return record_id in self._history

    def known_count(self) -> int:
        return len(self._history)

    def history(self, record_id: str) -> list[Version[R]]:
        with self.lock:
            return list(self._history.get(record_id, ()))

    # -- visible reads ---------------------------------------------------------------------

    def visible(self, record_id: str) -> R | None:
        with self.lock:
            self.sync()
            return self.index.records.get(record_id)

    def visible_count(self) -> int:
        with self.lock:
            self.sync()
            return len(self.index)

    def scan(
        self, *, after: Key | None = None, limit: int = 100, descending: bool = False
    ) -> Page[R]:
        """Visible records sorted by (modified, id), strictly after the key ``after``."""
        with self.lock:
            self.sync()
            return self.index.search(None, self.modified, descending, after, limit)

    def key(self, record_id: str) -> Key:
        """The (modified, id) key of a visible record: the ``after`` of the next scan."""
        with self.lock:
            return self.index.key_of(self.modified, record_id)

    def tombstones(self, since: float = -math.inf) -> list[tuple[str, float]]:
        """Visible deletions stamped at or after ``since``: (id, stamp), oldest first."""
        with self.lock:
            self.sync()
            found = [(rid, at) for rid, at in self._tombstones.items() if at >= since]
            return sorted(found, key=lambda item: (item[1], item[0]))
