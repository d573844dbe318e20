"""Per-subject rate limits over a rolling window, kept in Redis.

A limit such as "10 posts per user per rolling hour" is a Redis sorted set per
user whose members are the accepted events, scored by the time they were
accepted. One Lua script drops the members older than the window, counts what
is left and, if there is room, adds the new event — atomically, on Redis's
clock, so the count is exact under any concurrency and across any number of
service instances (no read-then-write race, no clock skew between instances).

A write should count only if it happens. `Reservations` ties the slots taken by
one unit of work to its outcome: take a slot after the request has been
validated (a bad request never counts) and just before the write commits; if
the unit of work then fails — the transaction raises, the commit fails — the
slot is given back (`ZREM`), so nothing that was not written is counted.

When Redis is unreachable the limiter fails closed: `acquire` raises
`DependencyUnavailable`, which the web plumbing answers with 503 and
`Retry-After` (SPEC §3); nothing is written, and a limit is never silently
skipped. `dependency_errors_total{dependency="redis", operation="ratelimit"}`
counts each refusal. After a failure the limiter does not try Redis again for
`breaker_seconds`, so a Redis that hangs costs one timeout, not one per
request. Not guaranteed: the count of slots whose release itself failed (they
expire with the window).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis

from community_shared.dependencies import DependencyUnavailable
from community_shared.errors import RateLimited
from community_shared.metrics import DEPENDENCY_ERRORS
from community_shared.settings import Settings

log = logging.getLogger(__name__)

# KEYS[1]: the sorted set of one subject's events under one limit.
# ARGV[1]: window in milliseconds, ARGV[2]: the limit, ARGV[3]: a unique member.
# Returns {1, count} when admitted, {0, count, retry_after_ms} when refused.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local retry = window
  local frees = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  if frees[2] then retry = tonumber(frees[2]) + window - now end
  return {0, count, retry}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, count + 1}
"""


@dataclass(frozen=True)
class Limit:
    """At most `max_events` events named `name` per subject per rolling `window_seconds`."""

    name: str
    max_events: int
    window_seconds: int

    def describe(self) -> str:
        if self.window_seconds == 3600:
            return f"{self.max_events} {self.name} per hour"
        return f"{self.max_events} {self.name} per {self.window_seconds} seconds"


class RateLimitExceeded(RateLimited):
    """429 with `Retry-After` in whole seconds (rounded up, at least 1)."""

    def __init__(self, limit: Limit, retry_after_ms: int) -> None:
        retry_after = retry_after_seconds(retry_after_ms)
        super().__init__(
            f"rate limit exceeded: at most {limit.describe()}; retry in {retry_after} s",
            retry_after=retry_after,
        )


def retry_after_seconds(milliseconds: int) -> int:
    return max(1, -(-int(milliseconds) // 1000))


@dataclass(frozen=True)
class Slot:
    """One counted event; `key`/`member` are None when Redis was not consulted."""

    key: str | None
    member: str | None


@dataclass
class SlidingWindowLimiter:
    """Exact sliding-window limits in Redis; fails closed (503) when Redis is down."""

    redis: aioredis.Redis
    settings: Settings
    breaker_seconds: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _open_until: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(_SLIDING_WINDOW)

    def key(self, limit: Limit, subject: str) -> str:
        return self.settings.redis_key(f"ratelimit:{limit.name}:{subject}")

    async def acquire(self, limit: Limit, subject: str) -> Slot:
        """Count one event for `subject`; raise `RateLimitExceeded` if over the limit.

        Returns the slot to `release` if the event does not happen after all.
        Raises `DependencyUnavailable` when Redis cannot say (the write must not
        happen unchecked).
        """
        if self.clock() < self._open_until:
            raise self._unavailable(limit, None)
        key = self.key(limit, subject)
        member = uuid.uuid4().hex
        try:
            result: Any = await self._script(
                keys=[key], args=[limit.window_seconds * 1000, limit.max_events, member]
            )
        except Exception as exc:  # any Redis or network failure: fail closed
            self._open_until = self.clock() + self.breaker_seconds
            raise self._unavailable(limit, exc) from exc
        if int(result[0]) != 1:
            raise RateLimitExceeded(limit, int(result[2]))
        return Slot(key=key, member=member)

    async def release(self, slot: Slot) -> None:
        """Give a slot back (best effort; on failure it expires with the window)."""
        if slot.key is None or slot.member is None:
            return
        try:
            await self.redis.zrem(slot.key, slot.member)
        except Exception:
            DEPENDENCY_ERRORS.labels(dependency="redis", operation="ratelimit_release").inc()
            log.warning("rate limit: cannot release a slot in %s", slot.key, exc_info=True)

    def reservations(self) -> Reservations:
        return Reservations(self)

    def _unavailable(self, limit: Limit, exc: BaseException | None) -> DependencyUnavailable:
        DEPENDENCY_ERRORS.labels(dependency="redis", operation="ratelimit").inc()
        if exc is not None:
            log.warning(
                "rate limit %s cannot be checked: redis unavailable (%s); refusing",
                limit.name,
                type(exc).__name__,
            )
        return DependencyUnavailable(
            "redis",
            "rate limits cannot be checked right now; retry shortly",
            retry_after=max(1, math.ceil(self.breaker_seconds)),
        )


class Reservations:
    """The slots taken by one unit of work, given back if the unit of work fails.

        async with limiter.reservations() as slots, pool.acquire() as conn:
            async with conn.transaction():
                ...validate...
                await slots.take(POSTS, str(user_id))
                ...write...

    Slots are released when the block exits with an exception (including a
    failed commit), and kept otherwise. A slot can also be given back
    explicitly with `give_back` (an idempotent request that changed nothing).
    """

    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        self._limiter = limiter
        self._slots: list[Slot] = []

    async def take(self, limit: Limit, subject: str) -> None:
        self._slots.append(await self._limiter.acquire(limit, subject))

    async def give_back(self) -> None:
        slots, self._slots = self._slots, []
        for slot in slots:
            await self._limiter.release(slot)

    async def __aenter__(self) -> Reservations:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            await self.give_back()
