"""The unit of work: one database transaction, and the events it announces.

A use case opens a unit of work, makes its change through the store on
`uow.conn`, and `record`s the events that announce it. When the block ends
normally the recorded events are written to the outbox — in the order they
were recorded, in the same transaction — and the transaction commits; when it
raises, nothing is written, nothing is announced, and the rate-limit slots the
unit took are given back. Events are written in this one place (the relay
publishes them, `outbox`): a change is never published without being
committed, nor committed without being published.

    async with self.db.unit_of_work() as uow:
        await uow.claim(idempotency)               # a retry replays the first answer
        row = await store.insert_post(uow.conn, ...)
        await uow.take(POSTS_PER_HOUR, str(user_id))  # counted only if it commits
        uow.record(ev.POST_CREATED, data, actor_id=user_id, aggregate=f"post:{id}")
        await uow.remember(idempotency, answer)

Reads use `db.connection()` (a pooled connection, no transaction).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from community_shared.events import Envelope, encode_envelope, make_event
from community_shared.idempotency import IdempotencyKey, claim, remember
from community_shared.outbox import notify_channel
from community_shared.ratelimit import Limit, Reservations, SlidingWindowLimiter


@dataclass
class UnitOfWork:
    """The connection of one open transaction, the events recorded so far and the
    rate-limit slots taken."""

    conn: asyncpg.Connection
    schema: str
    source: str
    slots: Reservations | None
    events: list[tuple[Envelope, str]] = field(default_factory=list)

    def record(
        self, type_: str, data: Any, *, actor_id: uuid.UUID | None, aggregate: str
    ) -> Envelope:
        """Announce a change of this unit of work: `data` (a Struct) as event `type_`.

        `aggregate` names the thing whose events must stay in order (e.g.
        `post:<id>`). Written to the outbox at commit, in recording order.
        """
        envelope = make_event(type=type_, data=data, source=self.source, actor_id=actor_id)
        self.events.append((envelope, aggregate))
        return envelope

    def add(self, events: Iterable[tuple[Envelope, str]]) -> None:
        """Announce events already built (envelope, aggregate), e.g. by a pure
        module that decides many at once; written at commit after those recorded
        before, in this order."""
        self.events.extend(events)

    async def take(self, limit: Limit, subject: str) -> None:
        """Count one event against `limit` for `subject` (`RateLimited` when over);
        the slot is given back if the unit of work does not commit."""
        if self.slots is None:
            raise RuntimeError("this service has no rate limiter")
        await self.slots.take(limit, subject)

    async def claim(self, key: IdempotencyKey | None) -> None:
        """Claim an `Idempotency-Key` (a repeat raises `Replay` with the first answer)."""
        await claim(self.conn, self.schema, key)

    async def remember(
        self, key: IdempotencyKey | None, answer: Any, *, status_code: int = 201
    ) -> None:
        """Store the answer a repeat of this request gets (with its key; none without).

        `status_code`: a create that found the thing already there answers 200, and so
        does its replay."""
        await remember(self.conn, self.schema, key, answer, status_code=status_code)

    async def write_events(self) -> None:
        """Write the recorded events to the outbox (the unit's last statement)."""
        if not self.events:
            return
        # one statement however many: a leaderboard batch announces hundreds
        events = self.events
        await self.conn.execute(
            f"INSERT INTO {self.schema}.outbox (id, subject, aggregate, payload)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[])",
            [e.id for e, _ in events],
            [e.type for e, _ in events],
            [aggregate for _, aggregate in events],
            [encode_envelope(e) for e, _ in events],
        )
        await self.conn.execute("SELECT pg_notify($1, '')", notify_channel(self.schema))
        self.events.clear()


@dataclass(frozen=True)
class Database:
    """A service's schema in Postgres: units of work and read connections."""

    pool: asyncpg.Pool
    schema: str
    source: str
    """The `source` of the events this service publishes."""
    limiter: SlidingWindowLimiter | None = None

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One transaction; recorded events written to the outbox at its end."""
        async with contextlib.AsyncExitStack() as stack:
            slots = (
                await stack.enter_async_context(self.limiter.reservations())
                if self.limiter is not None
                else None
            )
            conn = await stack.enter_async_context(self.pool.acquire())
            await stack.enter_async_context(conn.transaction())
            uow = UnitOfWork(conn, self.schema, self.source, slots)
            yield uow
            await uow.write_events()

    def connection(self) -> Any:
        """A pooled connection for reads: `async with db.connection() as conn:`."""
        return self.pool.acquire()
