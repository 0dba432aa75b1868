"""Window sync: contact sync for sources that list records by modification time.

A run reads the window [lower, upper] of modification stamps in the source's key order
(`(modified, id)`, or `id` alone within a fixed window) with keyset paging:

- `upper` is fixed when the run starts (the source's watermark: the newest stamp, or "now"), so
  a run ends even while writes never stop, and a record changed mid-run is the next run's;
- `lower` is the previous run's `upper` moved back by the lag window, which covers late
  commits, index lag and clock skew: a version the run did not see was written (or became
  visible) after the run passed its position, which is after the run started, so its stamp is
  at least `upper - lag`, inside the next run's window;
- the offset carries the run's bounds, the last key delivered and the source's own resume
  state (an upstream cursor), so the same offset resumes the same page (Talkdesk's retry);
- pages before the last carry the run's *incoming* checkpoint, so a run that Talkdesk abandons
  part-way is redone, never skipped.

The connector supplies the one primitive (`WindowSource.fetch`) and the watermark; everything
else (bounds, lag, keyset, ties, tokens, time budget, read-ahead, duplicates, metrics) is here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from pydantic import JsonValue

from .._errors import UpstreamFailed, UpstreamTimeout, UpstreamUnavailable
from .._models import Contact, ContactPage, ContactSyncMeta
from .._tokens import decode_value, encode_value
from .._upstream import Clock, Deadline
from ._ahead import ReadAhead
from ._common import CHECKPOINT, OFFSET, Collector, Record, bad_token, read_token, write_token
from ._stamps import NativeStamps, Stamps

__all__ = ["Batch", "Window", "WindowSource", "WindowSync"]

log = logging.getLogger("talkdesk_bridge.sync")

C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)

_MAX_KEY_PARTS = 8


@dataclass(frozen=True, slots=True)
class Window:
    lower: Any  # inclusive; None: from the beginning (a full copy)
    upper: Any  # inclusive; fixed when the run starts

    def holds(self, stamp: Any) -> bool:
        return bool((self.lower is None or stamp >= self.lower) and stamp <= self.upper)

    @property
    def empty(self) -> bool:
        return self.lower is not None and bool(self.lower > self.upper)


@dataclass(frozen=True, slots=True)
class Batch:
    """One upstream read: records in key order, after the key asked for."""

    records: Sequence[Record[Contact]]
    done: bool  # nothing in the window after the last record
    resume: JsonValue = None  # the source's state for its next call (an upstream cursor)


class WindowSource(Protocol[C_contra]):
    async def watermark(self, ctx: C_contra, deadline: Deadline) -> Any:
        """The new run's `upper` (the newest stamp, or the upstream's "now"); None when empty."""

    async def fetch(
        self,
        ctx: C_contra,
        window: Window,
        after: tuple[Any, ...] | None,
        resume: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> Batch:
        """Records in the window (a superset is fine when they carry `modified`) with a key
        greater than `after`, in key order, about `limit` of them."""


@dataclass(frozen=True, slots=True)
class _Run:
    since: Any  # the checkpoint the run started from (None: initial sync)
    window: Window
    after: tuple[Any, ...] | None = None
    resume: JsonValue = None


def _accept_any(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return key


def _no_resume(raw: JsonValue) -> JsonValue:
    if raw is not None:
        raise ValueError("this source keeps no resume state")
    return None


class WindowSync(Generic[C]):
    def __init__(
        self,
        source: WindowSource[C],
        *,
        name: str,
        page_size: int,
        lag_seconds: float,
        budget_seconds: float = 20.0,
        stamps: Stamps | None = None,
        read_ahead: bool = False,
        check_key: Callable[[tuple[Any, ...]], tuple[Any, ...]] = _accept_any,
        check_resume: Callable[[JsonValue], JsonValue] = _no_resume,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.source = source
        self.name = name
        self.page_size = page_size
        self.lag = lag_seconds
        self.budget = budget_seconds
        self.stamps = stamps or NativeStamps()
        self.read_ahead = read_ahead
        self._check_key = check_key
        self._check_resume = check_resume
        self._monotonic = monotonic
        self._ahead: ReadAhead[Batch] = ReadAhead(name, monotonic)

    async def close(self) -> None:
        await self._ahead.close()

    # --- tokens ---------------------------------------------------------------------------

    def _stamp(self, raw: JsonValue, *, nullable: bool) -> Any:
        if raw is None:
            if not nullable:
                raise ValueError("a stamp is required")
            return None
        return self.stamps.decode(raw)

    def checkpoint(self, since: Any) -> str:
        return write_token(self.name, {"w": None if since is None else self.stamps.encode(since)})

    def read_checkpoint(self, token: str | None) -> Any:
        if not token:
            return None
        payload = read_token(token, CHECKPOINT, self.name)
        try:
            return self._stamp(payload["w"], nullable=True)
        except (KeyError, TypeError, ValueError):
            raise bad_token(CHECKPOINT) from None

    def _offset(self, run: _Run) -> str:
        enc = self.stamps.encode
        return write_token(
            self.name,
            {
                "c": None if run.since is None else enc(run.since),
                "l": None if run.window.lower is None else enc(run.window.lower),
                "u": enc(run.window.upper),
                "k": None if run.after is None else [encode_value(v) for v in run.after],
                "r": run.resume,
            },
        )

    def _read_offset(self, token: str) -> _Run:
        payload = read_token(token, OFFSET, self.name)
        try:
            since = self._stamp(payload["c"], nullable=True)
            lower = self._stamp(payload["l"], nullable=True)
            upper = self._stamp(payload["u"], nullable=False)
            raw_key = payload["k"]
            after: tuple[Any, ...] | None = None
            if raw_key is not None:
                if not isinstance(raw_key, list) or not 0 < len(raw_key) <= _MAX_KEY_PARTS:
                    raise ValueError("bad key")
                after = self._check_key(tuple(decode_value(v) for v in raw_key))
            resume = self._check_resume(payload["r"])
            if lower is not None and type(lower) is not type(upper):
                raise ValueError("mixed stamps")
        except (KeyError, TypeError, ValueError):
            raise bad_token(OFFSET) from None
        return _Run(since, Window(lower, upper), after, resume)

    def _window(self, since: Any, upper: Any) -> Window:
        if since is None:
            return Window(None, upper)
        try:
            lower = self.stamps.shift(since, self.lag)
        except (TypeError, ValueError):
            raise bad_token(CHECKPOINT) from None
        if type(lower) is not type(upper):
            # Not a stamp this source hands out (a checkpoint of another table, forged...).
            raise bad_token(CHECKPOINT)
        return Window(lower, upper)

    # --- pages ----------------------------------------------------------------------------

    async def page(self, ctx: C, meta: ContactSyncMeta, *, account: str = "") -> ContactPage:
        """One Talkdesk page. `account` names the upstream account (read-ahead is per account)."""
        deadline = Deadline(self.budget, self._monotonic)
        collected = Collector()
        if meta.offset:
            token: str | None = meta.offset
            run = self._read_offset(meta.offset)
            kind = "next"
        else:
            token = None
            since = self.read_checkpoint(meta.synchronization_checkpoint)
            upper = await self.source.watermark(ctx, deadline)
            if upper is None:  # nothing to read yet: keep the checkpoint we were given
                return collected.page(self.name, self.checkpoint(since), None, "last")
            run = _Run(since, self._window(since, upper))
            kind = "first"
        try:
            done = run.window.empty
        except TypeError:
            raise bad_token(OFFSET if meta.offset else CHECKPOINT) from None
        fetched = 0
        slowest = 0.0
        while not done:
            started = self._monotonic()
            try:
                batch = await self._fetch(ctx, account, run, token, deadline)
            except (UpstreamUnavailable, UpstreamTimeout):
                if not fetched:
                    raise  # Talkdesk retries the same offset
                break  # keep what this page has; the next request resumes here
            token = None  # only the page's first read may come from the read-ahead
            fetched += 1
            slowest = max(slowest, self._monotonic() - started)
            run, accepted = self._advance(run, batch)
            collected.add(accepted)
            done = batch.done
            if len(collected) >= self.page_size or not deadline.allows(max(1.0, 2 * slowest)):
                break
        if done:
            return collected.page(self.name, self.checkpoint(run.window.upper), None, "last")
        next_offset = self._offset(run)
        if self.read_ahead:
            self._start_ahead(ctx, account, run, next_offset)
        return collected.page(self.name, self.checkpoint(run.since), next_offset, kind)

    def _advance(self, run: _Run, batch: Batch) -> tuple[_Run, list[Record[Contact]]]:
        after = run.after
        accepted: list[Record[Contact]] = []
        try:
            for record in batch.records:
                if after is not None and record.key <= after:
                    continue  # an overlapping read: never deliver a position twice
                after = record.key
                if record.modified is None or run.window.holds(record.modified):
                    accepted.append(record)
        except TypeError:
            raise UpstreamFailed(f"{self.name}: sort keys that do not compare") from None
        if after == run.after and batch.resume == run.resume and not batch.done:
            # The same read again would answer the same: a loop, not a page.
            raise UpstreamFailed(f"{self.name}: the source made no progress")
        return replace(run, after=after, resume=batch.resume), accepted

    # --- reading ----------------------------------------------------------------------------

    async def _fetch(
        self, ctx: C, account: str, run: _Run, token: str | None, deadline: Deadline
    ) -> Batch:
        if token is not None and (batch := await self._ahead.take((account, token), deadline)):
            return batch
        return await self.source.fetch(
            ctx, run.window, run.after, run.resume, self.page_size, deadline
        )

    def _start_ahead(self, ctx: C, account: str, run: _Run, token: str) -> None:
        deadline = Deadline(self.budget, self._monotonic)
        self._ahead.start(
            (account, token),
            lambda: self.source.fetch(
                ctx, run.window, run.after, run.resume, self.page_size, deadline
            ),
        )
