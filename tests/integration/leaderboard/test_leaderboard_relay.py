"""The leaderboard's pipelined outbox relay against real Postgres and NATS:
what it marks when JetStream refuses part of a batch."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from community_leaderboard.relay import PipelinedOutboxRelay
from community_shared.events import decode_envelope, make_event
from community_shared.outbox import enqueue
from community_shared.settings import Settings
from community_shared.streams import ensure_stream
from nats.js.api import StreamConfig


async def _enqueue(db: asyncpg.Pool, schema: str, type_: str) -> uuid.UUID:
    event = make_event(type_, {"n": 1}, source=type_.split(".", 1)[0], actor_id=None)
    async with db.acquire() as conn, conn.transaction():
        await enqueue(conn, schema, event, aggregate=f"a:{event.id}")
    return event.id


async def _rows(db: asyncpg.Pool, schema: str) -> dict[uuid.UUID, tuple[bool, int]]:
    rows = await db.fetch(f"SELECT id, published_at, attempts FROM {schema}.outbox")
    return {r["id"]: (r["published_at"] is not None, r["attempts"]) for r in rows}


async def test_a_batch_partly_refused_marks_what_was_stored_and_retries_the_rest(
    db: asyncpg.Pool,
    outbox_schema: str,
    nats_client: Any,
    settings_for: Callable[..., Settings],
    database_url: str,
) -> None:
    schema = outbox_schema
    prefix = f"plr{uuid.uuid4().hex[:8]}"
    settings = settings_for("leaderboard", nats_subject_prefix=f"{prefix}.")
    js = nats_client.jetstream()
    stream = f"{prefix}_OUTBOX"
    await ensure_stream(js, StreamConfig(name=stream, subjects=[f"{prefix}.leaderboard.>"]))
    relay = PipelinedOutboxRelay(
        db, schema, lambda: js, settings, listen_dsn=database_url, poll_seconds=30
    )
    first = await _enqueue(db, schema, "leaderboard.rank.changed")
    # No stream captures this subject yet: JetStream answers with an error.
    refused = await _enqueue(db, schema, "nowhere.thing.happened")
    last = await _enqueue(db, schema, "leaderboard.rank.changed")

    with pytest.raises(Exception):  # noqa: B017 - whatever nats-py raises for no stream
        await relay.publish_pending()

    assert await _rows(db, schema) == {first: (True, 0), refused: (False, 1), last: (True, 0)}
    stored = [decode_envelope((await js.get_msg(stream, seq)).data).id for seq in (1, 2)]
    assert stored == [first, last]

    # Once the subject has a stream, the refused event goes out, and only it.
    await ensure_stream(js, StreamConfig(name=f"{prefix}_ELSE", subjects=[f"{prefix}.nowhere.>"]))
    assert await relay.publish_pending() == 1
    assert await _rows(db, schema) == {first: (True, 0), refused: (True, 1), last: (True, 0)}
    assert (await js.stream_info(stream)).state.messages == 2
    assert (await js.stream_info(f"{prefix}_ELSE")).state.messages == 1
    for name in (stream, f"{prefix}_ELSE"):
        await js.delete_stream(name)
