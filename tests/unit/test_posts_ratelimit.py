"""Rate-limit bookkeeping that needs no Redis: Retry-After and reservations."""

from __future__ import annotations

from typing import Any

import pytest
from community_shared.ratelimit import (
    Limit,
    RateLimitExceeded,
    Reservations,
    Slot,
    retry_after_seconds,
)
from hypothesis import given
from hypothesis import strategies as st

POSTS = Limit("posts", 10, 3600)


@given(st.integers(min_value=-5000, max_value=10_000_000))
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(ms: int) -> None:
    seconds = retry_after_seconds(ms)
    assert seconds >= 1
    assert seconds * 1000 >= ms
    if ms > 1000:
        assert (seconds - 1) * 1000 < ms


def test_exceeded_is_a_429_with_retry_after() -> None:
    exc = RateLimitExceeded(POSTS, 1500)
    assert exc.status_code == 429
    assert exc.headers == {"Retry-After": "2"}
    assert "10 posts per hour" in exc.detail


class FakeLimiter:
    def __init__(self) -> None:
        self.released: list[Slot] = []
        self.taken = 0

    async def acquire(self, limit: Limit, subject: str) -> Slot:
        self.taken += 1
        return Slot(key=f"{limit.name}:{subject}", member=str(self.taken))

    async def release(self, slot: Slot) -> None:
        self.released.append(slot)


async def test_reservations_are_kept_when_the_work_succeeds() -> None:
    limiter = FakeLimiter()
    async with Reservations(limiter) as slots:  # type: ignore[arg-type]
        await slots.take(POSTS, "u")
    assert limiter.released == []


async def test_reservations_are_given_back_when_the_work_fails() -> None:
    limiter = FakeLimiter()
    with pytest.raises(RuntimeError):
        async with Reservations(limiter) as slots:  # type: ignore[arg-type]
            await slots.take(POSTS, "u")
            await slots.take(POSTS, "v")
            raise RuntimeError("commit failed")
    assert [s.member for s in limiter.released] == ["1", "2"]


async def test_give_back_releases_once() -> None:
    limiter: Any = FakeLimiter()
    async with Reservations(limiter) as slots:
        await slots.take(POSTS, "u")
        await slots.give_back()
    assert len(limiter.released) == 1
