"""The unit of work against real Postgres and Redis: events written at commit, or nothing."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from community_shared.errors import Conflict
from community_shared.events import decode_data, decode_envelope, make_event
from community_shared.ratelimit import Limit, RateLimitExceeded, SlidingWindowLimiter
from community_shared.unit_of_work import Database


async def _outbox(db: asyncpg.Pool, schema: str) -> list[asyncpg.Record]:
    async with db.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            f"SELECT subject, aggregate, payload FROM {schema}.outbox ORDER BY seq"
        )
    return rows


async def test_recorded_events_are_written_at_commit_in_order(
    db: asyncpg.Pool, outbox_schema: str
) -> None:
    database = Database(db, outbox_schema, "posts")
    actor = uuid.uuid4()
    async with database.unit_of_work() as uow:
        first = uow.record("posts.post.created", {"n": 1}, actor_id=actor, aggregate="post:a")
        uow.record("posts.post.liked", {"n": 2}, actor_id=actor, aggregate="post:a")
        # Nothing is in the outbox before the unit of work ends.
        assert await uow.conn.fetchval(f"SELECT count(*) FROM {outbox_schema}.outbox") == 0
    rows = await _outbox(db, outbox_schema)
    assert [(r["subject"], r["aggregate"]) for r in rows] == [
        ("posts.post.created", "post:a"),
        ("posts.post.liked", "post:a"),
    ]
    envelope = decode_envelope(bytes(rows[0]["payload"]))
    assert envelope.id == first.id and envelope.source == "posts" and envelope.actor_id == actor
    assert decode_data(envelope, dict[str, int]) == {"n": 1}


async def test_events_built_elsewhere_join_in_order_however_many(
    db: asyncpg.Pool, outbox_schema: str
) -> None:
    database = Database(db, outbox_schema, "leaderboard")
    built = [
        (
            make_event("leaderboard.rank.changed", {"n": n}, source="leaderboard", actor_id=None),
            f"board:{n % 3}",
        )
        for n in range(500)
    ]
    async with database.unit_of_work() as uow:
        uow.record("leaderboard.stats.updated", {"n": -1}, actor_id=None, aggregate="stats")
        uow.add(built)
    rows = await _outbox(db, outbox_schema)
    assert len(rows) == 501
    assert rows[0]["aggregate"] == "stats"
    ids = [decode_envelope(bytes(r["payload"])).id for r in rows[1:]]
    assert ids == [e.id for e, _ in built]
    assert [r["aggregate"] for r in rows[1:]] == [a for _, a in built]


async def test_a_failed_unit_of_work_writes_neither_change_nor_event(
    db: asyncpg.Pool, outbox_schema: str
) -> None:
    database = Database(db, outbox_schema, "posts")
    with pytest.raises(Conflict):
        async with database.unit_of_work() as uow:
            await uow.conn.execute(f"CREATE TABLE {outbox_schema}.probe (x int)")
            uow.record("posts.post.created", {}, actor_id=None, aggregate="post:b")
            raise Conflict("refused after the write")
    assert await _outbox(db, outbox_schema) == []
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT to_regclass($1)", f"{outbox_schema}.probe") is None


async def test_rate_limit_slots_count_only_what_commits(
    db: asyncpg.Pool, outbox_schema: str, redis_client: Any, settings_for: Any
) -> None:
    limiter = SlidingWindowLimiter(redis_client, settings_for("posts"))
    database = Database(db, outbox_schema, "posts", limiter)
    limit = Limit(f"uow{uuid.uuid4().hex[:8]}", 1, 3600)
    with pytest.raises(Conflict):
        async with database.unit_of_work() as uow:
            await uow.take(limit, "someone")
            raise Conflict("the write did not happen")
    async with database.unit_of_work() as uow:  # the slot was given back
        await uow.take(limit, "someone")
    with pytest.raises(RateLimitExceeded) as refused:
        async with database.unit_of_work() as uow:
            await uow.take(limit, "someone")
    assert refused.value.status_code == 429
    assert refused.value.headers["Retry-After"].isdigit()
