"""The tagline cache, driven with a fake NATS connection and a fake clock (no I/O)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import pytest
from community_posts.taglines import TaglineDirectory
from community_shared.settings import Settings

SETTINGS = Settings(service="posts", nats_subject_prefix="unit.")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeNats:
    """Answers rpc.goals.profile from a dict; counts requests; can fail or stall."""

    is_connected = True

    def __init__(self, goals: dict[uuid.UUID, str | None]) -> None:
        self.goals = goals
        self.asked: list[uuid.UUID] = []
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def request(self, subject: str, payload: bytes, **options: Any) -> Any:
        assert subject == "unit.rpc.goals.profile"
        user_id = uuid.UUID(msgspec.json.decode(payload)["user_id"])
        self.asked.append(user_id)
        self.arrived.set()
        if user_id not in self.goals:  # the answer as of when the request arrived
            body: dict[str, Any] = {"error": "not_found"}
        else:
            body = {"user_id": str(user_id), "goal_name": self.goals[user_id], "track": "saas"}
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail

        class Reply:
            data = msgspec.json.encode(body)

        return Reply()


def make(nc: FakeNats | None, clock: Clock, **options: Any) -> TaglineDirectory:
    return TaglineDirectory(SETTINGS, lambda: nc, clock=clock, **options)  # type: ignore[arg-type,return-value]


async def test_known_answers_live_for_the_ttl() -> None:
    user = uuid.uuid4()
    nc, clock = FakeNats({user: "Agency $1K"}), Clock()
    taglines = make(nc, clock, ttl=60)
    assert await taglines.lookup([(user, "student")]) == {user: "Agency $1K"}
    clock.now += 59
    assert await taglines.lookup([(user, "student")]) == {user: "Agency $1K"}
    assert len(nc.asked) == 1
    nc.goals[user] = "Agency $3K"
    clock.now += 2
    assert await taglines.lookup([(user, "student")]) == {user: "Agency $3K"}
    assert len(nc.asked) == 2


async def test_failures_are_remembered_briefly() -> None:
    user = uuid.uuid4()
    nc, clock = FakeNats({user: "SaaS $1K MRR"}), Clock()
    nc.fail = TimeoutError()
    taglines = make(nc, clock, miss_ttl=10)
    assert await taglines.lookup([(user, "student")]) == {user: None}
    nc.fail = None
    clock.now += 9
    assert await taglines.lookup([(user, "student")]) == {user: None}
    clock.now += 2
    assert await taglines.lookup([(user, "student")]) == {user: "SaaS $1K MRR"}


async def test_not_connected_asks_nothing_and_remembers_nothing() -> None:
    user = uuid.uuid4()
    nc, clock = FakeNats({user: "g"}), Clock()
    nc.is_connected = False
    taglines = make(nc, clock)
    assert await taglines.lookup([(user, "student")]) == {user: None}
    assert nc.asked == []
    nc.is_connected = True
    assert await taglines.lookup([(user, "student")]) == {user: "g"}
    assert await make(None, clock).lookup([(user, "student")]) == {user: None}


async def test_only_students_are_looked_up() -> None:
    nc, clock = FakeNats({}), Clock()
    staff = {uuid.uuid4(): role for role in ("instructor", "admin")}
    found = await make(nc, clock).lookup(list(staff.items()))
    assert found == dict.fromkeys(staff)
    assert nc.asked == []


async def test_the_cache_is_bounded() -> None:
    users = [uuid.uuid4() for _ in range(5)]
    nc, clock = FakeNats(dict.fromkeys(users, "g")), Clock()
    taglines = make(nc, clock, max_entries=3)
    for user in users:
        await taglines.lookup([(user, "student")])
    await taglines.lookup([(users[-1], "student")])  # recent: still cached
    assert len(nc.asked) == 5
    await taglines.lookup([(users[0], "student")])  # oldest: evicted
    assert len(nc.asked) == 6


async def test_an_answer_that_raced_an_eviction_is_not_cached() -> None:
    user = uuid.uuid4()
    nc, clock = FakeNats({user: "old goal"}), Clock()
    nc.gate = asyncio.Event()
    taglines = make(nc, clock)
    lookup = asyncio.create_task(taglines.lookup([(user, "student")]))
    await nc.arrived.wait()
    taglines.forget(user)  # the goal changed while we were asking
    nc.goals[user] = "new goal"
    nc.gate.set()
    assert await lookup == {user: "old goal"}
    assert await taglines.lookup([(user, "student")]) == {user: "new goal"}


async def test_a_cancelled_reader_does_not_cancel_a_shared_lookup() -> None:
    user = uuid.uuid4()
    nc, clock = FakeNats({user: "g"}), Clock()
    nc.gate = asyncio.Event()
    taglines = make(nc, clock)
    first = asyncio.create_task(taglines.lookup([(user, "student")]))
    second = asyncio.create_task(taglines.lookup([(user, "student")]))
    await nc.arrived.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    nc.gate.set()
    assert await second == {user: "g"}
    assert len(nc.asked) == 1
