"""Feed sync: contact sync for sources that hand out their own change feed.

Some upstreams keep the position themselves: Zendesk's incremental export cursor, Google's
sync tokens. Then the vendor cursor *is* the checkpoint, and the bridge's part is to carry it
safely:

- the checkpoint wraps the vendor cursor with a fallback stamp (the run's start minus the
  safety window), validated and versioned like every token of ours;
- when the vendor says the cursor expired or refuses it (`CursorExpired`), the run starts again
  transparently: from the fallback stamp when the source can list changes since a time, else as
  a full copy (Talkdesk upserts, so repeats are harmless and nothing is skipped);
- a run never ends without a vendor cursor to continue from: a source that finishes without
  one keeps the run's own start (never a null cursor);
- pages before the last carry the incoming checkpoint, so an abandoned run is redone;
- a feed whose writes can surface after the cursor passed their time (`late_writes`: Zendesk's
  export shows a late commit under its own `updated_at`) cannot continue from the newest
  cursor: the checkpoint is then the newest cursor that trails the run's start by the safety
  window (every record before it older than that), else the run's start minus the window as a
  stamp. The next run re-reads that window, so a write at most the window late is delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from pydantic import JsonValue

from .._errors import UpstreamFailed, UpstreamTimeout, UpstreamUnavailable
from .._models import Contact, ContactPage, ContactSyncMeta
from .._upstream import Clock, Deadline
from ._ahead import ReadAhead
from ._common import CHECKPOINT, OFFSET, Collector, Record, bad_token, read_token, write_token

__all__ = ["CursorExpired", "FeedBatch", "FeedSource", "FeedStart", "FeedSync"]

log = logging.getLogger("talkdesk_bridge.sync")

C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)

_MAX_RESTARTS = 2


class CursorExpired(Exception):
    """The upstream refused a cursor or sync token of ours (expired, invalidated)."""


@dataclass(frozen=True, slots=True)
class FeedStart:
    """Where a run starts: the previous run's vendor cursor, else changes since a moment
    (epoch seconds), else (both None) a full copy."""

    cursor: JsonValue = None
    since: float | None = None

    @property
    def full(self) -> bool:
        return self.cursor is None and self.since is None


@dataclass(frozen=True, slots=True)
class FeedBatch:
    records: Sequence[Record[Contact]]
    position: JsonValue  # where this run goes on; None when the run is complete
    # The vendor cursor the next run starts from (on the last page). With `late_writes`, any
    # page may carry one: a cursor past this page's records, for a later run to start from.
    checkpoint: JsonValue = None


class FeedSource(Protocol[C_contra]):
    async def read(
        self,
        ctx: C_contra,
        start: FeedStart,
        position: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> FeedBatch:
        """`position` None: the run's first read, from `start`; else one this source returned.
        Raise `CursorExpired` when the upstream refuses the cursor."""


def _json_scalar(raw: JsonValue) -> JsonValue:
    if raw is not None and not isinstance(raw, str | int):
        raise ValueError("not a cursor")
    if isinstance(raw, str) and len(raw) > 2048:
        raise ValueError("cursor too long")
    return raw


@dataclass(frozen=True, slots=True)
class _Run:
    incoming: str | None  # the checkpoint token the run started from
    fallback: float | None  # that checkpoint's stamp: where a refused cursor goes back to
    start: FeedStart
    started_at: float  # the stamp this run leaves in its checkpoint: its start minus the window
    position: JsonValue = None
    restarts: int = 0
    held: JsonValue = None  # late_writes: the newest cursor that trails `started_at`


class FeedSync(Generic[C]):
    def __init__(
        self,
        source: FeedSource[C],
        *,
        name: str,
        page_size: int,
        safety_window: float,
        budget_seconds: float = 20.0,
        rebase: bool = True,
        late_writes: bool = False,
        read_ahead: bool = False,
        check_cursor: Callable[[JsonValue], JsonValue] = _json_scalar,
        check_position: Callable[[JsonValue], JsonValue] = _json_scalar,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        """`rebase`: the source can start from a moment (`FeedStart.since`), so an expired
        cursor costs a window of changes rather than a full copy. `late_writes`: a record may
        reach the feed up to `safety_window` after its `modified` (epoch seconds, which its
        records must carry), so checkpoints trail the run's start (module docstring).
        `read_ahead`: the next read of a run starts while Talkdesk takes the current page."""
        self.source = source
        self.late_writes = late_writes
        self.read_ahead = read_ahead
        self._ahead: ReadAhead[FeedBatch] = ReadAhead(name, monotonic)
        self.name = name
        self.page_size = page_size
        self.window = safety_window
        self.budget = budget_seconds
        self.rebase = rebase
        self._check_cursor = check_cursor
        self._check_position = check_position
        self._clock = clock
        self._monotonic = monotonic

    # --- tokens ---------------------------------------------------------------------------

    def checkpoint(self, cursor: JsonValue, fallback: float | None) -> str:
        return write_token(self.name, {"c": cursor, "t": fallback})

    def _read_checkpoint(self, token: str | None) -> tuple[JsonValue, float | None]:
        """(vendor cursor, fallback stamp) of a checkpoint; (None, None) for an initial sync."""
        if not token:
            return None, None
        payload = read_token(token, CHECKPOINT, self.name)
        try:
            return self._check_cursor(payload["c"]), _stamp(payload["t"])
        except (KeyError, TypeError, ValueError):
            raise bad_token(CHECKPOINT) from None

    def _begin(self, token: str | None) -> _Run:
        cursor, fallback = self._read_checkpoint(token)
        since = fallback if cursor is None and self.rebase else None
        return _Run(
            incoming=token or None,
            fallback=fallback,
            start=FeedStart(cursor, since),
            started_at=max(0.0, self._clock() - self.window),
        )

    def _offset(self, run: _Run) -> str:
        return write_token(
            self.name,
            {
                "i": run.incoming,
                "f": run.fallback,
                "c": run.start.cursor,
                "s": run.start.since,
                "t": run.started_at,
                "p": run.position,
                "n": run.restarts,
                "h": run.held,
            },
        )

    def _read_offset(self, token: str) -> _Run:
        payload = read_token(token, OFFSET, self.name)
        try:
            incoming = payload["i"]
            if incoming is not None and (not isinstance(incoming, str) or len(incoming) > 4096):
                raise ValueError("bad checkpoint")
            started_at = _stamp(payload["t"])
            restarts = payload["n"]
            if started_at is None or not isinstance(restarts, int) or isinstance(restarts, bool):
                raise ValueError("bad run")
            if not 0 <= restarts <= _MAX_RESTARTS:
                raise ValueError("bad restarts")
            return _Run(
                incoming=incoming,
                fallback=_stamp(payload["f"]),
                start=FeedStart(self._check_cursor(payload["c"]), _stamp(payload["s"])),
                started_at=started_at,
                position=self._check_position(payload["p"]),
                restarts=restarts,
                held=self._check_cursor(payload.get("h")),
            )
        except (KeyError, TypeError, ValueError):
            raise bad_token(OFFSET) from None

    # --- pages ----------------------------------------------------------------------------

    async def page(self, ctx: C, meta: ContactSyncMeta, *, account: str = "") -> ContactPage:
        """One Talkdesk page. `account` names the upstream account (read-ahead is per account)."""
        deadline = Deadline(self.budget, self._monotonic)
        ahead = meta.offset
        if meta.offset:
            run = self._read_offset(meta.offset)
            kind = "next"
        else:
            run = self._begin(meta.synchronization_checkpoint)
            kind = "first"
        collected = Collector()
        fetched = 0
        slowest = 0.0
        finished: FeedBatch | None = None
        while True:
            began = self._monotonic()
            try:
                batch = None
                if ahead is not None:  # only the page's first read may come from the read-ahead
                    batch = await self._ahead.take((account, ahead), deadline)
                    ahead = None
                if batch is None:
                    batch = await self.source.read(
                        ctx, run.start, run.position, self.page_size, deadline
                    )
            except CursorExpired:
                run = self._restart(run)
                kind = "resync"
                continue
            except (UpstreamUnavailable, UpstreamTimeout):
                if not fetched:
                    raise
                break
            fetched += 1
            slowest = max(slowest, self._monotonic() - began)
            collected.add(batch.records)
            if self._trails(batch, run):
                run = replace(run, held=batch.checkpoint)
            if batch.position is None:
                finished = batch
                break
            if batch.position == run.position and not batch.records:
                raise UpstreamFailed(f"{self.name}: the feed made no progress")
            run = replace(run, position=batch.position)
            if len(collected) >= self.page_size or not deadline.allows(max(1.0, 2 * slowest)):
                break
        if finished is not None:
            # Never a null cursor: without one, the next run starts from this run's start.
            cursor = run.held if self.late_writes else finished.checkpoint
            checkpoint = self.checkpoint(cursor, run.started_at)
            return collected.page(self.name, checkpoint, None, "last")
        incoming = run.incoming or self.checkpoint(None, None)
        next_offset = self._offset(run)
        if self.read_ahead:
            self._start_ahead(ctx, account, run, next_offset)
        return collected.page(self.name, incoming, next_offset, kind)

    def _start_ahead(self, ctx: C, account: str, run: _Run, token: str) -> None:
        deadline = Deadline(self.budget, self._monotonic)
        self._ahead.start(
            (account, token),
            lambda: self.source.read(ctx, run.start, run.position, self.page_size, deadline),
        )

    async def close(self) -> None:
        await self._ahead.close()

    def _trails(self, batch: FeedBatch, run: _Run) -> bool:
        """Whether `batch.checkpoint` may start a later run with late writes in mind: every
        record before it is older than the run's start minus the window (the feed is in
        `modified` order, so its last record says it; an empty page says nothing)."""
        if not self.late_writes or batch.checkpoint is None or not batch.records:
            return False
        newest = batch.records[-1].modified
        return isinstance(newest, int | float) and newest <= run.started_at

    def _restart(self, run: _Run) -> _Run:
        """The upstream refused our cursor: start this run again, as far back as needed."""
        if run.restarts >= _MAX_RESTARTS:
            raise UpstreamFailed(f"{self.name} keeps refusing the sync cursor")
        if run.start.cursor is not None:
            # The previous run's start minus the window, when the source can start from a time.
            start = FeedStart(None, run.fallback if self.rebase else None)
        elif run.position is not None:
            start = run.start  # a continuation expired mid-run: its start still holds
        else:
            start = FeedStart()  # the start itself was refused
        log.warning(
            "%s refused a sync cursor: starting again %s",
            self.name,
            "as a full copy" if start.full else "from the previous run's time",
        )
        return replace(run, start=start, position=None, restarts=run.restarts + 1, held=None)


def _stamp(raw: JsonValue) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < 10**11:
        raise ValueError("bad stamp")
    return float(raw)
