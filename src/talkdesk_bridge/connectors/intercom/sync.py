"""Contact sync over Intercom's contact search, designed so that no contact is ever lost.

A run reads `POST /contacts/search` sorted by `updated_at` ascending with the upstream cursor.
Intercom's date filters are day-granular, so "updated_at >= X" is asked as
`OR(updated_at > X, updated_at = X)` (X's whole day onward, a superset) and the exact bound is
applied here. The run delivers `updated_at` in [L, S]: L is the previous run's checkpoint (0 for
the initial sync), S the run's start; it hands out S - safety window as the next checkpoint.

Why nothing is lost: a contact version the run does not deliver was written during the run, or
was hidden by search lag when the run passed its position; either way its `updated_at` is at
least S - window (the window covers the lag and clock skew), the next run's lower bound. A
version stable during the run sits at a fixed position of the sort, and the cursor walk passes
every position in [L, S] once. A contact updated mid-run moves forward, past S: the next run
delivers it (Talkdesk upserts). No page carries one id twice.

Lanes: a large run is cut at day boundaries into consecutive ranges [b0, b1), [b1, b2) ... of
about twenty upstream pages each (picked from one round of counting searches), each read by
its own search and cursor, so that several cursor chains can run at once. Lanes are delivered
one after the other, so the order stays ascending, and a lane ends at its first record at or
past the next boundary: every position in [L, S] still belongs to exactly one lane's walk.
Boundaries only spread the work; where they fall does not matter for correctness.

The offset carries the run's bounds, the lanes left, the last delivered (updated_at, id), the
upstream cursor and where the upstream query started. The same offset always resumes at the
same place (Talkdesk's retry after a 503); a cursor Intercom refuses is replaced by a fresh
search from the last delivered second, re-reading that whole second since the order of ties is
not promised. Pages before the last carry the run's *lower* bound as checkpoint, so a run that
Talkdesk abandons half-way is redone rather than skipped.

Upstream pages are fetched ahead of Talkdesk into a bounded in-process cache keyed by run, query
start and cursor: the next pages of the lane being delivered and of the few lanes after it, a
bounded number per lane, so memory stays bounded however large the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ..._errors import (
    InvalidRequest,
    UpstreamError,
    UpstreamFailed,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from ..._models import Contact, ContactPage, ContactSyncMeta
from ..._tokens import decode_token, encode_token
from ..._upstream import Clock, Deadline
from .client import Session, checked_id

__all__ = [
    "ContactSync",
    "Convert",
    "Item",
    "Position",
    "RawPage",
    "Search",
    "Split",
    "UpstreamPage",
    "since_query",
]

log = logging.getLogger("talkdesk_bridge.intercom")

T = TypeVar("T")

# (updated_at, id, contact): one upstream record, mapped.
Item = tuple[int | None, str, Contact]
# search(session, query_from, cursor, deadline): one upstream page as received
Search = Callable[[Session, int, str | None, Deadline], Awaitable["RawPage"]]
# convert(session, records, deadline): the page's contacts
Convert = Callable[[Session, list[dict[str, Any]], Deadline], Awaitable[tuple[Item, ...]]]
# split(session, lower, first_updated_at, until, total, lanes, deadline): lane boundaries
Split = Callable[[Session, int, int, int, int, int, Deadline], Awaitable[tuple[int, ...]]]
_Key = tuple[str, int, int, str | None]

_MAX_CURSOR = 2048
_MAX_LANES = 16
_MAX_RESTARTS = 3
_CACHE_ENTRIES = 96  # about 25 MB of mapped contacts at most
_CACHE_SECONDS = 60.0
_PAGES_PER_LANE = 20  # short lanes: one is read ahead whole while another is delivered


def since_query(value: int) -> dict[str, Any]:
    """Contacts updated on `value`'s day or later (date operators are day-granular)."""
    return {
        "operator": "OR",
        "value": [
            {"field": "updated_at", "operator": ">", "value": value},
            {"field": "updated_at", "operator": "=", "value": value},
        ],
    }


@dataclass(frozen=True, slots=True)
class RawPage:
    records: list[dict[str, Any]]
    next_cursor: str | None
    last_updated: int | None  # of the last record: the sort is ascending
    first_updated: int | None = None
    total: int | None = None  # matches of the whole query


@dataclass(frozen=True, slots=True)
class UpstreamPage:
    items: tuple[Item, ...]
    next_cursor: str | None
    first_updated: int | None = None
    total: int | None = None


def _uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True, slots=True)
class Position:
    lower: int  # the run delivers updated_at >= lower
    until: int  # ... and <= until (the run's start); later ones are the next run's
    checkpoint: int  # the next run's lower bound
    query_from: int  # where the upstream query starts: the lane's start, or a restart's second
    cursor: str | None = None
    key: tuple[int, str] | None = None  # last delivered (updated_at, id)
    restarts: int = 0  # consecutive refused cursors
    bounds: tuple[int, ...] = ()  # ends of this lane and the lanes after it

    @property
    def lane_end(self) -> int:
        """First `updated_at` past this lane."""
        return self.bounds[0] if self.bounds else self.until + 1

    def next_lane(self) -> Position:
        return replace(
            self, query_from=self.bounds[0], cursor=None, restarts=0, bounds=self.bounds[1:]
        )

    def lanes_ahead(self) -> list[Position]:
        """The first position of every later lane."""
        lanes: list[Position] = []
        pos = self
        while pos.bounds:
            pos = pos.next_lane()
            lanes.append(pos)
        return lanes

    def encode(self) -> str:
        return encode_token(
            {
                "l": self.lower,
                "u": self.until,
                "c": self.checkpoint,
                "q": self.query_from,
                "s": self.cursor,
                "k": list(self.key) if self.key else None,
                "r": self.restarts,
                "b": list(self.bounds),
            }
        )

    @classmethod
    def decode(cls, token: str) -> Position:
        payload = decode_token(token, "meta.offset")
        try:
            ints = [payload[name] for name in ("l", "u", "c", "q", "r")]
            cursor, key, bounds = payload["s"], payload["k"], payload["b"]
            if not all(_uint(i) for i in ints):
                raise ValueError("bad bound")
            if cursor is not None and not (
                isinstance(cursor, str) and 0 < len(cursor) <= _MAX_CURSOR
            ):
                raise ValueError("bad cursor")
            if key is not None:
                at, cid = key
                if not _uint(at) or not checked_id("contact", cid):
                    raise ValueError("bad key")
                key = (at, cid)
            if not isinstance(bounds, list) or len(bounds) > _MAX_LANES:
                raise ValueError("bad lanes")
            if not all(_uint(b) for b in bounds) or bounds != sorted(set(bounds)):
                raise ValueError("bad lanes")
        except (KeyError, TypeError, ValueError):
            raise InvalidRequest("meta.offset is not a value this bridge issued") from None
        lower, until, checkpoint, query_from, restarts = ints
        return cls(lower, until, checkpoint, query_from, cursor, key, restarts, tuple(bounds))


def encode_checkpoint(value: int) -> str:
    return encode_token({"cp": value})


def decode_checkpoint(token: str | None) -> int | None:
    if not token:
        return None
    payload = decode_token(token, "meta.synchronization_checkpoint")
    value = payload.get("cp")
    if not _uint(value):
        raise InvalidRequest("meta.synchronization_checkpoint is not a value this bridge issued")
    assert isinstance(value, int)
    return value


# --- the page cache -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Head:
    """What the read-ahead needs of a page to go on: known before its contacts are mapped."""

    next_cursor: str | None
    last_updated: int | None


@dataclass(slots=True)
class _Entry:
    head: asyncio.Future[_Head]
    page: asyncio.Future[UpstreamPage] | None = None
    ahead: int = 0  # pages to fetch after this one, once its cursor is known


class _PageCache:
    """Upstream pages by (account, run, query start, cursor): prefetched and recent ones.

    Recent pages stay so that a repeated offset gets the very page it got before; entries
    expire quickly, so a page is never much older than the run reading it.
    """

    def __init__(self, clock: Clock, entries: int = _CACHE_ENTRIES, ttl: float = _CACHE_SECONDS):
        self._clock = clock
        self._entries = entries
        self._ttl = ttl
        self._pages: OrderedDict[_Key, tuple[float, _Entry]] = OrderedDict()

    def get(self, key: _Key) -> _Entry | None:
        found = self._pages.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._pages[key]
            return None
        self._pages.move_to_end(key)
        return found[1]

    def put(self, key: _Key, entry: _Entry) -> None:
        self._pages[key] = (self._clock() + self._ttl, entry)
        self._pages.move_to_end(key)
        now = self._clock()
        while self._pages and (
            len(self._pages) > self._entries or next(iter(self._pages.values()))[0] <= now
        ):
            self._pages.popitem(last=False)

    def drop(self, key: _Key) -> None:
        self._pages.pop(key, None)

    def served(self, key: _Key) -> None:
        """A delivered page goes first in line for eviction: it is kept only for a retry of
        the same offset, while pages read ahead are still to be delivered."""
        if key in self._pages:
            self._pages.move_to_end(key, last=False)

    def futures(self) -> list[asyncio.Future[Any]]:
        return [f for _, entry in self._pages.values() for f in (entry.head, entry.page) if f]

    def clear(self) -> None:
        self._pages.clear()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a failed prefetch is only a missed shortcut, never an error


# --- the sync ---------------------------------------------------------------------------------


class ContactSync:
    def __init__(
        self,
        search: Search,
        convert: Convert,
        *,
        page_size: int,
        search_page_size: int,
        safety_window: float,
        budget: float,
        prefetch_pages: int,
        chains: int = 1,
        split: Split | None = None,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._search = search
        self._convert = convert
        self._split = split
        self._page_size = page_size
        self._search_page_size = search_page_size
        self._window = safety_window
        self._budget = budget
        self._prefetch_pages = prefetch_pages
        self._chains = chains if split is not None else 1
        self._clock = clock
        self._monotonic = monotonic
        self._cache = _PageCache(monotonic)

    async def close(self) -> None:
        pending = [f for f in self._cache.futures() if not f.done()]
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._cache.clear()

    def _start(self, checkpoint: str | None) -> Position:
        lower = decode_checkpoint(checkpoint) or 0
        now = int(self._clock())
        # Never later than start - window: whatever the run cannot see yet is after it.
        return Position(
            lower=lower,
            until=now,
            checkpoint=max(0, int(now - self._window)),
            query_from=lower,
        )

    async def page(self, session: Session, meta: ContactSyncMeta) -> ContactPage:
        new_run = not meta.offset
        pos = (
            Position.decode(meta.offset)
            if meta.offset
            else self._start(meta.synchronization_checkpoint)
        )
        deadline = Deadline(self._budget, self._monotonic)
        delivered: dict[str, Contact] = {}
        finished = False
        fetched = 0
        slowest = 0.0
        while True:
            started = self._monotonic()
            try:
                upstream = await self._get(session, pos, deadline)
            except UpstreamRejected as exc:
                if pos.cursor is None or exc.upstream_status != 400:
                    raise
                pos = self._restart(pos)
                continue
            except (UpstreamUnavailable, UpstreamTimeout):
                if not fetched:
                    raise  # Talkdesk retries the same offset
                break  # keep the progress made; the next request resumes here
            fetched += 1
            slowest = max(slowest, self._monotonic() - started)
            if new_run:
                new_run = False
                pos = replace(pos, bounds=await self._plan(session, pos, upstream, deadline))
            key = pos.key
            lane_done = False
            for at, cid, contact in upstream.items:
                if at is not None:
                    if at < pos.query_from:
                        continue  # the day-granular query's head, before the exact bound
                    if at >= pos.lane_end:
                        lane_done = True  # the next lane's (or, past `until`, the next run's)
                        break
                    key = (at, cid)
                delivered.pop(cid, None)  # one id once per page, its latest version
                delivered[cid] = contact
            # Only a cursor Intercom accepted ends a streak of refused ones.
            restarts = 0 if pos.cursor is not None else pos.restarts
            pos = replace(pos, cursor=upstream.next_cursor, key=key, restarts=restarts)
            if upstream.next_cursor is None:
                # The search from this lane's start onward is exhausted: later lanes, which it
                # covers too, are empty.
                finished = True
            elif lane_done:
                if not pos.bounds:
                    finished = True
                else:
                    pos = pos.next_lane()
            if finished:
                break
            if len(delivered) >= self._page_size or not deadline.allows(max(1.0, 2 * slowest)):
                break
        if finished:
            return ContactPage(
                contacts=list(delivered.values()),
                synchronization_checkpoint=encode_checkpoint(pos.checkpoint),
            )
        self._prefetch(session, pos)
        return ContactPage(
            contacts=list(delivered.values()),
            next_offset=pos.encode(),
            synchronization_checkpoint=encode_checkpoint(pos.lower),
        )

    async def _plan(
        self, session: Session, pos: Position, first: UpstreamPage, deadline: Deadline
    ) -> tuple[int, ...]:
        """Lane boundaries for a new run, when it is big enough for lanes to pay."""
        total, start = first.total, first.first_updated
        if self._split is None or self._chains < 2 or total is None or start is None:
            return ()
        lanes = min(_MAX_LANES, total // (_PAGES_PER_LANE * self._search_page_size))
        if lanes < 2:
            return ()
        try:
            bounds = await self._split(
                session, pos.lower, max(start, pos.lower), pos.until, total, lanes, deadline
            )
        except UpstreamUnauthorized:
            raise
        except UpstreamError as exc:  # lanes only spread the work: go on with one
            log.info("no lanes for this run: %s", exc.message)
            return ()
        # Boundaries strictly inside (query_from, until], ascending, distinct.
        return tuple(sorted({b for b in bounds if pos.query_from < b <= pos.until}))[
            : _MAX_LANES - 1
        ]

    def _restart(self, pos: Position) -> Position:
        """A fresh search from the last delivered second, after Intercom refused our cursor."""
        if pos.restarts >= _MAX_RESTARTS:
            raise UpstreamFailed("Intercom keeps refusing its own search cursor")
        log.warning("Intercom refused a search cursor; searching again from the last position")
        # The key may be the previous lane's: never restart before this lane's start.
        start = max(pos.key[0], pos.query_from) if pos.key else pos.query_from
        return replace(pos, query_from=start, cursor=None, restarts=pos.restarts + 1)

    @staticmethod
    def _key(session: Session, pos: Position) -> _Key:
        return (session.account, pos.until, pos.query_from, pos.cursor)

    async def _get(self, session: Session, pos: Position, deadline: Deadline) -> UpstreamPage:
        """The upstream page at `pos`: prefetched, being fetched, or fetched now (and shared)."""
        key = self._key(session, pos)
        entry = self._cache.get(key)
        if entry is not None:
            assert entry.page is not None
            try:
                page = await self._wait(entry.page, deadline)
            except (UpstreamUnavailable, UpstreamTimeout, UpstreamFailed, UpstreamRejected):
                self._cache.drop(key)  # a failed prefetch: ask again, with this request's budget
            else:
                self._cache.served(key)
                return page
        entry = self._ensure(session, pos, deadline)
        assert entry.page is not None
        try:
            page = await self._wait(entry.page, deadline)
        except BaseException:
            if self._cache.get(key) is entry:
                self._cache.drop(key)  # a retry of this offset must ask Intercom again
            raise
        self._cache.served(key)
        return page

    @staticmethod
    async def _wait(future: asyncio.Future[T], deadline: Deadline) -> T:
        try:
            async with asyncio.timeout(deadline.remaining()):
                # Shielded: another request or the read-ahead may be waiting for the same page.
                return await asyncio.shield(future)
        except TimeoutError:
            raise UpstreamTimeout("Intercom did not answer within the time budget") from None

    def _ensure(
        self, session: Session, pos: Position, deadline: Deadline | None = None, ahead: int = 0
    ) -> _Entry:
        """The cache entry for `pos`, starting its fetch when there is none."""
        key = self._key(session, pos)
        entry = self._cache.get(key)
        if entry is None:
            entry = _Entry(asyncio.get_running_loop().create_future(), ahead=ahead)
            deadline = deadline or Deadline(self._budget, self._monotonic)
            entry.page = asyncio.ensure_future(self._load(session, pos, deadline, entry))
            entry.head.add_done_callback(_retrieve)
            entry.page.add_done_callback(_retrieve)
            self._cache.put(key, entry)
        entry.ahead = max(entry.ahead, ahead)
        return entry

    async def _load(
        self, session: Session, pos: Position, deadline: Deadline, entry: _Entry
    ) -> UpstreamPage:
        try:
            raw = await self._search(session, pos.query_from, pos.cursor, deadline)
        except BaseException as exc:
            if not entry.head.done():
                entry.head.set_exception(exc)
            raise
        entry.head.set_result(_Head(raw.next_cursor, raw.last_updated))
        # The next call leaves now, before this page is mapped.
        self._read_ahead(session, pos, entry)
        await asyncio.sleep(0)
        items = await self._convert(session, raw.records, deadline)
        # The raw records are dropped here: only mapped contacts stay cached.
        return UpstreamPage(items, raw.next_cursor, raw.first_updated, raw.total)

    def _prefetch(self, session: Session, pos: Position) -> None:
        """Keep this lane's next pages, and the first ones of the lanes after it, coming."""
        if self._prefetch_pages <= 0:
            return
        for lane in [pos, *pos.lanes_ahead()[: self._chains - 1]]:
            entry = self._ensure(session, lane, ahead=self._prefetch_pages - 1)
            self._read_ahead(session, lane, entry)

    def _read_ahead(self, session: Session, pos: Position, entry: _Entry) -> None:
        """Walk the pages already known and start the first one missing, up to `entry.ahead`
        pages on, within the lane; a page still in flight carries on when it lands."""
        while entry.ahead > 0 and entry.head.done() and not entry.head.cancelled():
            if entry.head.exception() is not None:
                return  # the reader fetches it itself, with retries
            head = entry.head.result()
            if head.next_cursor is None:
                return
            if head.last_updated is not None and head.last_updated >= pos.lane_end:
                return
            pos = replace(pos, cursor=head.next_cursor)
            entry = self._ensure(session, pos, ahead=entry.ahead - 1)
