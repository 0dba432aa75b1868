"""Contacts for the engine's `WindowSync`, whatever the API's paging style.

Every style becomes the engine's one primitive (records in the window after a key) the same
way: each `fetch` starts a fresh listing filtered from one granule before the first stamp it
needs, sorted by modification time, and delivers only the stamps known to be complete: those
older than the last stamp of the page (the listing is sorted, so nothing older can follow).
Records are keyed (stamp, id); the engine's `after` drops what an earlier read delivered and
`Record.modified` applies the run's exact window. A fresh listing's first page cannot have
shifted, so page numbers and offsets are as safe as cursors there.

Only when one stamp fills a whole page does a fetch walk on in the same listing (the next
page number, offset, cursor or link; for `keyset`, the API's own (stamp, id) continuation).
Page numbers and offsets shift when data changes (an updated record moves to the end, every
later one moves back, and the one at the boundary is never read), and so do many cursors; so
unless the mapping declares the continuation `stable`, each step re-reads the previous page
and starts over when it is no longer what it was.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from pydantic import JsonValue

from ..._errors import UpstreamFailed, UpstreamUnavailable
from ..._models import Contact
from ..._upstream import Clock, Deadline
from ...sync import Batch, Record, Window
from .client import RestClient, Session, next_link
from .extract import compile_expression, read_text, text_of
from .mapping import ContactsMapping
from .times import format_time, parse_time

__all__ = ["ContactSource", "check_key", "record_id"]

log = logging.getLogger("talkdesk_bridge.rest")

_RESTARTS = 3
_MAX_ID = 256
_MAX_STAMP = 10**16

Ref = Any  # a position inside one listing: page number, offset, cursor, URL, (stamp, id)


def check_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """An offset's keyset position: (epoch milliseconds, record id)."""
    if len(key) != 2 or type(key[0]) is not int or not isinstance(key[1], str):
        raise ValueError("not a position of this source")
    if not 0 <= key[0] < _MAX_STAMP or not 0 < len(key[1]) <= _MAX_ID:
        raise ValueError("not a position of this source")
    return key


def record_id(value: Any) -> str | None:
    text = text_of(value)
    return text if text is not None and len(text) <= _MAX_ID else None


class ContactSource:
    def __init__(
        self,
        client: RestClient,
        spec: ContactsMapping,
        *,
        to_contact: Callable[[Any], Contact | None],
        clock: Clock,
    ) -> None:
        self._client = client
        self._spec = spec
        self._to_contact = to_contact
        self._clock = clock
        self._records = compile_expression(spec.records)
        self._id = spec.fields.id.compiled()
        self._modified = compile_expression(spec.modified.path)
        self._cursor = compile_expression(spec.paging.cursor)
        self._granule = max(1, math.ceil(spec.granularity_seconds * 1000))
        self._url = client.url(spec.path)
        paging = spec.paging
        self._verify = paging.style != "keyset" and not paging.stable

    async def watermark(self, ctx: Session, deadline: Deadline) -> int:
        # The API has no "now" to ask; clock skew is inside the lag window by design.
        return int(self._clock() * 1000)

    # --- one page of one listing ------------------------------------------------------------

    def _first(self) -> Ref:
        style = self._spec.paging.style
        return {"page": self._spec.paging.first_page, "offset": 0}.get(style)

    async def read(
        self, session: Session, since: int | None, ref: Ref, deadline: Deadline
    ) -> tuple[list[tuple[str, int, Any]], Ref]:
        """(id, stamp, record) of one page, and the position of the next (None: the end)."""
        spec, paging = self._spec, self._spec.paging
        assert spec.filter is not None
        url = self._url
        params: dict[str, str | int] = {**spec.params, **spec.sort.params}
        if since is not None:
            params[spec.filter.param] = format_time(since, spec.filter)
        if paging.size_param is not None:
            params[paging.size_param] = paging.page_size
        style = paging.style
        if style == "page":
            params[paging.page_param] = ref
        elif style == "offset":
            params[paging.offset_param] = ref
        elif style == "cursor" and ref is not None:
            params[paging.cursor_param] = ref
        elif style == "keyset" and ref is not None:
            params[spec.filter.param] = format_time(ref[0], spec.filter)
            assert paging.after_id_param is not None
            params[paging.after_id_param] = ref[1]
        query: dict[str, str | int] | None = params
        if style == "link" and ref is not None:
            url, query = self._client.follow(ref), None  # the link carries its query
        answer = await self._client.get(session, url, params=query, deadline=deadline)
        found = self._records(answer.body)
        if not isinstance(found, list):
            raise UpstreamFailed(f"the contacts list has no list at {spec.records!r}")
        page: list[tuple[str, int, Any]] = []
        for item in found:
            rid = record_id(read_text(self._id, item))
            stamp = parse_time(self._modified(item), spec.modified)
            if rid is None or stamp is None:
                log.warning("the contacts list held a record without a usable id or time")
                continue
            page.append((rid, stamp, item))
        nxt: Ref = None
        # Page numbers, offsets and the keyset continuation end only at an empty page: an API
        # that caps its pages below page_size would otherwise look finished after page one.
        if not found:
            nxt = None
        elif style == "page":
            nxt = ref + 1
        elif style == "offset":
            nxt = ref + len(found)
        elif style == "cursor":
            nxt = text_of(self._cursor(answer.body))
        elif style == "link":
            nxt = next_link(answer.headers.get("link"))
        elif paging.after_id_param and page:
            nxt = (page[-1][1], page[-1][0])
        elif len(found) >= paging.page_size:
            nxt = ()  # a full page and no way past it within one time
        return page, nxt

    # --- the engine's primitive -------------------------------------------------------------

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
        since = None if start is None else max(0, int(start) - self._granule)
        read: dict[str, tuple[int, Any]] = {}
        ref, previous, restarts = self._first(), None, 0
        while True:
            page, nxt = await self.read(ctx, since, ref, deadline)
            if previous is not None and self._verify:
                again, _ = await self.read(ctx, since, previous[0], deadline)
                if [rid for rid, _, _ in again] != previous[1]:
                    restarts += 1
                    if restarts > _RESTARTS:
                        raise UpstreamUnavailable(
                            "the contacts list kept changing under the sync", retry_after=5.0
                        )
                    ref, previous, read = self._first(), None, {}
                    continue  # the listing shifted between two pages: read it again
            for rid, stamp, item in page:
                read[rid] = (stamp, item)
            if nxt is None:
                return self._batch(read, None, done=True)
            last = page[-1][1] if page else max((s for s, _ in read.values()), default=0)
            if last > window.upper:
                return self._batch(read, last, done=True)
            ready = [(s, rid) for rid, (s, _) in read.items() if s < last]
            if ready and (after is None or max(ready) > tuple(after)):
                return self._batch(read, last, done=False)
            # One stamp fills the page (or all else was delivered): walk on in this listing.
            if nxt == ():
                raise UpstreamFailed(
                    "one modification time fills a whole page of the contacts list: set "
                    "paging.after_id_param or a larger paging.page_size"
                )
            previous, ref = (ref, [rid for rid, _, _ in page]), nxt

    def _batch(self, read: dict[str, tuple[int, Any]], below: int | None, *, done: bool) -> Batch:
        """The records of the complete stamps (all of them when `below` is None)."""
        records = [
            Record((stamp, rid), rid, self._to_contact(item), modified=stamp)
            for rid, (stamp, item) in read.items()
            if below is None or stamp < below
        ]
        records.sort(key=lambda record: record.key)
        return Batch(records, done=done)
