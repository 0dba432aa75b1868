"""SQL connector through the HTTP service: full contact sync and interaction latency.

Baselines measured in the same run: the same keyset reads done directly with sqlite3 in this
process (no HTTP, no mapping), and /healthz at the same concurrency (the HTTP floor).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from bench._client import RawClient
from bench._common import (
    bridge_sync,
    concurrent_latencies,
    describe,
    free_port,
    peak_rss_mb,
    server,
)
from talkdesk_bridge.connectors.sql.demo import seed_demo

TOKEN = "bench-token"


async def seed(path: Path, contacts: int) -> float:
    start = time.perf_counter()
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    await seed_demo(engine, contacts_count=contacts)
    await engine.dispose()
    return time.perf_counter() - start


def direct_sync(path: Path, page: int) -> tuple[int, float]:
    """The floor: keyset pages plus their emails and phones, straight from sqlite3."""
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    count, ts, cid = 0, "", -1
    while True:
        rows = conn.execute(
            "SELECT id, full_name, updated_at FROM contacts WHERE updated_at > ? OR "
            "(updated_at = ? AND id > ?) ORDER BY updated_at, id LIMIT ?",
            (ts, ts, cid, page),
        ).fetchall()
        if not rows:
            break
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        conn.execute(
            f"SELECT contact_id, email FROM contact_emails WHERE contact_id IN ({marks})", ids
        ).fetchall()
        conn.execute(
            f"SELECT contact_id, number FROM contact_phones WHERE contact_id IN ({marks})", ids
        ).fetchall()
        count += len(rows)
        _, _, ts = rows[-1]
        cid = rows[-1][0]
    elapsed = time.perf_counter() - start
    conn.close()
    return count, elapsed


async def interactions(
    port: int, contacts: int, requests: int, concurrency: int
) -> tuple[list[float], list[float]]:
    """Interaction retrieval latency, and /healthz's as the HTTP floor, `concurrency` at once."""
    rng = random.Random(1)
    clients = [RawClient("127.0.0.1", port) for _ in range(concurrency)]
    for client in clients:
        await client.__aenter__()
    pool: asyncio.Queue[RawClient] = asyncio.Queue()
    for client in clients:
        pool.put_nowait(client)

    async def one(_: int) -> None:
        body = {
            "auth": {"api_token": TOKEN},
            "meta": {"interaction_types": ["ticket", "call"]},
            "data": {"contact_external_id": str(rng.randint(1, contacts))},
        }
        client = await pool.get()
        status, _ = await client.request("POST", "/sql/interaction_update", body)
        pool.put_nowait(client)
        assert status == 200, status

    async def health(_: int) -> None:
        client = await pool.get()
        status, _ = await client.request("GET", "/healthz")
        pool.put_nowait(client)
        assert status == 200

    try:
        await concurrent_latencies(one, 300, concurrency)  # warm-up
        floor, _ = await concurrent_latencies(health, requests, concurrency)
        found, _ = await concurrent_latencies(one, requests, concurrency)
    finally:
        for client in clients:
            await client.__aexit__()
    return found, floor


def measure(
    url: str, contacts: int, requests: int, concurrency: int, **settings: str
) -> dict[str, Any]:
    """`requests=0`: the sync only."""
    port = free_port()
    env = {
        "TALKDESK_BRIDGE_SQL_URL": url,
        "TALKDESK_BRIDGE_SQL_API_TOKENS": TOKEN,
        "TALKDESK_BRIDGE_CONNECTORS": "sql",
        **{f"TALKDESK_BRIDGE_{k.upper()}": v for k, v in settings.items()},
    }
    with server(env, ["serve", "--port", str(port)], port) as proc:
        total, elapsed, pages = asyncio.run(bridge_sync(port, "sql", {"api_token": TOKEN}))
        rss = peak_rss_mb(proc.pid)
        found, floor = (
            asyncio.run(interactions(port, contacts, requests, concurrency))
            if requests
            else ([], [])
        )
        rss_after = peak_rss_mb(proc.pid)
    return {
        "total": total,
        "elapsed": elapsed,
        "pages": pages,
        "rss_sync": rss,
        "rss": rss_after,
        "found": found,
        "floor": floor,
    }


def run(contacts: int = 100_000, requests: int = 3000, concurrency: int = 32) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        seconds = asyncio.run(seed(path, contacts))
        size = path.stat().st_size >> 20
        print(f"seeded {contacts} contacts in {seconds:.1f} s (SQLite, {size} MB)")
        direct_count, direct_s = direct_sync(path, 500)
        ours = measure(f"sqlite:///{path}", contacts, requests, concurrency)
        ahead = measure(f"sqlite:///{path}", contacts, 0, concurrency, sql_read_ahead="true")
        aio = measure(f"sqlite+aiosqlite:///{path}", contacts, requests, concurrency)
    rate = ours["total"] / ours["elapsed"]
    print(
        f"full contact sync through HTTP: {ours['total']} contacts, {ours['pages']} pages, "
        f"{ours['elapsed']:.2f} s = {rate:,.0f} contacts/s; "
        f"server peak RSS {ours['rss_sync']:.0f} MB"
    )
    print(
        f"  baseline, direct sqlite3 keyset reads (no HTTP, no mapping): "
        f"{direct_count / direct_s:,.0f} contacts/s "
        f"(the bridge takes {ours['elapsed'] / direct_s:.1f}x as long)"
    )
    ahead_rate = ahead["total"] / ahead["elapsed"]
    print(
        f"  same sync with the engine's read-ahead on: {ahead_rate:,.0f} contacts/s "
        f"({ahead_rate / rate:.2f}x the default's rate)"
    )
    aio_rate = aio["total"] / aio["elapsed"]
    print(
        f"  same sync on the aiosqlite backend: {aio_rate:,.0f} contacts/s "
        f"(default backend is {rate / aio_rate:.2f}x faster)"
    )
    print(
        f"interaction retrieval, {requests} requests at {concurrency} concurrent: "
        f"{describe(ours['found'])}; server peak RSS {ours['rss']:.0f} MB"
    )
    print(f"  baseline, GET /healthz at the same concurrency: {describe(ours['floor'])}")
    print(f"  same retrieval on the aiosqlite backend: {describe(aio['found'])}")
