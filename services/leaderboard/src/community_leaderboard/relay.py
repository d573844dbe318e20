"""A pipelined outbox relay for the leaderboard's high event volume.

The leaderboard announces a `rank.changed` for every student who moves on every
board, so a busy minute can enqueue tens of thousands of events. The shared
`OutboxRelay` publishes one row, waits for JetStream's ack, then the next
(about 3,500 events/s here). This relay claims rows exactly as the shared one
does (same query, same per-aggregate advisory locks, so the two can run side
by side) but sends a whole batch before waiting for the acks, in `seq` order
on one connection, which JetStream stores in that order (about 4x faster).

Guarantees are the shared relay's: a row is marked published only after its
ack; an unacknowledged row stays pending and is retried, and its republish is
dropped by the stream's duplicate window (`Nats-Msg-Id`). One difference: when
a publish fails mid-batch, later rows of the batch may already be stored, so
after a NATS failure an event can be stored out of order with respect to an
earlier one of its aggregate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
from community_shared.metrics import OUTBOX_PUBLISHED
from community_shared.outbox import OutboxRelay
from community_shared.settings import Settings
from nats.js import JetStreamContext

ACK_TIMEOUT_SECONDS = 5.0


async def _not_used(subject: str, payload: bytes, msg_id: str) -> None:
    raise RuntimeError("the pipelined relay publishes through JetStream directly")


class PipelinedOutboxRelay(OutboxRelay):
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        jetstream: Callable[[], JetStreamContext],
        settings: Settings,
        *,
        listen_dsn: str,
        poll_seconds: float = 1.0,
        batch_size: int = 1000,
    ) -> None:
        super().__init__(
            pool,
            schema,
            _not_used,
            listen_dsn=listen_dsn,
            poll_seconds=poll_seconds,
            batch_size=batch_size,
        )
        self._jetstream = jetstream
        self._settings = settings

    async def publish_pending(self) -> int:
        schema = self._schema
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"""SELECT seq, id, subject, payload FROM {schema}.outbox
                    WHERE published_at IS NULL
                      AND pg_try_advisory_xact_lock(hashtextextended('{schema}:' || aggregate, 0))
                    ORDER BY seq
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED""",
                self._batch_size,
            )
            if not rows:
                return 0
            js = self._jetstream()
            futures: list[asyncio.Future[Any]] = []
            failure: BaseException | None = None
            try:
                for row in rows:
                    futures.append(
                        await js.publish_async(
                            self._settings.subject(row["subject"]),
                            bytes(row["payload"]),
                            headers={"Nats-Msg-Id": str(row["id"])},
                        )
                    )
                await asyncio.wait_for(
                    asyncio.gather(*futures, return_exceptions=True), ACK_TIMEOUT_SECONDS
                )
            except Exception as exc:
                failure = exc
            done: list[int] = []
            for row, future in zip(rows, futures, strict=False):
                if future.done() and not future.cancelled() and future.exception() is None:
                    done.append(row["seq"])
                elif not future.done():
                    future.cancel()
                elif failure is None and not future.cancelled():
                    failure = future.exception()
            if done:
                await conn.execute(
                    f"UPDATE {schema}.outbox SET published_at = now()"
                    " WHERE seq = ANY($1::bigint[])",
                    done,
                )
                OUTBOX_PUBLISHED.labels(schema=schema).inc(len(done))
            if len(done) < len(rows):
                published = set(done)
                await conn.execute(
                    f"UPDATE {schema}.outbox SET attempts = attempts + 1"
                    " WHERE seq = ANY($1::bigint[])",
                    [r["seq"] for r in rows if r["seq"] not in published],
                )
                if failure is None:
                    failure = ConnectionError("JetStream did not acknowledge every event")
        if failure is not None:
            raise failure
        return len(done)
