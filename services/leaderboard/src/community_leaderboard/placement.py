"""Putting students where they now belong: boards, badges, announcements.

The ingest, a privacy change and the day's roll-over end the same way
(`place`): load the profiles of the students concerned, apply the board moves
the planner decides to the Redis boards, settle their badges, and add what to
announce to the unit of work's events. The decisions are `planner.py`'s
and `announcements.py`'s; this module does the I/O around them.

Redis is not transactional with Postgres, so the board moves happen inside the
unit of work's transaction, just before commit, while the students' rows are locked (or
written at the version read). `moving` opens such a unit of work: if it fails,
the students' board entries are recomputed from the committed statistics
(`repair`); if the process dies in between, the boards are rebuilt from
Postgres at the next start. Either way the redelivered events move the
students again and announce the move once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg
from community_shared.unit_of_work import UnitOfWork

from community_leaderboard import announcements, planner, rules, store
from community_leaderboard.announcements import Outgoing
from community_leaderboard.context import Context
from community_leaderboard.rows import ActivityRow, Profile
from community_leaderboard.standing import board_entries

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Moves:
    """What a transaction did to the boards: the students it moved (to repair
    if it fails) and the boards it touched (whose first page to look at after)."""

    moved: set[uuid.UUID] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)


class Placement:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @contextlib.asynccontextmanager
    async def moving(self) -> AsyncIterator[tuple[UnitOfWork, Moves]]:
        """A unit of work that moves students on the boards: repaired from the
        committed statistics if it fails; its boards noted as touched once it
        committed (or was repaired), so a first page rendered from then on sees
        what it did."""
        moves = Moves()
        try:
            async with self.ctx.db.unit_of_work() as uow:
                yield uow, moves
        except BaseException:
            if moves.moved:
                await asyncio.shield(self.repair(moves.moved))
            raise
        finally:
            self.ctx.first_pages.touch(moves.touched)

    async def place(
        self,
        conn: asyncpg.Connection,
        users: Iterable[uuid.UUID],
        today: dt.date,
        out: Outgoing,
        moves: Moves,
        *,
        previous_tracks: Mapping[uuid.UUID, str | None] | None = None,
        everywhere: bool = False,
        defer_moves: bool = False,
        sort_changes: Callable[[uuid.UUID], int] | None = None,
    ) -> None:
        """Put `users` where they now belong on every board, announce each student
        whose rank changed (or keep the moves for later, `defer_moves`), and
        settle badges.

        Only the boards of a student's track (and of the track they just left)
        are touched, unless `everywhere` (`planner.board_ops`); `moves.touched`
        collects them (every board when a badge changed hands)."""
        users = sorted(set(users), key=store.uuid_order)
        if not users:
            return
        ctx = self.ctx
        profiles = await store.load_profiles(conn, users, today)
        ops = planner.board_ops(
            users,
            profiles,
            today,
            ctx.weights,
            previous_tracks=previous_tracks,
            everywhere=everywhere,
            sort_changes=sort_changes,
        )
        moves.moved.update(users)
        ranked: Outgoing = []
        badges: Outgoing = []

        async def place() -> None:
            if defer_moves:
                await ctx.boards.apply_deferred(ops)
                await ctx.redis.set(
                    ctx.pending_since_key, dt.datetime.now(dt.UTC).isoformat(), nx=True
                )
            else:
                for move in await ctx.boards.apply(ops):
                    if move.moved:
                        points = planner.announced_points(
                            move, profiles.get(move.op.user_id), ctx.weights
                        )
                        ranked.append(
                            announcements.rank_changed(
                                move.op.board,
                                move.op.user_id,
                                move.old_rank,
                                move.new_rank,
                                points,
                            )
                        )

        # Redis and Postgres work side by side: the boards and the badges both
        # follow from the profiles just loaded.
        # While moves are kept (a backlog), the top performers are decided once
        # it is worked through (`jobs.announce_pending_moves`), not at every step.
        settle = self.settle_badges(conn, profiles, today, badges, top=not defer_moves)
        results = await asyncio.gather(place(), settle, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        out.extend(ranked)
        out.extend(badges)
        moves.touched.update(op.board for op in ops)
        if badges:
            moves.touched.update(rules.BOARDS)

    async def repair(self, users: Iterable[uuid.UUID]) -> None:
        """Re-place students on the boards from committed statistics (no events)."""
        try:
            today = self.ctx.today()
            ids = sorted(set(users))
            async with self.ctx.db.connection() as conn:
                profiles = await store.load_profiles(conn, ids, today)
            await self.ctx.boards.apply(
                planner.board_ops(ids, profiles, today, self.ctx.weights, everywhere=True)
            )
        except Exception:
            log.exception("could not repair board entries; they are rebuilt at the next start")

    async def announce_activity(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[ActivityRow],
        name_of: Callable[[uuid.UUID], str | None],
        out: Outgoing,
    ) -> None:
        """`activity.recorded` for new activity items, as their students' privacy allows."""
        if not rows:
            return
        privacy = await store.visibility_of(conn, {a.user_id for a in rows})
        out.extend(announcements.activity_recorded(rows, name_of, privacy))

    # ------------------------------------------------------------------ badges

    async def settle_badges(
        self,
        conn: asyncpg.Connection,
        profiles: dict[uuid.UUID, Profile],
        today: dt.date,
        out: Outgoing,
        *,
        top: bool = True,
    ) -> None:
        """Award and revoke badges by rule for `profiles`, and re-decide the top
        performers of both tracks (unless not `top`)."""
        awards, revokes = planner.badge_changes(profiles, today)
        if top:
            performers = await self.top_performers(conn)
            holders = await store.badge_holders(conn, rules.TOP_PERFORMER)
            top_awards, top_revokes = planner.top_performer_changes(performers, holders)
            awards.extend(top_awards)
            revokes.extend(top_revokes)
        if not awards and not revokes:
            return
        now = dt.datetime.now(dt.UTC)
        awards = await store.award_badges(conn, awards, now)
        revokes = await store.revoke_badges(conn, revokes)

        others = {u for u, _ in awards + revokes} - set(profiles)
        everyone = dict(profiles)
        if others:
            everyone.update(await store.load_profiles(conn, others, today))
        events, activity = announcements.badges_changed(awards, revokes, everyone, now)
        out.extend(events)
        if activity:
            await store.insert_activities(conn, activity)
            names = {u: p.name for u, p in everyone.items()}
            await self.announce_activity(conn, activity, names.get, out)

    async def top_performers(self, conn: asyncpg.Connection) -> set[uuid.UUID]:
        top: set[uuid.UUID] = set()
        for track in sorted(rules.STUDENT_TRACKS):
            top.update(await store.top_earners(conn, track, rules.TOP_PERFORMER_SIZE))
        return top

    async def settle_all_badges(self, conn: asyncpg.Connection, today: dt.date) -> None:
        """Decide every badge from scratch, silently (the rebuild)."""
        await store.clear_badges(conn)
        awards: list[planner.BadgeChange] = []
        async for chunk in store.iter_rankable_profiles(conn, today):
            awards.extend(planner.all_badges(chunk, today))
        performers = await self.top_performers(conn)
        awards.extend(planner.top_performer_changes(performers, set())[0])
        await store.award_badges(conn, awards, dt.datetime.now(dt.UTC))

    # ------------------------------------------------------------------ boards from scratch

    async def resync_boards(self, conn: asyncpg.Connection, today: dt.date) -> int:
        """Replace the boards with what the statistics say (call under the exclusive
        lock); returns how many students may be ranked."""
        staging = self.ctx.boards.staging()
        students = 0
        try:
            await staging.begin()
            async for chunk in store.iter_rankable_profiles(conn, today):
                students += len(chunk)
                await staging.add(
                    [
                        (board, profile.user_id, entry)
                        for profile in chunk
                        for board, entry in board_entries(profile, today, self.ctx.weights).items()
                    ]
                )
            await staging.commit()
        except BaseException:
            await asyncio.shield(staging.discard())
            raise
        await store.set_meta(conn, store.ROLLED_DAY, today.isoformat())
        return students
