"""Sorted, keyset-paged views over records: what vendor list, search and export endpoints read.

Every sort field has a lazily built list of keys ``(sort_key(value), id)``, so ties on a value
are broken by id and a page after a position costs O(log n + page) with ``bisect``. A vendor's
query language compiles into a ``Query``: a predicate over one record, a canonical string (the
cache key of its match list) and, when the whole query is a range on one field, a *plan* of
half-open key intervals that the index answers with ``bisect`` alone.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "HIGH_ID",
    "LOW_ID",
    "NEG_INF",
    "POS_INF",
    "Interval",
    "Key",
    "Page",
    "Query",
    "SortedIndex",
    "intersect_intervals",
    "merge_intervals",
    "sort_key",
    "value_span",
]

R = TypeVar("R")
Key = tuple[Any, str]
Interval = tuple[Key, Key]
Getter = Callable[[Any], Any]

# Ids that sort before / after every real id, so interval bounds never collide with a record.
LOW_ID = ""
HIGH_ID = "\U0010ffff"


def sort_key(value: Any) -> tuple[Any, ...]:
    """Total order over mixed JSON values: null < numbers < strings < anything else."""
    if value is None:
        return (0,)
    if isinstance(value, int | float):  # bool is an int: True sorts as 1
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, default=str))


NEG_INF: Key = ((1, -math.inf), LOW_ID)
"""Below every number (nulls sort lower still), as an interval bound."""
POS_INF: Key = ((1, math.inf), HIGH_ID)
"""Above every number (strings sort higher still), as an interval bound."""


def value_span(value: Any) -> Interval:
    """The keys of every record whose sort value equals ``value``: ``[at, after)``."""
    key = sort_key(value)
    return (key, LOW_ID), (key, HIGH_ID)


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint union of half-open intervals (empty ones dropped)."""
    merged: list[Interval] = []
    for lo, hi in sorted(intervals):
        if lo >= hi:
            continue
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def intersect_intervals(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo < hi:
                out.append((lo, hi))
    return merge_intervals(out)


@dataclass(slots=True)
class Query:
    """A compiled vendor query. ``plan``: (field, intervals over that field's keys) when the
    query is exactly a range on one field; the index then skips the predicate."""

    predicate: Callable[[Any], bool]
    canonical: str
    plan: tuple[str, list[Interval]] | None = None


@dataclass(slots=True)
class Page(Generic[R]):
    records: list[R]
    total: int  # records matching the query, over all pages
    has_more: bool


class _Match:
    __slots__ = ("keys", "predicate", "sort_field")

    def __init__(self, predicate: Callable[[Any], bool], sort_field: str, keys: list[Key]) -> None:
        self.predicate = predicate
        self.sort_field = sort_field
        self.keys = keys


class SortedIndex(Generic[R]):
    """Records by id plus, per sort field, a sorted key list built on first use.

    ``fields`` maps a field name to the getter of its sort value (a mapping, or a function
    returning None for unknown names). Indexes and cached match lists are maintained
    incrementally on single writes (``insort``/``del``) and dropped for a lazy rebuild on bulk
    loads, where one sort beats thousands of insertions. Not thread-safe: the owner locks.
    """

    BULK_THRESHOLD = 256
    MAX_CACHED_MATCHES = 32

    def __init__(self, fields: Mapping[str, Getter] | Callable[[str], Getter | None]) -> None:
        self._lookup: Callable[[str], Getter | None] = (
            fields.get if isinstance(fields, Mapping) else fields
        )
        self._getters: dict[str, Getter] = {}
        self.records: dict[str, R] = {}
        self._indexes: dict[str, list[Key]] = {}
        self._matches: OrderedDict[tuple[str, str], _Match] = OrderedDict()

    def __len__(self) -> int:
        return len(self.records)

    def getter(self, field: str) -> Getter:
        found = self._getters.get(field)
        if found is None:
            found = self._lookup(field)
            if found is None:
                raise KeyError(f"{field} is not a sort field of this index")
            self._getters[field] = found
        return found

    def _key(self, field: str, record_id: str, record: R) -> Key:
        return (sort_key(self.getter(field)(record)), record_id)

    # -- writes ---------------------------------------------------------------------------

    def apply(self, record_id: str, record: R | None) -> None:
        """Make ``record`` (None: its absence) the current version of ``record_id``."""
        old = self.records.get(record_id)
        if record is None:
            if old is None:
                return
            del self.records[record_id]
        else:
            self.records[record_id] = record
        for name, keys in self._indexes.items():
            if old is not None:
                _remove(keys, self._key(name, record_id, old))
            if record is not None:
                insort(keys, self._key(name, record_id, record))
        for match in self._matches.values():
            if old is not None and match.predicate(old):
                _remove(match.keys, self._key(match.sort_field, record_id, old))
            if record is not None and match.predicate(record):
                insort(match.keys, self._key(match.sort_field, record_id, record))

    def apply_many(self, items: Iterable[tuple[str, R | None]]) -> None:
        items = list(items)
        # Incremental insort costs a memmove per key; past a fraction of the index, re-sorting
        # once is cheaper.
        if len(items) < max(self.BULK_THRESHOLD, len(self.records) // 16):
            for record_id, record in items:
                self.apply(record_id, record)
            return
        for record_id, record in items:
            if record is None:
                self.records.pop(record_id, None)
            else:
                self.records[record_id] = record
        self._rebuild(list(self._indexes))

    def reset(self, items: Iterable[tuple[str, R]]) -> None:
        """Replace every record; indexes that were built are rebuilt at once."""
        warm = list(self._indexes)
        self.records = dict(items)
        self._rebuild(warm)

    def clear(self) -> None:
        self.records.clear()
        self._rebuild([])

    def _rebuild(self, warm: list[str]) -> None:
        self._indexes.clear()
        self._matches.clear()
        self.warm(*warm)  # one sort now beats a slow first page later

    # -- reads ----------------------------------------------------------------------------

    def built_fields(self) -> list[str]:
        return list(self._indexes)

    def warm(self, *fields: str) -> None:
        """Build sort indexes ahead of the first read (e.g. after bulk seeding)."""
        for name in fields:
            self.sorted_keys(name)

    def sorted_keys(self, field: str) -> list[Key]:
        keys = self._indexes.get(field)
        if keys is None:
            get = self.getter(field)
            keys = [(sort_key(get(r)), rid) for rid, r in self.records.items()]
            keys.sort()
            self._indexes[field] = keys
        return keys

    def _match_keys(self, query: Query, sort_field: str) -> list[Key]:
        cache_key = (query.canonical, sort_field)
        match = self._matches.get(cache_key)
        if match is None:
            pred, records = query.predicate, self.records
            # Filtering the already sorted index keeps the result ordered without a sort.
            keys = [k for k in self.sorted_keys(sort_field) if pred(records[k[1]])]
            match = _Match(pred, sort_field, keys)
            self._matches[cache_key] = match
            if len(self._matches) > self.MAX_CACHED_MATCHES:
                self._matches.popitem(last=False)
        else:
            self._matches.move_to_end(cache_key)
        return match.keys

    def search(
        self,
        query: Query | None,
        sort_field: str,
        descending: bool = False,
        after: Key | None = None,
        limit: int = 50,
    ) -> Page[R]:
        """Up to ``limit`` records matching ``query`` (None: all), strictly after the key
        ``after`` in sort order. Resume a page with the last record's key."""
        if query is None or (query.plan is not None and query.plan[0] == sort_field):
            keys = self.sorted_keys(sort_field)
            if query is None or query.plan is None:
                spans = [(0, len(keys))]
            else:
                spans = [(bisect_left(keys, lo), bisect_left(keys, hi)) for lo, hi in query.plan[1]]
        else:
            keys = self._match_keys(query, sort_field)
            spans = [(0, len(keys))]
        total = sum(hi - lo for lo, hi in spans)
        picked = _take(keys, spans, after, descending, limit + 1)
        records = self.records
        return Page(
            records=[records[k[1]] for k in picked[:limit]],
            total=total,
            has_more=len(picked) > limit,
        )

    def key_of(self, field: str, record_id: str) -> Key:
        """The key of a current record in ``field``'s order (a keyset cursor position)."""
        return self._key(field, record_id, self.records[record_id])


def _remove(keys: list[Key], key: Key) -> None:
    i = bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        del keys[i]


def _take(
    keys: list[Key], spans: list[tuple[int, int]], after: Key | None, descending: bool, n: int
) -> list[Key]:
    """Up to ``n`` keys strictly after ``after`` in sort direction, within ``spans``."""
    out: list[Key] = []
    if not descending:
        start = 0 if after is None else bisect_right(keys, after)
        for lo, hi in spans:
            s = max(lo, start)
            if s >= hi:
                continue
            out.extend(keys[s : min(hi, s + n - len(out))])
            if len(out) >= n:
                break
        return out
    end = len(keys) if after is None else bisect_left(keys, after)
    for lo, hi in reversed(spans):
        e = min(hi, end)
        if e <= lo:
            continue
        chunk = keys[max(lo, e - (n - len(out))) : e]
        chunk.reverse()
        out.extend(chunk)
        if len(out) >= n:
            break
    return out
