"""Applying consumed events: one transaction per batch.

`apply_events` applies a batch in one transaction: it records the event ids
(idempotency), folds the events into the statistics (`tally.Fold`, pure),
moves the students concerned on the Redis boards and settles badges
(`placement.py`), and writes every resulting event (`rank.changed`,
`badge.*`, `activity.recorded`) to the outbox in the same transaction.

After each commit it notes the boards the batch touched, so the first-page
job (`jobs.py`) does no more for it than a set union here.

This is the hot path of a backlog (docs/benchmarks.md, "Leaderboard"): the
batch costs a constant number of statements however many events it holds,
students are read without locks and written back at the version read
(`store.StaleStudents` makes the consumer apply the batch again), and the
boards move in one Lua script per chunk.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import asyncpg
from community_shared.events import Envelope
from community_shared.unit_of_work import UnitOfWork

from community_leaderboard import store, tally
from community_leaderboard.announcements import Outgoing
from community_leaderboard.context import Context
from community_leaderboard.firstpages import boards_of_tracks
from community_leaderboard.placement import Moves, Placement

log = logging.getLogger(__name__)

ParsedEvents = Mapping[uuid.UUID, tally.Parsed | tally.InvalidEvent | None]


@dataclass(frozen=True)
class IngestResult:
    received: int
    applied: int
    duplicates: int
    invalid: int
    deferred: bool = False
    """Rank moves were kept for later (a backlog is being worked through)."""


class Ingest:
    def __init__(self, ctx: Context, placement: Placement) -> None:
        self.ctx = ctx
        self.placement = placement

    async def apply_events(
        self,
        envelopes: Sequence[Envelope],
        *,
        behind: bool = False,
        parsed: ParsedEvents | None = None,
    ) -> IngestResult:
        """Apply a batch of events exactly once each (by envelope id).

        `behind` says more events are already waiting (a backlog): the rank
        moves of the batch are then kept, and each student's net move on a
        board is announced once the backlog is worked through
        (`jobs.announce_pending_moves`) rather than every step of it.
        `parsed` may carry the events already parsed (by the consumer's router).
        """
        today = self.ctx.today()
        async with self.placement.moving() as (uow, moves):
            await store.lock_ingest_shared(uow.conn)
            result = await self._ingest(
                uow.conn, envelopes, today, live=(uow, moves), behind=behind, parsed=parsed
            )
        if result.applied:
            self.ctx.stats_dirty = True
        return result

    async def ingest_silently(
        self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], today: dt.date
    ) -> IngestResult:
        """Apply events to the statistics only (the rebuild: no boards, no events)."""
        return await self._ingest(conn, envelopes, today, live=None)

    async def _ingest(
        self,
        conn: asyncpg.Connection,
        envelopes: Sequence[Envelope],
        today: dt.date,
        *,
        live: tuple[UnitOfWork, Moves] | None,
        behind: bool = False,
        parsed: ParsedEvents | None = None,
    ) -> IngestResult:
        """Fold the batch into the statistics; then, live (the unit of work and
        its board moves), place the students and announce what changed."""
        fresh_ids = await store.record_applied(conn, [e.id for e in envelopes])
        events: list[tally.Parsed] = []
        seen: set[uuid.UUID] = set()
        invalid = 0
        for envelope in envelopes:
            if envelope.id not in fresh_ids or envelope.id in seen:
                continue
            seen.add(envelope.id)
            try:
                if parsed is not None and envelope.id in parsed:
                    event = parsed[envelope.id]
                    if isinstance(event, tally.InvalidEvent):
                        raise event
                else:
                    event = tally.parse(envelope)
            except tally.InvalidEvent as exc:
                invalid += 1
                log.warning("skipping invalid event %s (%s): %s", envelope.id, envelope.type, exc)
                continue
            if event is not None:
                events.append(event)
        result = IngestResult(
            received=len(envelopes),
            applied=len(seen) - invalid,
            duplicates=len(envelopes) - len(seen),
            invalid=invalid,
        )
        if not events:
            return result

        items = await store.fetch_items(conn, tally.item_keys(events))
        students = await store.read_students(conn, tally.users_of(events, items))
        days = await store.fetch_days(conn, tally.day_keys(events, items))
        fold = tally.Fold(students, days, items)
        for event in events:
            fold.apply(event)

        await store.write_students(
            conn, [fold.students[u] for u in sorted(fold.touched, key=store.uuid_order)]
        )
        await store.write_days(conn, [fold.days[k] for k in fold.dirty_days])
        await store.write_items(conn, fold.items_added, fold.items_removed)
        if fold.streak_recompute:
            runs = await store.latest_runs(conn, sorted(fold.streak_recompute))
            await store.set_streaks(conn, runs)
        await store.delete_post_activity(conn, fold.removed_subjects)
        new_activity = set(await store.insert_activities(conn, fold.activities))
        if live is None:
            return result
        uow, moves = live

        out: Outgoing = []
        deferred = behind or await self.ctx.boards.has_pending()
        await self.placement.place(
            conn,
            fold.ranked,
            today,
            out,
            moves,
            previous_tracks=fold.previous_tracks,
            defer_moves=deferred,
            sort_changes=fold.sort_changes,
        )
        # a name, a goal or an execution rate changes without a board move
        moves.touched.update(
            boards_of_tracks([fold.students[u].track for u in fold.touched if u in fold.students])
        )

        def name_of(user_id: uuid.UUID) -> str | None:
            student = fold.students.get(user_id)
            return student.name if student else None

        await self.placement.announce_activity(
            conn, [a for a in fold.activities if a.id in new_activity], name_of, out
        )
        uow.add(out)
        return replace(result, deferred=deferred)
