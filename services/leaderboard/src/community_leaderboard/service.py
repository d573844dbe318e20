"""The leaderboard's use cases: one Postgres transaction each.

Ingest (`apply_events`) applies a batch of events in one transaction: it
records the event ids (idempotency), folds the events into the statistics,
moves the students concerned on the Redis boards, settles badges, and writes
every resulting event (`rank.changed`, `badge.*`, `activity.recorded`) to the
outbox in the same transaction.

After each commit it notes the boards the batch touched; a chore renders their
first pages at most once per second per board and publishes `top.changed` for
those that differ from the last one published (`publish_first_pages`, rules in
`firstpages.py`), so the ingest itself does no more than a set union for it.

Redis is not transactional with Postgres, so the board moves happen inside the
transaction, just before commit, while the students' rows are locked. If the
transaction then fails, the students' board entries are recomputed from the
committed statistics (`_repair`); if the process dies in between, the boards
are rebuilt from Postgres at the next start. Either way the redelivered events
move the students again and announce the move once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import asyncpg
import msgspec
import redis.asyncio as aioredis
from community_shared.auth import Identity
from community_shared.events import Envelope, make_event
from community_shared.money import format_money
from community_shared.pagination import decode_cursor, encode_cursor
from community_shared.settings import Settings

from community_leaderboard import events as ev
from community_leaderboard import rules, store, tally
from community_leaderboard.boards import ALL_CHANGED, BoardOp, Boards, Move
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.firstpages import (
    PAGE_SIZE,
    FirstPageWatch,
    boards_of_tracks,
    page_changed,
    page_digest,
)
from community_leaderboard.schemas import (
    ActivityItem,
    ActivityPage,
    BoardItem,
    BoardPage,
    CommunityStats,
    Goal,
    MyStanding,
    Neighbors,
    Privacy,
    WindowFigures,
)
from community_leaderboard.standing import (
    board_entries,
    empty_profile,
    personal_badges,
    standing,
)
from community_leaderboard.store import Profile

log = logging.getLogger(__name__)

ROLLED_DAY = "rolled_day"
ROLLOVER_LOCK = "leaderboard:rollover"
UNNAMED = "Student"

Outgoing = list[tuple[Envelope, str]]


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class IngestResult:
    received: int
    applied: int
    duplicates: int
    invalid: int
    deferred: bool = False
    """Rank moves were kept for later (a backlog is being worked through)."""


class LeaderboardService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        settings: Settings,
        config: LeaderboardConfig,
        *,
        today: Callable[[], dt.date] = utc_today,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.settings = settings
        self.config = config
        self.boards = Boards(redis, settings)
        self._today = today
        self._stats_dirty = True
        self._last_stats: bytes | None = None
        self._behind: set[str] = set()
        self.first_pages = FirstPageWatch(config.top_interval_seconds)

    @property
    def weights(self) -> rules.Weights:
        return self.config.weights

    def today(self) -> dt.date:
        return self._today()

    # ------------------------------------------------------------------ ingest

    async def apply_events(
        self,
        envelopes: Sequence[Envelope],
        *,
        behind: bool = False,
        parsed: Mapping[uuid.UUID, tally.Parsed | tally.InvalidEvent | None] | None = None,
    ) -> IngestResult:
        """Apply a batch of events exactly once each (by envelope id).

        `behind` says more events are already waiting (a backlog): the rank
        moves of the batch are then kept, and each student's net move on a
        board is announced once the backlog is worked through
        (`announce_pending_moves`) rather than every step of it.
        """
        today = self.today()
        moved: set[uuid.UUID] = set()
        touched: set[str] = set()
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await store.lock_ingest_shared(conn)
                    result = await self._ingest(
                        conn,
                        envelopes,
                        today,
                        live=True,
                        moved=moved,
                        behind=behind,
                        parsed=parsed,
                        touched=touched,
                    )
            except BaseException:
                if moved:
                    await asyncio.shield(self._repair(moved))
                raise
            finally:
                # after the commit (or the repair): a first page rendered from
                # now on sees what the batch did
                self.first_pages.touch(touched)
        if result.applied:
            self._stats_dirty = True
        return result

    async def ingest_silently(
        self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], today: dt.date
    ) -> IngestResult:
        """Apply events to the statistics only (the rebuild: no boards, no events)."""
        return await self._ingest(conn, envelopes, today, live=False, moved=set())

    async def _ingest(
        self,
        conn: asyncpg.Connection,
        envelopes: Sequence[Envelope],
        today: dt.date,
        *,
        live: bool,
        moved: set[uuid.UUID],
        behind: bool = False,
        parsed: Mapping[uuid.UUID, tally.Parsed | tally.InvalidEvent | None] | None = None,
        touched: set[str] | None = None,
    ) -> IngestResult:
        """`parsed` may carry the events already parsed (by the consumer's router);
        `touched` collects the boards whose first page the batch may have changed."""
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
        if not live:
            return result

        out: Outgoing = []
        deferred = behind or await self.boards.has_pending()
        await self._refresh(
            conn,
            fold.ranked,
            today,
            out,
            moved,
            previous_tracks=fold.previous_tracks,
            defer_moves=deferred,
            sort_changes=fold.sort_changes,
            touched=touched,
        )
        if touched is not None:
            # a name, a goal or an execution rate changes without a board move
            touched.update(
                boards_of_tracks(
                    [fold.students[u].track for u in fold.touched if u in fold.students]
                )
            )
        await self._announce_activity(
            conn, [a for a in fold.activities if a.id in new_activity], fold.students, out
        )
        await store.enqueue_events(conn, out)
        return replace(result, deferred=deferred)

    async def _announce_activity(
        self,
        conn: asyncpg.Connection,
        rows: Sequence[tally.ActivityRow],
        students: dict[uuid.UUID, tally.StudentState],
        out: Outgoing,
    ) -> None:
        if not rows:
            return
        privacy = await store.visibility_of(conn, {a.user_id for a in rows})
        for a in rows:
            choice = privacy[a.user_id]
            if not choice.show_on_leaderboard:
                continue
            student = students.get(a.user_id)
            name = (student.name if student else None) or UNNAMED
            item = ev.ActivityRecorded(
                id=a.id,
                type=a.kind,
                user_id=a.user_id,
                name=name,
                text=rules.activity_text(
                    a.kind,
                    name,
                    detail=a.detail,
                    amount=a.amount,
                    show_earnings=choice.show_earnings,
                ),
                occurred_at=a.occurred_at,
                ref=a.ref,
            )
            out.append(_event(ev.ACTIVITY_RECORDED, item, "activity"))

    async def _refresh(
        self,
        conn: asyncpg.Connection,
        users: Iterable[uuid.UUID],
        today: dt.date,
        out: Outgoing,
        moved: set[uuid.UUID],
        *,
        previous_tracks: dict[uuid.UUID, str | None] | None = None,
        everywhere: bool = False,
        defer_moves: bool = False,
        sort_changes: Callable[[uuid.UUID], int] | None = None,
        touched: set[str] | None = None,
    ) -> None:
        """Put `users` where they now belong on every board, announce each student
        whose rank changed (or keep the moves for later, `defer_moves`), and
        settle badges.

        Only the boards of a student's track (and of the track they just left)
        are touched, unless `everywhere`; `touched` collects them (every board
        when a badge changed hands)."""
        users = sorted(set(users), key=store.uuid_order)
        if not users:
            return
        profiles = await store.load_profiles(conn, users, today)
        ops = self._board_ops(
            users,
            profiles,
            today,
            previous_tracks=previous_tracks,
            everywhere=everywhere,
            sort_changes=sort_changes,
        )
        moved.update(users)
        ranked: Outgoing = []
        badges: Outgoing = []

        async def place() -> None:
            if defer_moves:
                await self.boards.apply_deferred(ops)
                await self.redis.set(
                    self._pending_since_key, dt.datetime.now(dt.UTC).isoformat(), nx=True
                )
            else:
                for move in await self.boards.apply(ops):
                    if move.moved:
                        ranked.append(self._rank_changed(move, profiles.get(move.op.user_id)))

        # Redis and Postgres work side by side: the boards and the badges both
        # follow from the profiles just loaded.
        # While moves are kept (a backlog), the top performers are decided once
        # it is worked through (`announce_pending_moves`), not at every step.
        settle = self._settle_badges(conn, profiles, today, badges, top=not defer_moves)
        results = await asyncio.gather(place(), settle, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        out.extend(ranked)
        out.extend(badges)
        if touched is not None:
            touched.update(op.board for op in ops)
            if badges:
                touched.update(rules.BOARDS)

    def _board_ops(
        self,
        users: Sequence[uuid.UUID],
        profiles: dict[uuid.UUID, Profile],
        today: dt.date,
        *,
        previous_tracks: dict[uuid.UUID, str | None] | None = None,
        everywhere: bool = False,
        sort_changes: Callable[[uuid.UUID], int] | None = None,
    ) -> list[BoardOp]:
        ops: list[BoardOp] = []
        previous_tracks = previous_tracks or {}
        for user_id in users:
            profile = profiles.get(user_id)
            entries = board_entries(profile, today, self.weights) if profile else {}
            changed = sort_changes(user_id) if sort_changes is not None else ALL_CHANGED
            if everywhere or profile is None:
                boards = rules.BOARDS
            else:
                wanted = set(rules.boards_of(profile.track))
                if user_id in previous_tracks:
                    wanted.update(rules.boards_of(previous_tracks[user_id]))
                boards = tuple(b for b in rules.BOARDS if b in wanted)
            for board in boards:
                ops.append(BoardOp(board, user_id, entries.get(board), changed))
        return ops

    def _rank_changed(self, move: Move, profile: Profile | None) -> tuple[Envelope, str]:
        board = move.op.board
        if move.op.entry is not None:
            points = move.op.entry.points
        elif profile is not None:
            points = standing(profile, board.split(":")[0], self.weights).points
        else:
            points = 0
        return _rank_event(board, move.op.user_id, move.old_rank, move.new_rank, points)

    @property
    def _pending_since_key(self) -> str:
        return self.settings.redis_key("lb:pending_moves:since")

    async def announce_pending_moves(self, *, chunk: int = 20_000) -> int:
        """Announce the net move of every student whose rank changes were kept
        while a backlog was worked through: one `rank.changed` per student and
        board, from the rank before the backlog to the rank now (none if they
        ended where they started). Returns how many moves were settled. Then
        the top performers, left alone during the backlog, are decided.

        A kept move is forgotten only after its announcement is committed (a
        crash in between announces it again rather than never)."""
        settled = 0
        while True:
            taken = await self.boards.take_pending(chunk)
            if not taken:
                await self.redis.delete(self._pending_since_key)
                await self.settle_top_performers()
                return settled
            out: Outgoing = []
            for _, board, user_id, old_rank, new_rank, score in taken:
                if new_rank != old_rank:
                    points = rules.decode_board_score(score)[0] if score is not None else 0
                    out.append(_rank_event(board, user_id, old_rank, new_rank, points))
            async with self.pool.acquire() as conn, conn.transaction():
                await store.enqueue_events(conn, out)
            await self.boards.forget_pending([t[0] for t in taken])
            settled += len(taken)

    async def settle_top_performers(self) -> None:
        """Decide the top performers of both tracks now (after a backlog)."""
        today = self.today()
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_ingest_shared(conn)
            out: Outgoing = []
            await self._settle_badges(conn, {}, today, out)
            await store.enqueue_events(conn, out)
        if out:
            self.first_pages.touch(rules.BOARDS)

    async def announce_stale_moves(self) -> int:
        """Announce kept moves older than `catch_up_flush_seconds` (a long backlog
        still shows progress now and then)."""
        since = await self.redis.get(self._pending_since_key)
        if since is None:
            return 0
        started = dt.datetime.fromisoformat(since.decode() if isinstance(since, bytes) else since)
        if (dt.datetime.now(dt.UTC) - started).total_seconds() < self.config.catch_up_flush_seconds:
            return 0
        return await self.announce_pending_moves()

    def note_backlog(self, consumer: str, behind: bool) -> None:
        """Record whether `consumer` is working through a backlog."""
        if behind:
            self._behind.add(consumer)
        else:
            self._behind.discard(consumer)

    @property
    def catching_up(self) -> bool:
        return bool(self._behind)

    async def _repair(self, users: Iterable[uuid.UUID]) -> None:
        """Re-place students on the boards from committed statistics (no events)."""
        try:
            today = self.today()
            ids = sorted(set(users))
            async with self.pool.acquire() as conn:
                profiles = await store.load_profiles(conn, ids, today)
            await self.boards.apply(self._board_ops(ids, profiles, today, everywhere=True))
        except Exception:
            log.exception("could not repair board entries; they are rebuilt at the next start")

    # ------------------------------------------------------------------ badges

    async def _settle_badges(
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
        awards: list[tuple[uuid.UUID, str]] = []
        revokes: list[tuple[uuid.UUID, str]] = []
        for user_id, profile in profiles.items():
            want = personal_badges(profile, today)
            have = set(profile.badges) - {rules.TOP_PERFORMER}
            awards.extend((user_id, b) for b in sorted(want - have))
            revokes.extend((user_id, b) for b in sorted(have - want))
        if top:
            performers = await self._top_performers(conn)
            holders = await store.badge_holders(conn, rules.TOP_PERFORMER)
            awards.extend((u, rules.TOP_PERFORMER) for u in sorted(performers - holders))
            revokes.extend((u, rules.TOP_PERFORMER) for u in sorted(holders - performers))
        if not awards and not revokes:
            return
        now = dt.datetime.now(dt.UTC)
        awards = await store.award_badges(conn, awards, now)
        revokes = await store.revoke_badges(conn, revokes)

        others = {u for u, _ in awards + revokes} - set(profiles)
        everyone = dict(profiles)
        if others:
            everyone.update(await store.load_profiles(conn, others, today))
        activity: list[tally.ActivityRow] = []
        for changes, type_ in ((awards, ev.BADGE_AWARDED), (revokes, ev.BADGE_REVOKED)):
            for user_id, badge in changes:
                holder = everyone.get(user_id)
                if holder is None or not holder.visible:
                    continue  # an opted-out student's badges are not announced
                name = holder.name or UNNAMED
                payload = ev.BadgeChanged(user_id=user_id, name=name, badge=badge)
                out.append(_event(type_, payload, f"student:{user_id}"))
                if type_ == ev.BADGE_AWARDED:
                    activity.append(
                        tally.ActivityRow(
                            id=uuid.uuid4(),
                            kind="badge.awarded",
                            user_id=user_id,
                            occurred_at=now,
                            subject_id=badge,
                            amount=None,
                            detail=badge,
                            ref={"badge": badge},
                        )
                    )
        if activity:
            await store.insert_activities(conn, activity)
            students = {u: tally.StudentState(user_id=u, name=everyone[u].name) for u in everyone}
            await self._announce_activity(conn, activity, students, out)

    async def _top_performers(self, conn: asyncpg.Connection) -> set[uuid.UUID]:
        top: set[uuid.UUID] = set()
        for track in sorted(rules.STUDENT_TRACKS):
            top.update(await store.top_earners(conn, track, rules.TOP_PERFORMER_SIZE))
        return top

    async def settle_all_badges(self, conn: asyncpg.Connection, today: dt.date) -> None:
        """Decide every badge from scratch, silently (the rebuild)."""
        await conn.execute(f"DELETE FROM {store.S}.badges")
        awards: list[tuple[uuid.UUID, str]] = []
        async for chunk in store.iter_rankable_profiles(conn, today):
            for profile in chunk:
                awards.extend((profile.user_id, b) for b in sorted(personal_badges(profile, today)))
        awards.extend((u, rules.TOP_PERFORMER) for u in sorted(await self._top_performers(conn)))
        await store.award_badges(conn, awards, dt.datetime.now(dt.UTC))

    # ------------------------------------------------------------------ windows

    async def roll_windows(self, today: dt.date | None = None) -> int:
        """Move everyone whose window figures changed because a UTC day ended.

        Students with counted days that just left the 30- or 7-day window are
        re-placed (and announced when their rank changed); streaks that broke
        lose `consistent`. Returns how many students were re-placed. Safe to run
        from several instances (one does the work) and to re-run.
        """
        today = today or self.today()
        async with self.pool.acquire() as conn:
            got = await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", ROLLOVER_LOCK
            )
            if not got:
                return 0
            try:
                return await self._roll(conn, today)
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock(hashtextextended($1, 0))", ROLLOVER_LOCK
                )

    async def _roll(self, conn: asyncpg.Connection, today: dt.date) -> int:
        last_text = await store.get_meta(conn, ROLLED_DAY)
        if last_text is None:
            await store.set_meta(conn, ROLLED_DAY, today.isoformat())
            return 0
        last = dt.date.fromisoformat(last_text)
        if last >= today:
            return 0
        left: set[dt.date] = set()
        for window, days in rules.WINDOW_DAYS.items():
            old_start = rules.window_start(window, last)
            new_start = rules.window_start(window, today)
            assert old_start is not None and new_start is not None
            day = max(old_start, new_start - dt.timedelta(days=days))
            while day < new_start:
                left.add(day)
                day += dt.timedelta(days=1)
        users = set(await store.users_with_days(conn, sorted(left)))
        users.update(
            await store.holders_with_broken_streak(
                conn, rules.CONSISTENT, today - dt.timedelta(days=1)
            )
        )
        ordered = sorted(users)
        for start in range(0, len(ordered), 500):
            await self._refresh_students(ordered[start : start + 500], today)
        await store.set_meta(conn, ROLLED_DAY, today.isoformat())
        self._stats_dirty = True
        return len(ordered)

    async def _refresh_students(self, users: Sequence[uuid.UUID], today: dt.date) -> None:
        moved: set[uuid.UUID] = set()
        touched: set[str] = set()
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await store.lock_ingest_shared(conn)
                    await store.lock_students(conn, users)
                    out: Outgoing = []
                    await self._refresh(
                        conn,
                        users,
                        today,
                        out,
                        moved,
                        defer_moves=await self.boards.has_pending(),
                        touched=touched,
                    )
                    await store.enqueue_events(conn, out)
            except BaseException:
                if moved:
                    await asyncio.shield(self._repair(moved))
                raise
            finally:
                self.first_pages.touch(touched)

    # ------------------------------------------------------------------ boards from scratch

    async def resync(self) -> None:
        """Rebuild every Redis board from the statistics (start-up; Redis is a projection)."""
        today = self.today()
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_ingest_exclusive(conn)
            await self.resync_boards(conn, today)
        self.first_pages.touch(rules.BOARDS)

    async def restore_lost_boards(self, on_rebuild: Callable[[], None] | None = None) -> bool:
        """Rebuild the boards from the statistics if Redis no longer holds a
        complete set (it restarted empty); True if it did. Safe from several
        instances at once: whoever gets the ingest lock second finds them back."""
        if await self.boards.generation() is not None:
            return False
        if on_rebuild is not None:
            on_rebuild()
        today = self.today()
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_ingest_exclusive(conn)
            if await self.boards.generation() is not None:
                return False
            students = await self.resync_boards(conn, today)
        log.warning("Redis had lost the boards: rebuilt them from Postgres (%d students)", students)
        return True

    async def resync_boards(self, conn: asyncpg.Connection, today: dt.date) -> int:
        """Replace the boards with what the statistics say (call under the exclusive lock)."""
        staging = self.boards.staging()
        students = 0
        try:
            await staging.begin()
            async for chunk in store.iter_rankable_profiles(conn, today):
                students += len(chunk)
                await staging.add(
                    [
                        (board, profile.user_id, entry)
                        for profile in chunk
                        for board, entry in board_entries(profile, today, self.weights).items()
                    ]
                )
            await staging.commit()
        except BaseException:
            await asyncio.shield(staging.discard())
            raise
        await store.set_meta(conn, ROLLED_DAY, today.isoformat())
        return students

    # ------------------------------------------------------------------ privacy

    async def set_privacy(self, identity: Identity, choice: Privacy) -> Privacy:
        """Store the student's choice and apply it to every board at once."""
        assert identity.user_id is not None
        user_id = identity.user_id
        today = self.today()
        moved: set[uuid.UUID] = set()
        touched: set[str] = set()
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await store.lock_ingest_shared(conn)
                    await store.ensure_student(conn, user_id)
                    token_name = identity.name.strip()[:200] or None
                    await store.put_privacy(
                        conn,
                        user_id,
                        show_on_leaderboard=choice.show_on_leaderboard,
                        show_earnings=choice.show_earnings,
                        token_name=token_name,
                    )
                    if token_name:
                        await store.name_if_unnamed(conn, user_id, token_name)
                    out: Outgoing = []
                    await self._refresh(
                        conn,
                        [user_id],
                        today,
                        out,
                        moved,
                        everywhere=True,
                        defer_moves=await self.boards.has_pending(),
                        touched=touched,
                    )
                    await store.enqueue_events(conn, out)
            except BaseException:
                if moved:
                    await asyncio.shield(self._repair(moved))
                raise
            finally:
                self.first_pages.touch(touched)
        return choice

    # ------------------------------------------------------------------ reads

    def _item(self, profile: Profile, window: str, rank: int | None) -> BoardItem:
        s = standing(profile, window, self.weights)
        return BoardItem(
            rank=rank,
            user_id=profile.user_id,
            name=profile.name or UNNAMED,
            track=profile.track,
            goal=_goal(profile),
            points=s.points,
            earned=format_money(s.earned) if profile.show_earnings else None,
            earnings_range=rules.earnings_range(s.earned),
            actions=s.actions,
            learn_rate=s.learn_rate,
            execution_rate=s.execution_rate,
            days_active=s.days_active,
            completed_goals=s.completed_goals,
            badges=_badges(profile),
        )

    async def board(
        self, *, window: str, track: str, sort: str, limit: int, offset: int
    ) -> BoardPage:
        board = rules.board_name(window, track)
        today = self.today()
        if sort == "name":
            async with self.pool.acquire() as conn:
                members = await store.board_by_name(
                    conn,
                    since=rules.window_start(window, today),
                    track=None if track == "all" else track,
                    limit=limit,
                    offset=offset,
                )
            ranks = await self.boards.ranks(board, members)
            total = await self.boards.total(board)
        elif sort == "rank":
            members, total = await self.boards.page_and_total(board, "rank", offset, limit)
            ranks = [offset + i + 1 for i in range(len(members))]
        else:
            members, total = await self.boards.page_and_total(board, sort, offset, limit)
            ranks = await self.boards.ranks(board, members)
        if not members:
            return BoardPage(items=[], total=total)
        async with self.pool.acquire() as conn:
            profiles = await store.load_profiles(conn, members, today)
        return BoardPage(items=self._items(members, ranks, profiles, window), total=total)

    def _items(
        self,
        members: Sequence[uuid.UUID],
        ranks: Sequence[int | None],
        profiles: Mapping[uuid.UUID, Profile],
        window: str,
    ) -> list[BoardItem]:
        return [
            self._item(profiles[m], window, rank)
            for m, rank in zip(members, ranks, strict=True)
            if m in profiles
        ]

    async def me(self, identity: Identity) -> MyStanding:
        assert identity.user_id is not None
        user_id = identity.user_id
        today = self.today()
        async with self.pool.acquire() as conn:
            profile = (await store.load_profiles(conn, [user_id], today)).get(user_id)
            if profile is None:
                choice = await store.get_privacy(conn, user_id)
                profile = empty_profile(user_id, choice.show_on_leaderboard, choice.show_earnings)
        ranks = await self.boards.ranks_everywhere(user_id)
        rank = ranks[rules.ALL_TIME_BOARD]
        above: list[BoardItem] = []
        below: list[BoardItem] = []
        if rank is not None:
            first = max(rank - 3, 0)  # 0-based index of the highest neighbour above
            above_ids = await self.boards.page(
                rules.ALL_TIME_BOARD, "rank", first, rank - 1 - first
            )
            below_ids = await self.boards.page(rules.ALL_TIME_BOARD, "rank", rank, 2)
            async with self.pool.acquire() as conn:
                near = await store.load_profiles(conn, [*above_ids, *below_ids], today)
            above = [
                self._item(near[u], "all", first + i + 1)
                for i, u in enumerate(above_ids)
                if u in near
            ]
            below = [
                self._item(near[u], "all", rank + i + 1)
                for i, u in enumerate(below_ids)
                if u in near
            ]
        mine = standing(profile, "all", self.weights)
        windows = {}
        for window in ("30d", "7d"):
            s = standing(profile, window, self.weights)
            windows[window] = WindowFigures(
                points=s.points,
                earned=format_money(s.earned) or "0.00",
                earnings_range=rules.earnings_range(s.earned),
                actions=s.actions,
                learn_rate=s.learn_rate,
                execution_rate=s.execution_rate,
                days_active=s.days_active,
                completed_goals=s.completed_goals,
            )
        return MyStanding(
            user_id=user_id,
            name=profile.name or identity.name or UNNAMED,
            track=profile.track,
            goal=_goal(profile),
            rank=rank,
            points=mine.points,
            earned=format_money(mine.earned) or "0.00",
            earnings_range=rules.earnings_range(mine.earned),
            actions=mine.actions,
            learn_rate=mine.learn_rate,
            execution_rate=mine.execution_rate,
            days_active=mine.days_active,
            completed_goals=mine.completed_goals,
            badges=_badges(profile),
            ranks=ranks,
            neighbors=Neighbors(above=above, below=below),
            windows=windows,
            privacy=Privacy(
                show_on_leaderboard=profile.visible, show_earnings=profile.show_earnings
            ),
        )

    async def stats(self) -> CommunityStats:
        today = self.today()
        async with self.pool.acquire() as conn:
            figures = await store.community_figures(conn, today - dt.timedelta(days=6))
        return CommunityStats(
            total_students=figures.total_students,
            active_this_week=figures.active_this_week,
            total_earnings=format_money(figures.total_earnings) or "0.00",
            average_learn_rate=rules.round1(figures.average_learn_rate or 0.0),
            students_by_track={"agency": figures.agency, "saas": figures.saas},
        )

    async def activity(self, *, limit: int, cursor: str | None) -> ActivityPage:
        before = decode_cursor(cursor, tuple[dt.datetime, uuid.UUID])
        if before is not None:
            at = before[0] if before[0].tzinfo else before[0].replace(tzinfo=dt.UTC)
            before = (at, before[1])
        async with self.pool.acquire() as conn:
            rows = await store.recent_activity(conn, limit=limit + 1, before=before)
        page = rows[:limit]
        items = [
            ActivityItem(
                id=r.id,
                type=r.kind,
                user_id=r.user_id,
                name=r.name or UNNAMED,
                text=rules.activity_text(
                    r.kind,
                    r.name or UNNAMED,
                    detail=r.detail,
                    amount=r.amount,
                    show_earnings=r.show_earnings,
                ),
                occurred_at=r.occurred_at,
                ref=r.ref,
            )
            for r in page
        ]
        next_cursor = (
            encode_cursor((page[-1].occurred_at, page[-1].id)) if len(rows) > limit else None
        )
        return ActivityPage(items=items, next_cursor=next_cursor)

    # ------------------------------------------------------------------ community stats

    async def publish_stats_if_due(self) -> bool:
        """Publish `leaderboard.stats.updated` if something changed since the last one,
        at most once per `stats_interval_seconds` across every instance
        (`catch_up_stats_interval_seconds` while a backlog is worked through)."""
        if not self._stats_dirty:
            return False
        gate = self.settings.redis_key("lb:stats:gate")
        interval = (
            self.config.catch_up_stats_interval_seconds
            if self.catching_up
            else self.config.stats_interval_seconds
        )
        interval_ms = max(int(interval * 1000), 1)
        if not await self.redis.set(gate, b"1", nx=True, px=interval_ms):
            return False
        self._stats_dirty = False
        stats = await self.stats()
        payload = ev.StatsUpdated(
            total_students=stats.total_students,
            active_this_week=stats.active_this_week,
            total_earnings=stats.total_earnings,
            average_learn_rate=stats.average_learn_rate,
            students_by_track=stats.students_by_track,
        )
        encoded = msgspec.json.encode(payload)
        last_key = self.settings.redis_key("lb:stats:last")
        if self._last_stats is None:
            stored = await self.redis.get(last_key)
            self._last_stats = stored if isinstance(stored, bytes) else None
        if encoded == self._last_stats:
            return False
        async with self.pool.acquire() as conn, conn.transaction():
            await store.enqueue_events(conn, [_event(ev.STATS_UPDATED, payload, "stats")])
        self._last_stats = encoded
        await self.redis.set(last_key, encoded)
        return True

    # ------------------------------------------------------------------ first pages

    @property
    def _top_digests_key(self) -> str:
        return self.settings.redis_key("lb:top:digests")

    def _top_gate_key(self, board: str) -> str:
        return self.settings.redis_key(f"lb:top:gate:{board}")

    async def first_pages_now(self, boards: Sequence[str]) -> dict[str, list[BoardItem]]:
        """The first page (`sort=rank`, 20 entries) of each board, as `GET /leaderboard`
        renders it, with one Redis round trip and one query for them all."""
        today = self.today()
        members = await self.boards.first_pages(boards, PAGE_SIZE)
        everyone = {m for page in members.values() for m in page}
        profiles: dict[uuid.UUID, Profile] = {}
        if everyone:
            async with self.pool.acquire() as conn:
                profiles = await store.load_profiles(conn, everyone, today)
        return {
            board: self._items(page, range(1, len(page) + 1), profiles, board.split(":", 1)[0])
            for board, page in members.items()
        }

    async def publish_first_pages(self) -> int:
        """Publish `leaderboard.top.changed` for each board touched since it was last
        looked at whose first page differs from the one last published; a board is
        looked at (rendered) at most once per `top_interval_seconds`, and published
        at most that often across every instance. Returns how many went out."""
        now = time.time()  # the clock the events are stamped with
        boards = self.first_pages.due(now)
        if not boards:
            return 0
        try:
            return await self._publish_first_pages(boards, now)
        except BaseException:
            self.first_pages.retry(boards)
            raise

    async def _publish_first_pages(self, boards: list[str], now: float) -> int:
        pages = await self.first_pages_now(boards)
        digests = {board: page_digest(items) for board, items in pages.items()}
        previous = await self.redis.hmget(self._top_digests_key, boards)
        changed = [
            board
            for board, last in zip(boards, previous, strict=True)
            if page_changed(last if isinstance(last, bytes) else None, digests[board])
        ]
        if not changed:
            return 0
        # Another instance (a privacy change served there) may have published
        # the board within the interval: the gate keeps them a second apart.
        interval_ms = max(int(self.config.top_interval_seconds * 1000), 1)
        pipe = self.redis.pipeline(transaction=False)
        for board in changed:
            pipe.set(self._top_gate_key(board), b"1", nx=True, px=interval_ms)
            pipe.pttl(self._top_gate_key(board))
        replies = await pipe.execute()
        gated: list[str] = []
        for index, board in enumerate(changed):
            if replies[2 * index]:
                gated.append(board)
            else:
                wait = max(int(replies[2 * index + 1]), 0) / 1000
                self.first_pages.retry([board], at=now + wait)
        if not gated:
            return 0
        out = [
            _event(ev.TOP_CHANGED, ev.TopChanged(board=board, items=pages[board]), f"top:{board}")
            for board in gated
        ]
        for board, (envelope, _) in zip(gated, out, strict=True):
            self.first_pages.published(board, envelope.occurred_at.timestamp())
        async with self.pool.acquire() as conn, conn.transaction():
            await store.enqueue_events(conn, out)
        await self.redis.hset(
            self._top_digests_key, mapping={board: digests[board] for board in gated}
        )
        return len(gated)

    async def prune_applied(self) -> int:
        async with self.pool.acquire() as conn:
            return await store.prune_applied(conn, self.config.applied_events_retention_days)


def _rank_event(
    board: str, user_id: uuid.UUID, old_rank: int | None, new_rank: int | None, points: int
) -> tuple[Envelope, str]:
    payload = ev.RankChanged(
        board=board, user_id=user_id, old_rank=old_rank, new_rank=new_rank, points=points
    )
    # one aggregate per board keeps a board's moves in the order they happened
    return _event(ev.RANK_CHANGED, payload, f"board:{board}")


def _event(type_: str, payload: msgspec.Struct, aggregate: str) -> tuple[Envelope, str]:
    return make_event(type_, payload, source=ev.SOURCE, actor_id=None), aggregate


def _goal(profile: Profile) -> Goal | None:
    if not profile.goal_slug:
        return None
    return Goal(slug=profile.goal_slug, name=profile.goal_name or profile.goal_slug)


def _badges(profile: Profile) -> list[str]:
    return [b for b in rules.BADGES if b in profile.badges]
