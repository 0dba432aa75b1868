"""Upstream rate-limit budgets shared by every worker and instance, through Redis.

The same pacing rules as `InProcessRateBudget`, kept in one Redis hash per upstream account and
changed by Lua scripts, so concurrent reservations from many processes are atomic. If Redis
cannot be reached the budget falls back to this process's own view (logged once per outage)
rather than failing Talkdesk's request: pacing is an optimisation, the upstream's 429 is the rule.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from ._settings import Settings
from ._upstream import InProcessRateBudget, RateBudget

__all__ = ["RedisRateBudget", "rate_budget"]

log = logging.getLogger("talkdesk_bridge.ratelimit")

# KEYS[1] window hash; ARGV now, low_water. Returns the seconds to wait (as a string).
_DELAY = """
local reset_at = tonumber(redis.call('HGET', KEYS[1], 'reset_at'))
local now = tonumber(ARGV[1])
if not reset_at or now >= reset_at then return '0' end
local left = reset_at - now
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
if remaining <= 0 then return tostring(left) end
remaining = redis.call('HINCRBY', KEYS[1], 'remaining', -1)
if remaining >= tonumber(ARGV[2]) then return '0' end
return tostring(left / (remaining + 2))
"""

# KEYS[1] window hash; ARGV remaining, reset_at, now.
_OBSERVE = """
local reset_at = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if reset_at <= now then return 0 end
local known = tonumber(redis.call('HGET', KEYS[1], 'reset_at'))
local remaining = tonumber(ARGV[1])
if known == reset_at then
  local current = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
  if current and current < remaining then remaining = current end
end
redis.call('HSET', KEYS[1], 'remaining', remaining, 'reset_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(reset_at - now) + 60)
return 1
"""

_MAX_RESET_WAIT = 3600.0


class RedisRateBudget:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "talkdesk-bridge:ratelimit:",
        low_water: int = 10,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._low_water = low_water
        self._fallback = InProcessRateBudget(low_water=low_water)
        self._delay = client.register_script(_DELAY)
        self._observe = client.register_script(_OBSERVE)
        self._down = False

    def _failed(self, exc: RedisError) -> None:
        if not self._down:
            log.warning(
                "redis unavailable for rate limits (%s); pacing per process", type(exc).__name__
            )
        self._down = True

    async def delay(self, account: str, now: float) -> float:
        try:
            wait = await self._delay(keys=[self._prefix + account], args=[now, self._low_water])
        except RedisError as exc:
            self._failed(exc)
            return await self._fallback.delay(account, now)
        self._down = False
        return float(wait)

    async def observe(
        self, account: str, *, remaining: int | None, reset_at: float | None, now: float
    ) -> None:
        await self._fallback.observe(account, remaining=remaining, reset_at=reset_at, now=now)
        if remaining is None or reset_at is None or reset_at <= now:
            return
        reset_at = min(reset_at, now + _MAX_RESET_WAIT)
        try:
            await self._observe(keys=[self._prefix + account], args=[remaining, reset_at, now])
        except RedisError as exc:
            self._failed(exc)

    async def close(self) -> None:
        await self._client.aclose()


def rate_budget(settings: Settings) -> RateBudget:
    """Shared through Redis when `TALKDESK_BRIDGE_REDIS_URL` is set, else this process's own."""
    if settings.redis_url is None:
        return InProcessRateBudget()
    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=0.5, socket_connect_timeout=0.5
    )
    return RedisRateBudget(client)
