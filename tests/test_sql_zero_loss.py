"""Contact sync loses nothing while the table changes under it, on all three databases.

Talkdesk's view is an upsert by id of every contact it receives; after a full run during writes
and one incremental run after them, that view must equal the table.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from talkdesk_bridge._phones import normalize_phone
from talkdesk_bridge.connectors.sql.client import async_url
from talkdesk_bridge.connectors.sql.demo import contact_emails, contact_phones, contacts
from tests._support import auth, seed, serve, sql_settings


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def run_sync(
    client: httpx.AsyncClient,
    view: dict[str, dict[str, Any]],
    checkpoint: str | None = None,
    between_pages: Callable[[], Awaitable[None]] | None = None,
) -> str:
    meta: dict[str, Any] = {}
    if checkpoint:
        meta["synchronization_checkpoint"] = checkpoint
    seen: dict[str, dict[str, Any]] = {}
    while True:
        r = await client.post("/sql/contact_sync", json={"auth": auth(), "meta": meta})
        assert r.status_code == 200, r.text
        body = r.json()
        for contact in body["contacts"]:
            # Twice in one run only as a newer version (a write that committed mid-run).
            assert seen.get(contact["id"]) != contact, "a contact came twice unchanged"
            seen[contact["id"]] = contact
            view[contact["id"]] = contact
        if "next_offset" not in body:
            return str(body["synchronization_checkpoint"])
        meta = {**meta, "offset": body["next_offset"]}
        if between_pages is not None:
            await between_pages()


async def table_state(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(contacts.c.id, contacts.c.full_name))).all()
        emails = (
            await conn.execute(
                sa.select(contact_emails.c.contact_id, contact_emails.c.email).order_by(
                    contact_emails.c.contact_id, contact_emails.c.position
                )
            )
        ).all()
        phones = (
            await conn.execute(
                sa.select(contact_phones.c.contact_id, contact_phones.c.number).order_by(
                    contact_phones.c.contact_id, contact_phones.c.id
                )
            )
        ).all()
    state = {str(i): {"name": n, "emails": [], "phones": []} for i, n in rows}
    for cid, email in emails:
        state[str(cid)]["emails"].append(email)
    for entry in state.values():
        entry["emails"] = sorted(entry["emails"])
    for cid, number in phones:
        phone = normalize_phone(number)
        if phone not in state[str(cid)]["phones"]:
            state[str(cid)]["phones"].append(phone)
    return state


def talkdesk_state(view: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        cid: {
            "name": c["name"],
            "emails": sorted(c.get("emails", [])),
            "phones": c.get("phones", []),
        }
        for cid, c in view.items()
    }


class Progress:
    """Lets the sync wait, between pages, until the writer has written again."""

    def __init__(self) -> None:
        self.writes = 0
        self.changed = asyncio.Condition()

    async def wrote(self) -> None:
        async with self.changed:
            self.writes += 1
            self.changed.notify_all()

    async def at_least(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.writes >= count)


async def writer(
    engine: AsyncEngine, stop: asyncio.Event, rng: random.Random, progress: Progress
) -> int:
    """Inserts, renames and re-phones contacts until told to stop; returns the write count."""
    writes = 0
    next_id = 10_000
    while not stop.is_set():
        async with engine.begin() as conn:
            kind = rng.random()
            if kind < 0.3:
                next_id += 1
                now = _now()
                await conn.execute(
                    contacts.insert().values(
                        id=next_id, full_name=f"New {next_id}", created_at=now, updated_at=now
                    )
                )
                await conn.execute(
                    contact_phones.insert().values(
                        contact_id=next_id,
                        number=f"+1 617 555 {next_id % 10000:04d}",
                        number_e164=None,
                        label="work",
                    )
                )
            else:
                target = rng.randint(1, 280)  # 281-300 are the late writer's
                await conn.execute(
                    contacts.update()
                    .where(contacts.c.id == target)
                    .values(full_name=f"Renamed {target} #{writes}", updated_at=_now())
                )
                if kind > 0.8:
                    await conn.execute(
                        contact_emails.insert().values(
                            contact_id=target, email=f"extra{writes}@example.com", position=9
                        )
                    )
        writes += 1
        await progress.wrote()
        await asyncio.sleep(0.001)
    return writes


async def late_commit(engine: AsyncEngine, started: asyncio.Event, hold: float) -> None:
    """A transaction stamps rows, then commits `hold` seconds later (a slow writer)."""
    async with engine.begin() as conn:
        await conn.execute(
            contacts.update()
            .where(contacts.c.id.in_([285, 290, 295]))
            .values(full_name="Committed late", updated_at=_now() - timedelta(seconds=1))
        )
        started.set()
        await asyncio.sleep(hold)


async def test_concurrent_writes_during_paged_sync_lose_nothing(db_url: str) -> None:
    await seed(db_url, contacts=300)
    engine = create_async_engine(async_url(db_url))
    view: dict[str, dict[str, Any]] = {}
    try:
        async with serve(sql_settings(db_url, sql_page_size=20, sql_lag_seconds=10)) as client:
            stop = asyncio.Event()
            progress = Progress()
            writes = asyncio.create_task(writer(engine, stop, random.Random(3), progress))
            await progress.at_least(5)
            late_started = asyncio.Event()
            late = asyncio.create_task(late_commit(engine, late_started, hold=0.4))
            await late_started.wait()

            async def between_pages() -> None:
                # Every page boundary sees at least two more committed writes.
                await progress.at_least(progress.writes + 2)

            checkpoint = await run_sync(client, view, between_pages=between_pages)
            stop.set()
            assert await writes > 30
            await late
            # The run raced the writes: it cannot have seen them all.
            assert talkdesk_state(view) != await table_state(engine)
            await run_sync(client, view, checkpoint)
        assert talkdesk_state(view) == await table_state(engine)
        assert {view[i]["name"] for i in ("285", "290", "295")} == {"Committed late"}
    finally:
        await engine.dispose()


async def test_the_lag_window_is_what_catches_late_commits(sqlite_url: str) -> None:
    """Without a lag window, a row that commits late with an earlier stamp is lost."""
    await seed(sqlite_url, contacts=50)
    engine = create_async_engine(async_url(sqlite_url))
    try:
        for lag, caught in ((0, False), (30, True)):
            view: dict[str, dict[str, Any]] = {}
            async with engine.begin() as conn:
                await conn.execute(
                    contacts.update().where(contacts.c.id == 1).values(updated_at=_now())
                )
            async with serve(sql_settings(sqlite_url, sql_lag_seconds=lag)) as client:
                pending = asyncio.Event()
                release = asyncio.Event()

                async def slow_writer(
                    pending: asyncio.Event = pending,
                    release: asyncio.Event = release,
                    lag: int = lag,
                ) -> None:
                    async with engine.begin() as conn:
                        await conn.execute(
                            contacts.update()
                            .where(contacts.c.id == 2)
                            .values(
                                full_name=f"Late {lag}", updated_at=_now() - timedelta(seconds=5)
                            )
                        )
                        pending.set()
                        await release.wait()

                task = asyncio.create_task(slow_writer())
                await pending.wait()
                checkpoint = await run_sync(client, view)
                release.set()
                await task
                await run_sync(client, view, checkpoint)
            assert (view["2"]["name"] == f"Late {lag}") is caught
    finally:
        await engine.dispose()
