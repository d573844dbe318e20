"""The transactional outbox and its relay against real Postgres and NATS."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import nats
import pytest
from community_shared.events import decode_envelope, make_event
from community_shared.outbox import OutboxRelay, enqueue
from community_shared.streams import ensure_stream
from nats.js.api import StreamConfig

from tests.conftest import eventually
from tests.harness import NatsServer


@pytest.fixture
def schema(outbox_schema: str) -> str:
    return outbox_schema


def _subject_prefix() -> str:
    return f"obx{uuid.uuid4().hex[:8]}"


async def _stream(js: Any, prefix: str) -> str:
    name = f"{prefix}_OUTBOX"
    await ensure_stream(js, StreamConfig(name=name, subjects=[f"{prefix}.>"], duplicate_window=600))
    return name


def _publisher(js: Any, prefix: str) -> Any:
    async def publish(subject: str, payload: bytes, msg_id: str) -> None:
        await js.publish(
            f"{prefix}.{subject}", payload, timeout=1.0, headers={"Nats-Msg-Id": msg_id}
        )

    return publish


async def _write_events(db: asyncpg.Pool, schema: str, aggregate: str, n: int) -> list[uuid.UUID]:
    ids = []
    for i in range(n):
        event = make_event("posts.post.liked", {"n": i}, source="posts", actor_id=None)
        async with db.acquire() as conn, conn.transaction():
            await enqueue(conn, schema, event, aggregate=aggregate)
        ids.append(event.id)
    return ids


async def _stream_messages(js: Any, stream: str) -> list[Any]:
    info = await js.stream_info(stream)
    msgs = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msgs.append(await js.get_msg(stream, seq))
    return msgs


async def test_relay_publishes_on_commit_without_waiting_for_a_poll(
    db: asyncpg.Pool, schema: str, nats_client: Any, database_url: str
) -> None:
    js = nats_client.jetstream()
    prefix = _subject_prefix()
    stream = await _stream(js, prefix)
    relay = OutboxRelay(
        db, schema, _publisher(js, prefix), listen_dsn=database_url, poll_seconds=30
    )
    await relay.start()
    try:
        await asyncio.sleep(0.3)  # the listener is up
        loop = asyncio.get_running_loop()
        started = loop.time()
        [event_id] = await _write_events(db, schema, "post:1", 1)
        while (await js.stream_info(stream)).state.messages < 1:
            assert loop.time() - started < 2, "not woken by NOTIFY"
            await asyncio.sleep(0.01)
        [msg] = await _stream_messages(js, stream)
        assert msg.headers["Nats-Msg-Id"] == str(event_id)
        assert decode_envelope(msg.data).id == event_id

        async def marked() -> bool:
            async with db.acquire() as conn:
                return bool(
                    await conn.fetchval(
                        f"SELECT published_at IS NOT NULL FROM {schema}.outbox WHERE id = $1",
                        event_id,
                    )
                )

        await eventually(marked, timeout=2)
    finally:
        await relay.stop()
        await js.delete_stream(stream)


async def test_a_write_while_nats_is_down_is_published_once_when_it_returns(
    db: asyncpg.Pool, schema: str, database_url: str, nats_server: NatsServer
) -> None:
    """NATS is unreachable when the write commits; the event goes out exactly once later."""
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    prefix = _subject_prefix()
    stream = await _stream(js, prefix)
    relay = OutboxRelay(
        db,
        schema,
        _publisher(js, prefix),
        listen_dsn=database_url,
        poll_seconds=0.2,
        max_backoff=0.5,
    )
    await relay.start()
    try:
        await nats_server.stop()
        ids = await _write_events(db, schema, "post:2", 3)  # commits fine without NATS
        await asyncio.sleep(1.0)
        async with db.acquire() as conn:
            pending = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
            )
        assert pending == 3
        await nats_server.start()
        for _ in range(200):
            async with db.acquire() as conn:
                left = await conn.fetchval(
                    f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
                )
            if left == 0:
                break
            await asyncio.sleep(0.05)
        assert left == 0
        # Republishing the same rows (a relay that died before marking them) is dropped.
        async with db.acquire() as conn:
            await conn.execute(f"UPDATE {schema}.outbox SET published_at = NULL")
        relay.wake()
        await asyncio.sleep(0.5)
        msgs = await _stream_messages(js, stream)
        assert [decode_envelope(m.data).id for m in msgs] == ids
    finally:
        await relay.stop()
        await nc.close()


async def test_several_relays_keep_per_aggregate_order_and_publish_each_once(
    db: asyncpg.Pool, schema: str, nats_client: Any, database_url: str
) -> None:
    js = nats_client.jetstream()
    prefix = _subject_prefix()
    stream = await _stream(js, prefix)
    # Write first, then let three relays race over the backlog.
    written: dict[str, list[uuid.UUID]] = {}
    for aggregate in ("post:a", "post:b", "post:c", "post:d"):
        written[aggregate] = await _write_events(db, schema, aggregate, 25)
    aggregate_of = {eid: agg for agg, ids in written.items() for eid in ids}
    relays = [
        OutboxRelay(
            db,
            schema,
            _publisher(js, prefix),
            listen_dsn=database_url,
            poll_seconds=0.1,
            batch_size=7,
        )
        for _ in range(3)
    ]
    for relay in relays:
        await relay.start()
    try:
        for _ in range(200):
            if (await js.stream_info(stream)).state.messages >= 100:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        msgs = await _stream_messages(js, stream)
        seen: dict[str, list[uuid.UUID]] = defaultdict(list)
        for m in msgs:
            event_id = decode_envelope(m.data).id
            seen[aggregate_of[event_id]].append(event_id)
        assert len(msgs) == 100
        assert dict(seen) == written
    finally:
        for relay in relays:
            await relay.stop()
        await js.delete_stream(stream)


async def _abandon(relay: OutboxRelay) -> None:
    """Best-effort clean-up of a relay a failing test may have left running."""
    task = relay._task
    for _ in range(20):
        if task is None or task.done():
            break
        task.cancel()
        await asyncio.sleep(0.05)


async def test_a_cancelled_stop_propagates_its_cancellation_and_the_relay_ends(
    db: asyncpg.Pool, schema: str, database_url: str
) -> None:
    """A shutdown that gives up on `stop()` (its task is cancelled) must not have
    that cancellation swallowed, and the relay must end anyway."""
    in_flight = asyncio.Event()

    async def blocking_publish(subject: str, payload: bytes, msg_id: str) -> None:
        in_flight.set()
        await asyncio.Event().wait()  # NATS that never answers

    relay = OutboxRelay(db, schema, blocking_publish, listen_dsn=database_url, poll_seconds=0.1)
    await _write_events(db, schema, "post:stop", 1)
    await relay.start()
    try:
        async with asyncio.timeout(10):
            await in_flight.wait()
        stopper = asyncio.create_task(relay.stop())
        await asyncio.sleep(0)  # stop() has cancelled the relay and awaits it
        stopper.cancel()
        async with asyncio.timeout(10):
            await asyncio.wait({stopper})
        assert stopper.cancelled(), "stop() swallowed the cancellation of its caller"
        task = relay._task

        async def relay_ended() -> bool:
            return task is None or task.done()

        await eventually(relay_ended, timeout=10, interval=0.01)
    finally:
        await _abandon(relay)


async def test_stop_ends_the_relay_even_when_a_wake_up_races_the_cancellation(
    db: asyncpg.Pool, schema: str, database_url: str
) -> None:
    """A wake-up arriving in the same loop turn as the cancellation (a NOTIFY,
    NATS coming back) must not let the relay carry on and `stop()` hang."""

    async def publish(subject: str, payload: bytes, msg_id: str) -> None:
        return None

    relay = OutboxRelay(db, schema, publish, listen_dsn=database_url, poll_seconds=30)
    await relay.start()
    try:

        async def idle() -> bool:  # waiting for a wake-up or the next poll
            return bool(relay._wake._waiters)  # type: ignore[attr-defined]

        await eventually(idle, timeout=10, interval=0.01)
        task = relay._task
        assert task is not None
        relay.wake()
        stopper = asyncio.create_task(relay.stop())
        # asyncio.wait does not cancel `stopper` when it gives up.
        await asyncio.wait({stopper}, timeout=5)
        assert stopper.done(), "stop() hung: the relay went on after its cancellation"
        assert task.done()
    finally:
        await _abandon(relay)
