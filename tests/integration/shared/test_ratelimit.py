"""The shared sliding-window limiter against a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from community_shared.dependencies import DependencyUnavailable
from community_shared.ratelimit import Limit, RateLimitExceeded, SlidingWindowLimiter


def subject() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def limiter(redis_client: aioredis.Redis, settings_for: Any) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(redis_client, settings_for("posts"))


async def admitted(limiter: SlidingWindowLimiter, limit: Limit, who: str, n: int) -> int:
    async def one() -> bool:
        try:
            await limiter.acquire(limit, who)
        except RateLimitExceeded:
            return False
        return True

    return sum(await asyncio.gather(*(one() for _ in range(n))))


async def test_exact_under_concurrency(limiter: SlidingWindowLimiter) -> None:
    limit = Limit("things", 7, 3600)
    who = subject()
    assert await admitted(limiter, limit, who, 100) == 7
    assert await admitted(limiter, limit, subject(), 3) == 3  # per subject


async def test_keys_carry_the_deployment_prefix(
    limiter: SlidingWindowLimiter, redis_client: aioredis.Redis, settings_for: Any
) -> None:
    who = subject()
    await limiter.acquire(Limit("things", 3, 3600), who)
    key = settings_for("posts").redis_key(f"ratelimit:things:{who}")
    assert await redis_client.zcard(key) == 1
    assert 0 < await redis_client.pttl(key) <= 3600 * 1000


async def test_released_slots_are_free_again(limiter: SlidingWindowLimiter) -> None:
    limit = Limit("things", 2, 3600)
    who = subject()
    first = await limiter.acquire(limit, who)
    await limiter.acquire(limit, who)
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire(limit, who)
    await limiter.release(first)
    await limiter.acquire(limit, who)


async def test_the_window_slides(limiter: SlidingWindowLimiter) -> None:
    limit = Limit("quick", 2, 1)
    who = subject()
    await limiter.acquire(limit, who)
    await limiter.acquire(limit, who)
    with pytest.raises(RateLimitExceeded) as refused:
        await limiter.acquire(limit, who)
    assert refused.value.retry_after == 1
    await asyncio.sleep(1.05)
    await limiter.acquire(limit, who)


async def test_a_failed_reservation_block_gives_its_slot_back(
    limiter: SlidingWindowLimiter,
) -> None:
    limit = Limit("things", 1, 3600)
    who = subject()
    with pytest.raises(ValueError):
        async with limiter.reservations() as slots:
            await slots.take(limit, who)
            raise ValueError("the write failed")
    async with limiter.reservations() as slots:
        await slots.take(limit, who)
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire(limit, who)


async def test_fails_closed_without_redis_and_counts_it(settings_for: Any) -> None:
    """SPEC §3: Redis down is a 503 (`DependencyUnavailable`), never a write
    that skipped its limit."""
    from prometheus_client import REGISTRY

    def failures() -> float:
        value = REGISTRY.get_sample_value(
            "dependency_errors_total", {"dependency": "redis", "operation": "ratelimit"}
        )
        return value or 0.0

    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = SlidingWindowLimiter(dead, settings_for("posts"))
    before = failures()
    limit = Limit("things", 1, 3600)
    for _ in range(5):
        with pytest.raises(DependencyUnavailable) as refused:
            await limiter.acquire(limit, "anyone")
        assert refused.value.dependency == "redis" and refused.value.retry_after >= 1
    assert failures() - before == 5
    await dead.aclose()
