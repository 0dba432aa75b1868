"""Rate-limit budgets shared across workers through the local Redis server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from pydantic import SecretStr

from talkdesk_bridge import Settings
from talkdesk_bridge._redis import RedisRateBudget, rate_budget
from talkdesk_bridge._upstream import InProcessRateBudget

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"test-tdb-{uuid.uuid4().hex[:8]}:"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=name + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def budget(prefix: str, low_water: int = 3) -> RedisRateBudget:
    return RedisRateBudget(redis.Redis.from_url(REDIS_URL), prefix=prefix, low_water=low_water)


async def test_two_workers_share_one_window(prefix: str) -> None:
    a, b = budget(prefix), budget(prefix)
    try:
        now = 1_000.0
        # Worker A hears the upstream: 20 calls left in a window ending in 10 s.
        await a.observe("acct", remaining=20, reset_at=now + 10, now=now)
        # Both workers reserve concurrently: exactly 20 go through without delay or pacing...
        waits = await asyncio.gather(*(w.delay("acct", now) for w in [a, b] * 15))
        free = sum(1 for w in waits if w == 0)
        assert free == 17  # 20 left, paced below low_water=3
        # ...and once the window is spent, every worker waits for the reset.
        assert await b.delay("acct", now) == pytest.approx(10)
        assert await a.delay("acct", now + 10.5) == 0  # the next window
        # Another account is untouched.
        assert await b.delay("other", now) == 0
    finally:
        await a.close()
        await b.close()


async def test_out_of_order_answers_keep_the_lowest_count(prefix: str) -> None:
    a = budget(prefix, low_water=0)
    try:
        await a.observe("acct", remaining=5, reset_at=2_000.0, now=1_990.0)
        await a.observe("acct", remaining=9, reset_at=2_000.0, now=1_991.0)  # older news
        waits = [await a.delay("acct", 1_992.0) for _ in range(6)]
        assert waits[:5] == [0, 0, 0, 0, 0] and waits[5] == pytest.approx(8.0)
    finally:
        await a.close()


async def test_redis_down_falls_back_to_this_process() -> None:
    down = RedisRateBudget(
        redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2),
        low_water=0,
    )
    try:
        await down.observe("acct", remaining=0, reset_at=105.0, now=100.0)
        assert await down.delay("acct", 100.0) == pytest.approx(5.0)
    finally:
        await down.close()


def test_rate_budget_from_settings() -> None:
    assert isinstance(rate_budget(Settings()), InProcessRateBudget)
    shared = rate_budget(Settings(redis_url=SecretStr(REDIS_URL)))
    assert isinstance(shared, RedisRateBudget)
    asyncio.run(shared.close())
