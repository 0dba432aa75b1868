"""The sync engine against an in-memory source, under random interleavings (hypothesis).

Invariant: after writes stop and one incremental run passes the lag, Talkdesk's view (an upsert
by id of every contact it received) holds every live record in its latest version. The same
scenarios find shrunk counter-examples for the naive designs (no lag window; a checkpoint
taken from the last record seen with no upper bound), so these tests can fail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from talkdesk_bridge._errors import InvalidRequest, UpstreamUnavailable
from talkdesk_bridge._models import Contact, ContactPage, ContactSyncMeta
from talkdesk_bridge._tokens import encode_token
from talkdesk_bridge._upstream import Deadline
from talkdesk_bridge.sync import (
    Batch,
    CursorExpired,
    EpochStamps,
    FeedBatch,
    FeedStart,
    FeedSync,
    Record,
    Window,
    WindowSync,
)

LAG = 10


@dataclass
class Version:
    stamp: int
    visible_at: int
    name: str | None  # None: deleted


@dataclass
class Table:
    """Rows with versions; a write stamped `now` may commit (become visible) later."""

    now: int = 1_000
    rows: dict[int, list[Version]] = field(default_factory=dict)
    writes: int = 0
    failures: int = 0
    watermark_style: str = "max"

    def write(self, row: int, delete: bool, delay: int) -> None:
        self.writes += 1
        versions = self.rows.setdefault(row, [])
        # A row's writers queue on its lock: commits of one row stay in order.
        visible = max([self.now + delay, *(v.visible_at for v in versions)])
        name = None if delete else f"row{row}-w{self.writes}"
        versions.append(Version(self.now, visible, name))

    def visible(self, at: int | None = None) -> dict[int, Version]:
        at = self.now if at is None else at
        state = {}
        for row, versions in self.rows.items():
            seen = [v for v in versions if v.visible_at <= at]
            if seen:
                state[row] = seen[-1]
        return state

    def live(self) -> dict[str, str]:
        final = {row: versions[-1] for row, versions in self.rows.items()}
        return {str(row): v.name for row, v in final.items() if v.name is not None}

    # The WindowSource protocol.
    async def watermark(self, ctx: None, deadline: Deadline) -> Any:
        if self.watermark_style == "now":
            return self.now
        stamps = [v.stamp for v in self.visible().values()]
        return max(stamps) if stamps else None

    async def fetch(
        self,
        ctx: None,
        window: Window,
        after: tuple[Any, ...] | None,
        resume: JsonValue,
        limit: int,
        deadline: Deadline,
    ) -> Batch:
        if self.failures:
            self.failures -= 1
            raise UpstreamUnavailable("the table is busy")
        rows = sorted(
            (v.stamp, row, v)
            for row, v in self.visible().items()
            if v.name is not None and window.holds(v.stamp)
        )
        rows = [r for r in rows if after is None or (r[0], r[1]) > after]
        taken = rows[:limit]
        return Batch(
            [Record((s, r), str(r), Contact(id=str(r), name=str(v.name))) for s, r, v in taken],
            done=len(rows) <= limit,
        )


# --- Talkdesk, as the contract describes it -----------------------------------------------


@dataclass
class Talkdesk:
    engine: Any
    view: dict[str, str] = field(default_factory=dict)
    checkpoint: str | None = None  # from the last response of a run Talkdesk completed
    last_checkpoint: str | None = None  # from the last response received
    run_checkpoint: str | None = None
    offset: str | None = None
    running: bool = False

    async def request(self) -> ContactPage | None:
        meta = ContactSyncMeta(synchronization_checkpoint=self.run_checkpoint, offset=self.offset)
        try:
            page: ContactPage = await self.engine.page(None, meta)
        except UpstreamUnavailable:
            return None  # Talkdesk retries the same request later
        for contact in page.contacts:
            self.view[contact.id] = contact.name
        self.last_checkpoint = page.synchronization_checkpoint
        return page

    async def step(self) -> None:
        if not self.running:
            self.running = True
            self.run_checkpoint, self.offset = self.checkpoint, None
        page = await self.request()
        if page is None:
            return
        if page.next_offset is None:
            self.running = False
            self.checkpoint = page.synchronization_checkpoint
        else:
            self.offset = page.next_offset

    async def retry(self) -> None:
        if self.running:
            await self.request()  # the same offset again; the answer is dropped

    def abandon(self) -> None:
        # A run cut short: the next one starts from the last checkpoint received.
        if self.running:
            self.running = False
            self.checkpoint = self.last_checkpoint

    async def finish(self) -> None:
        for _ in range(10_000):
            await self.step()
            if not self.running:
                return
        raise AssertionError("a run never ended")


Op = tuple[str, int, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 12), st.integers(0, LAG)),
        st.tuples(st.just("delete"), st.integers(0, 12), st.integers(0, LAG)),
        st.tuples(st.just("tick"), st.integers(0, 7), st.just(0)),
        st.tuples(st.just("page"), st.just(0), st.just(0)),
        st.tuples(st.just("retry"), st.just(0), st.just(0)),
        st.tuples(st.just("abandon"), st.just(0), st.just(0)),
        st.tuples(st.just("fail"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


async def play(engine_for: Any, scenario: list[Op], style: str = "max") -> tuple[Table, Talkdesk]:
    table = Table(watermark_style=style)
    for row in range(6):  # some rows exist before the first run
        table.write(row, False, 0)
    table.now += 1
    talkdesk = Talkdesk(engine_for(table))
    for kind, a, b in scenario:
        if kind in ("write", "delete"):
            table.write(a, kind == "delete", b)
        elif kind == "tick":
            table.now += a
        elif kind == "page":
            await talkdesk.step()
        elif kind == "retry":
            await talkdesk.retry()
        elif kind == "abandon":
            talkdesk.abandon()
        elif kind == "fail":
            table.failures += 1
    table.failures = 0
    await talkdesk.finish()  # a run under way ends
    table.now += LAG + 1  # writes have stopped; the lag has passed
    await talkdesk.finish()  # one incremental run
    return table, talkdesk


def loses(table: Table, talkdesk: Talkdesk) -> bool:
    live = table.live()
    return any(talkdesk.view.get(row) != name for row, name in live.items())


def window_engine(lag: int = LAG, page_size: int = 2) -> Any:
    def build(table: Table) -> WindowSync[None]:
        return WindowSync(
            table, name="memory", page_size=page_size, lag_seconds=lag, stamps=EpochStamps()
        )

    return build


class NaiveSync:
    """The design sync tools ship: no upper bound, the checkpoint is the last stamp seen (here
    even with the lag window subtracted on the next run)."""

    def __init__(self, table: Table, page_size: int = 2, lag: int = LAG) -> None:
        self.table = table
        self.page_size = page_size
        self.lag = lag

    async def page(self, ctx: None, meta: ContactSyncMeta) -> ContactPage:
        if meta.offset:
            stamp, row = (int(x) for x in meta.offset.split(":"))
            after: tuple[int, int] | None = (stamp, row)
            since = None
        else:
            after = None
            since = int(meta.synchronization_checkpoint or 0)
            since = since - self.lag if since else since
        window = Window(since, 10**12)
        batch = await self.table.fetch(None, window, after, None, self.page_size, Deadline(5))
        contacts = [r.item for r in batch.records if r.item is not None]
        last = batch.records[-1].key if batch.records else after
        seen = last[0] if last else since or 0
        return ContactPage(
            contacts=contacts,
            synchronization_checkpoint=str(seen)
            if batch.done
            else meta.synchronization_checkpoint or "0",
            next_offset=None if batch.done or last is None else f"{last[0]}:{last[1]}",
        )


_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@_settings
@given(scenario=ops, style=st.sampled_from(["max", "now"]), page_size=st.integers(1, 4))
def test_window_sync_loses_nothing(scenario: list[Op], style: str, page_size: int) -> None:
    table, talkdesk = asyncio.run(play(window_engine(page_size=page_size), scenario, style))
    assert not loses(table, talkdesk), (table.live(), talkdesk.view)
    assert set(talkdesk.view) <= {str(r) for r in table.rows}


def _counter_example(engine_for: Any) -> list[Op]:
    example: list[Op] = find(
        ops,
        lambda scenario: loses(*asyncio.run(play(engine_for, scenario))),
        settings=settings(max_examples=3000, database=None, deadline=None),
    )
    return example


def test_without_the_lag_window_a_late_commit_is_lost() -> None:
    example = _counter_example(window_engine(lag=0))
    # The shrunk scenario needs a write that commits after it is stamped.
    assert any(kind == "write" and delay > 0 for kind, _, delay in example), example


def test_a_checkpoint_from_the_last_record_seen_loses_records() -> None:
    # Hypothesis shrinks a loss for the plain design (no lag window either).
    assert _counter_example(lambda table: NaiveSync(table, lag=0))


# A late commit the walk passes, then a run that goes on past it by more than the lag window.
LONG_RUN: list[Op] = [
    ("write", 6, LAG),  # stamped now, visible only LAG seconds later
    *[("write", row, 0) for row in (7, 8, 9)],
    *[("page", 0, 0)] * 4,  # the walk passes row 6's position while it is invisible
    ("tick", 7, 0),
    ("tick", 7, 0),
    ("write", 10, 0),  # seen by the same run: its stamp becomes the naive checkpoint
    ("page", 0, 0),
]


def test_without_an_upper_bound_the_lag_window_is_not_enough() -> None:
    table, talkdesk = asyncio.run(play(NaiveSync, LONG_RUN))
    assert "6" not in talkdesk.view  # lost, though the next run went back by the lag
    table, talkdesk = asyncio.run(play(window_engine(), LONG_RUN))
    assert not loses(table, talkdesk)


async def test_the_same_offset_gives_the_same_page() -> None:
    table = Table()
    for row in range(10):
        table.write(row, False, 0)
    engine = window_engine(page_size=3)(table)
    first = await engine.page(None, ContactSyncMeta())
    assert first.next_offset
    meta = ContactSyncMeta(offset=first.next_offset)
    again = [await engine.page(None, meta) for _ in range(3)]
    assert all(p == again[0] for p in again)
    assert [c.id for c in again[0].contacts] == ["3", "4", "5"]


async def test_a_page_keeps_its_progress_when_the_source_fails_mid_page() -> None:
    table = Table()
    for row in range(10):
        table.write(row, False, 0)

    engine = WindowSync(table, name="memory", page_size=6, lag_seconds=LAG, stamps=EpochStamps())
    original = table.fetch
    calls = 0

    async def fetch_two_then_fail(*args: Any) -> Batch:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise UpstreamUnavailable("busy")
        batch = await original(*args[:4], 3, args[5])
        return batch

    table.fetch = fetch_two_then_fail  # type: ignore[method-assign]
    page = await engine.page(None, ContactSyncMeta())
    assert [c.id for c in page.contacts] == ["0", "1", "2"]
    assert page.next_offset
    table.fetch = original  # type: ignore[method-assign]
    rest = await engine.page(None, ContactSyncMeta(offset=page.next_offset))
    assert [c.id for c in rest.contacts][:3] == ["3", "4", "5"]


async def test_read_ahead_serves_the_next_page() -> None:
    table = Table()
    for row in range(9):
        table.write(row, False, 0)
    engine = WindowSync(
        table, name="memory", page_size=3, lag_seconds=LAG, stamps=EpochStamps(), read_ahead=True
    )
    ids: list[str] = []
    meta = ContactSyncMeta()
    while True:
        page = await engine.page(None, meta)
        ids += [c.id for c in page.contacts]
        if page.next_offset is None:
            break
        meta = ContactSyncMeta(offset=page.next_offset)
    await engine.close()
    assert ids == [str(i) for i in range(9)]


@pytest.mark.parametrize(
    "meta",
    [
        {
            "offset": encode_token(
                {"e": "other", "c": None, "l": None, "u": 5, "k": None, "r": None}
            )
        },
        {"offset": encode_token({"e": "memory", "c": None, "l": None, "u": "x", "k": None})},
        {"offset": encode_token({"c": None, "l": None, "u": 5, "k": [[1]], "r": None})},
        {"offset": encode_token({"c": None, "l": None, "u": 5, "k": None, "r": "http://evil"})},
        {"synchronization_checkpoint": encode_token({"e": "memory", "w": True})},
        {"synchronization_checkpoint": encode_token({"w": -5})},
        {"synchronization_checkpoint": "%%%"},
    ],
)
async def test_forged_tokens_are_rejected_naming_the_field(meta: dict[str, str]) -> None:
    table = Table()
    table.write(1, False, 0)
    engine = window_engine()(table)
    with pytest.raises(InvalidRequest) as caught:
        await engine.page(None, ContactSyncMeta(**meta))
    assert next(iter(meta)) in caught.value.message


# --- feed sync ----------------------------------------------------------------------------


@dataclass
class Feed:
    """A change log with a cursor (a sequence number) that expires when it falls too far behind,
    and continuation positions that can expire too."""

    now: float = 1_000.0
    log: list[tuple[int, int, float, str | None]] = field(default_factory=list)  # seq, row, ...
    keep: int = 1_000  # entries a cursor may lag behind before it expires
    expire_positions: int = 0

    def write(self, row: int, delete: bool = False) -> None:
        name = None if delete else f"row{row}-s{len(self.log)}"
        self.log.append((len(self.log), row, self.now, name))

    def live(self) -> dict[str, str]:
        state: dict[int, str | None] = {}
        for _, row, _, name in self.log:
            state[row] = name
        return {str(r): n for r, n in state.items() if n is not None}

    async def read(
        self, ctx: None, start: FeedStart, position: JsonValue, limit: int, deadline: Deadline
    ) -> FeedBatch:
        if position is None:
            if start.cursor is not None:
                assert isinstance(start.cursor, int)
                if len(self.log) - start.cursor > self.keep:
                    raise CursorExpired
                position = start.cursor
            elif start.since is not None:
                position = next((s for s, _, t, _ in self.log if t >= start.since), len(self.log))
            else:
                position = 0
        elif self.expire_positions:
            self.expire_positions -= 1
            raise CursorExpired
        assert isinstance(position, int)
        entries = self.log[position : position + limit]
        records = [
            Record((s,), str(r), None if n is None else Contact(id=str(r), name=n))
            for s, r, _, n in entries
        ]
        end = position + len(entries)
        if end >= len(self.log):
            return FeedBatch(records, None, checkpoint=end)
        return FeedBatch(records, end)


async def feed_run(engine: FeedSync[None], view: dict[str, str], checkpoint: str | None) -> str:
    meta = ContactSyncMeta(synchronization_checkpoint=checkpoint)
    while True:
        page = await engine.page(None, meta)
        view.update({c.id: c.name for c in page.contacts})
        if page.next_offset is None:
            return page.synchronization_checkpoint
        meta = ContactSyncMeta(synchronization_checkpoint=checkpoint, offset=page.next_offset)


@pytest.mark.parametrize("rebase", [True, False])
async def test_an_expired_cursor_starts_again_without_loss(rebase: bool) -> None:
    feed = Feed(keep=5)
    clock = [2_000.0]
    engine = FeedSync(
        feed, name="feed", page_size=3, safety_window=60, rebase=rebase, clock=lambda: clock[0]
    )
    for row in range(8):
        feed.write(row)
    view: dict[str, str] = {}
    checkpoint = await feed_run(engine, view, None)
    assert view == feed.live()
    clock[0] += 3600
    feed.now = clock[0]
    for row in range(4, 20):  # far more changes than the cursor may lag behind
        feed.write(row, delete=row == 6)
    view_before = dict(view)
    checkpoint = await feed_run(engine, view, checkpoint)
    assert all(view[row] == name for row, name in feed.live().items())
    changed = {row for row in view if view_before.get(row) != view[row]}
    if rebase:
        # Re-based on the previous run's start: the old rows are not sent again.
        assert changed == set(feed.live()) - {"0", "1", "2", "3"}
    # Positions expiring mid-run: the run goes again from its own start.
    feed.write(99)
    feed.expire_positions = 1
    await feed_run(engine, view, checkpoint)
    assert view["99"] == feed.live()["99"]


async def test_a_feed_never_leaves_a_null_cursor() -> None:
    class NoCursor(Feed):
        async def read(self, *args: Any) -> FeedBatch:
            batch = await super().read(*args)
            return FeedBatch(batch.records, batch.position, None)

    source = NoCursor()
    source.write(1)
    engine = FeedSync(source, name="feed", page_size=10, safety_window=60, clock=lambda: 5_000.0)
    checkpoint = await feed_run(engine, {}, None)
    cursor, fallback = engine._read_checkpoint(checkpoint)
    assert cursor is None and fallback == 4_940.0


@pytest.mark.parametrize(
    "meta",
    [
        {"synchronization_checkpoint": encode_token({"e": "feed", "c": {"url": "x"}, "t": 1})},
        {"synchronization_checkpoint": encode_token({"e": "feed", "c": 1, "t": "soon"})},
        {"synchronization_checkpoint": encode_token({"e": "zendesk", "c": 1, "t": 1})},
        {"offset": encode_token({"e": "feed", "i": None, "f": None, "c": None, "s": None})},
        {"offset": encode_token({"e": "feed", "i": 5, "f": None, "c": None, "s": None, "t": 1})},
    ],
)
async def test_forged_feed_tokens_are_rejected(meta: dict[str, str]) -> None:
    engine = FeedSync(Feed(), name="feed", page_size=3, safety_window=60)
    with pytest.raises(InvalidRequest) as caught:
        await engine.page(None, ContactSyncMeta(**meta))
    assert next(iter(meta)) in caught.value.message


@dataclass
class TimeFeed:
    """A feed in (time, row) order whose cursor is a position in that order, like Zendesk's
    export: a write that surfaces late, under an earlier time, lands behind a cursor."""

    rows: dict[int, tuple[float, str, bool]] = field(default_factory=dict)  # row: t, name, shown

    async def read(
        self, ctx: None, start: FeedStart, position: JsonValue, limit: int, deadline: Deadline
    ) -> FeedBatch:
        after = position if position is not None else start.cursor
        if isinstance(after, str):
            t, row = after.split(":")
            key: tuple[float, int] = (float(t), int(row))
        else:
            key = (-1.0 if start.since is None else start.since - 0.5, -1)
        shown = sorted((t, r, n) for r, (t, n, s) in self.rows.items() if s and (t, r) > key)
        taken = shown[:limit]
        records = [Record((t, r), str(r), Contact(id=str(r), name=n), t) for t, r, n in taken]
        cursor = f"{taken[-1][0]}:{taken[-1][1]}" if taken else after
        cursor = cursor if isinstance(cursor, str) else None
        if len(shown) <= limit:
            return FeedBatch(records, None, checkpoint=cursor)
        return FeedBatch(records, cursor, checkpoint=cursor)


@pytest.mark.parametrize("late_writes", [True, False])
async def test_late_writes_are_delivered_when_checkpoints_trail_the_run(late_writes: bool) -> None:
    feed = TimeFeed({r: (1_000.0 + r, f"row{r}", True) for r in range(10)})
    clock = [2_000.0]
    engine = FeedSync(
        feed,
        name="feed",
        page_size=3,
        safety_window=120,
        late_writes=late_writes,
        clock=lambda: clock[0],
    )
    feed.rows[50] = (1_950.0, "late", False)  # written before the run, not yet in the feed
    feed.rows[51] = (1_960.0, "on time", True)
    view: dict[str, str] = {}
    checkpoint = await feed_run(engine, view, None)
    assert "50" not in view and view["51"] == "on time"
    feed.rows[50] = (1_950.0, "late", True)  # surfaces now, behind the last cursor
    clock[0] += 600
    await feed_run(engine, view, checkpoint)
    # Trailing checkpoints re-read the window; the newest cursor skips the late write.
    assert ("50" in view) is late_writes


async def test_feed_read_ahead_serves_the_next_page_and_stays_lossless() -> None:
    feed = Feed()
    for row in range(10):
        feed.write(row)
    reads = 0
    original = feed.read

    async def counted(*args: Any) -> FeedBatch:
        nonlocal reads
        reads += 1
        return await original(*args)

    feed.read = counted  # type: ignore[method-assign]
    engine = FeedSync(feed, name="feed", page_size=3, safety_window=60, read_ahead=True)
    view: dict[str, str] = {}
    meta = ContactSyncMeta()
    page = await engine.page(None, meta, account="a")
    view.update({c.id: c.name for c in page.contacts})
    assert page.next_offset and reads == 1
    await asyncio.sleep(0)  # the read-ahead runs while "Talkdesk" takes the page
    assert reads == 2
    feed.write(3)  # a change after the read-ahead: the feed has it further on
    while page.next_offset:
        page = await engine.page(None, ContactSyncMeta(offset=page.next_offset), account="a")
        view.update({c.id: c.name for c in page.contacts})
    await engine.close()
    assert view == feed.live()
    assert reads == 4  # 11 entries in pages of 3: each later page came from the read-ahead
