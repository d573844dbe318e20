"""The leaderboard's background jobs, and the chores that run them.

- A backlog's kept rank moves: announced as each student's net move once the
  backlog is worked through (`announce_pending_moves`), or now and then during
  a long one (`announce_stale_moves`); then the top performers are decided.
- The community totals: `leaderboard.stats.updated` when they changed, at most
  once a second across every instance (`publish_stats_if_due`).
- The boards' first pages: `leaderboard.top.changed` for the boards touched
  whose first page differs from the one last published (`publish_first_pages`,
  rules in `firstpages.py`).
- The day's roll-over: students whose window figures changed because a UTC day
  ended are re-placed (`roll_windows`).
- The boards from scratch: at start-up and when Redis lost them (`resync`,
  `restore_lost_boards`).
- Forgetting applied event ids older than the stream can redeliver.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from community_shared.tasks import stop_tasks

from community_leaderboard import announcements, planner, rules, store
from community_leaderboard import events as ev
from community_leaderboard.announcements import Outgoing
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.context import Context
from community_leaderboard.firstpages import page_changed, page_digest
from community_leaderboard.placement import Placement
from community_leaderboard.views import Views

log = logging.getLogger(__name__)

FIRST_PAGES_TICK_SECONDS = 0.1
"""How often the touched boards are checked for a first page to render (a set
lookup when nothing was touched; renders themselves are spaced per board)."""
ROLL_CHUNK = 500
"""Students re-placed per transaction by the roll-over."""


class Jobs:
    def __init__(self, ctx: Context, placement: Placement, views: Views) -> None:
        self.ctx = ctx
        self.placement = placement
        self.views = views
        self._last_stats: bytes | None = None
        self._behind: set[str] = set()

    # ------------------------------------------------------------------ backlog

    def note_backlog(self, consumer: str, behind: bool) -> None:
        """Record whether `consumer` is working through a backlog."""
        if behind:
            self._behind.add(consumer)
        else:
            self._behind.discard(consumer)

    @property
    def catching_up(self) -> bool:
        return bool(self._behind)

    async def announce_pending_moves(self, *, chunk: int = 20_000) -> int:
        """Announce the net move of every student whose rank changes were kept
        while a backlog was worked through: one `rank.changed` per student and
        board, from the rank before the backlog to the rank now (none if they
        ended where they started). Returns how many moves were settled. Then
        the top performers, left alone during the backlog, are decided.

        A kept move is forgotten only after its announcement is committed (a
        crash in between announces it again rather than never)."""
        ctx = self.ctx
        settled = 0
        while True:
            taken = await ctx.boards.take_pending(chunk)
            if not taken:
                await ctx.redis.delete(ctx.pending_since_key)
                await self.settle_top_performers()
                return settled
            out = [
                announcements.rank_changed(*move)
                for move in planner.net_moves(t[1:] for t in taken)
            ]
            async with ctx.db.unit_of_work() as uow:
                uow.add(out)
            await ctx.boards.forget_pending([t[0] for t in taken])
            settled += len(taken)

    async def settle_top_performers(self) -> None:
        """Decide the top performers of both tracks now (after a backlog)."""
        today = self.ctx.today()
        async with self.ctx.db.unit_of_work() as uow:
            await store.lock_ingest_shared(uow.conn)
            out: Outgoing = []
            await self.placement.settle_badges(uow.conn, {}, today, out)
            uow.add(out)
        if out:
            self.ctx.first_pages.touch(rules.BOARDS)

    async def announce_stale_moves(self) -> int:
        """Announce kept moves older than `catch_up_flush_seconds` (a long backlog
        still shows progress now and then)."""
        since = await self.ctx.redis.get(self.ctx.pending_since_key)
        if since is None:
            return 0
        started = dt.datetime.fromisoformat(since.decode() if isinstance(since, bytes) else since)
        age = (dt.datetime.now(dt.UTC) - started).total_seconds()
        if age < self.ctx.config.catch_up_flush_seconds:
            return 0
        return await self.announce_pending_moves()

    # ------------------------------------------------------------------ community stats

    async def publish_stats_if_due(self) -> bool:
        """Publish `leaderboard.stats.updated` if something changed since the last one,
        at most once per `stats_interval_seconds` across every instance
        (`catch_up_stats_interval_seconds` while a backlog is worked through)."""
        ctx = self.ctx
        if not ctx.stats_dirty:
            return False
        gate = ctx.settings.redis_key("lb:stats:gate")
        interval = (
            ctx.config.catch_up_stats_interval_seconds
            if self.catching_up
            else ctx.config.stats_interval_seconds
        )
        interval_ms = max(int(interval * 1000), 1)
        if not await ctx.redis.set(gate, b"1", nx=True, px=interval_ms):
            return False
        ctx.stats_dirty = False
        payload = announcements.stats_updated(await self.views.stats())
        encoded = msgspec.json.encode(payload)
        last_key = ctx.settings.redis_key("lb:stats:last")
        if self._last_stats is None:
            stored = await ctx.redis.get(last_key)
            self._last_stats = stored if isinstance(stored, bytes) else None
        if encoded == self._last_stats:
            return False
        async with ctx.db.unit_of_work() as uow:
            uow.add([announcements.event(ev.STATS_UPDATED, payload, "stats")])
        self._last_stats = encoded
        await ctx.redis.set(last_key, encoded)
        return True

    # ------------------------------------------------------------------ first pages

    @property
    def _top_digests_key(self) -> str:
        return self.ctx.settings.redis_key("lb:top:digests")

    def _top_gate_key(self, board: str) -> str:
        return self.ctx.settings.redis_key(f"lb:top:gate:{board}")

    async def publish_first_pages(self) -> int:
        """Publish `leaderboard.top.changed` for each board touched since it was last
        looked at whose first page differs from the one last published; a board is
        looked at (rendered) at most once per `top_interval_seconds`, and published
        at most that often across every instance. Returns how many went out."""
        now = time.time()  # the clock the events are stamped with
        boards = self.ctx.first_pages.due(now)
        if not boards:
            return 0
        try:
            return await self._publish_first_pages(boards, now)
        except BaseException:
            self.ctx.first_pages.retry(boards)
            raise

    async def _publish_first_pages(self, boards: list[str], now: float) -> int:
        ctx = self.ctx
        pages = await self.views.first_pages(boards)
        digests = {board: page_digest(items) for board, items in pages.items()}
        previous = await ctx.redis.hmget(self._top_digests_key, boards)
        changed = [
            board
            for board, last in zip(boards, previous, strict=True)
            if page_changed(last if isinstance(last, bytes) else None, digests[board])
        ]
        if not changed:
            return 0
        # Another instance (a privacy change served there) may have published
        # the board within the interval: the gate keeps them a second apart.
        interval_ms = max(int(ctx.config.top_interval_seconds * 1000), 1)
        pipe = ctx.redis.pipeline(transaction=False)
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
                ctx.first_pages.retry([board], at=now + wait)
        if not gated:
            return 0
        out = [announcements.top_changed(board, pages[board]) for board in gated]
        for board, (envelope, _) in zip(gated, out, strict=True):
            ctx.first_pages.published(board, envelope.occurred_at.timestamp())
        async with ctx.db.unit_of_work() as uow:
            uow.add(out)
        await ctx.redis.hset(
            self._top_digests_key, mapping={board: digests[board] for board in gated}
        )
        return len(gated)

    # ------------------------------------------------------------------ windows

    async def roll_windows(self, today: dt.date | None = None) -> int:
        """Move everyone whose window figures changed because a UTC day ended.

        Students with counted days that just left the 30- or 7-day window are
        re-placed (and announced when their rank changed); streaks that broke
        lose `consistent`. Returns how many students were re-placed. Safe to run
        from several instances (one does the work) and to re-run.
        """
        today = today or self.ctx.today()
        async with self.ctx.db.connection() as conn:
            if not await store.try_lock(conn, store.ROLLOVER_LOCK):
                return 0
            try:
                last_text = await store.get_meta(conn, store.ROLLED_DAY)
                if last_text is None:
                    await store.set_meta(conn, store.ROLLED_DAY, today.isoformat())
                    return 0
                last = dt.date.fromisoformat(last_text)
                if last >= today:
                    return 0
                left = planner.days_leaving_windows(last, today)
                users = set(await store.users_with_days(conn, sorted(left)))
                users.update(
                    await store.holders_with_broken_streak(
                        conn, rules.CONSISTENT, today - dt.timedelta(days=1)
                    )
                )
                ordered = sorted(users)
                for start in range(0, len(ordered), ROLL_CHUNK):
                    await self._replace_students(ordered[start : start + ROLL_CHUNK], today)
                await store.set_meta(conn, store.ROLLED_DAY, today.isoformat())
                self.ctx.stats_dirty = True
                return len(ordered)
            finally:
                await store.unlock(conn, store.ROLLOVER_LOCK)

    async def _replace_students(self, users: Sequence[uuid.UUID], today: dt.date) -> None:
        async with self.placement.moving() as (uow, moves):
            await store.lock_ingest_shared(uow.conn)
            await store.lock_students(uow.conn, users)
            out: Outgoing = []
            await self.placement.place(
                uow.conn, users, today, out, moves, defer_moves=await self.ctx.boards.has_pending()
            )
            uow.add(out)

    # ------------------------------------------------------------------ boards from scratch

    async def resync(self) -> None:
        """Rebuild every Redis board from the statistics (start-up; Redis is a projection)."""
        today = self.ctx.today()
        async with self.ctx.db.unit_of_work() as uow:
            await store.lock_ingest_exclusive(uow.conn)
            await self.placement.resync_boards(uow.conn, today)
        self.ctx.first_pages.touch(rules.BOARDS)

    async def restore_lost_boards(self, on_rebuild: Callable[[], None] | None = None) -> bool:
        """Rebuild the boards from the statistics if Redis no longer holds a
        complete set (it restarted empty); True if it did. Safe from several
        instances at once: whoever gets the ingest lock second finds them back."""
        boards = self.ctx.boards
        if await boards.generation() is not None:
            return False
        if on_rebuild is not None:
            on_rebuild()
        today = self.ctx.today()
        async with self.ctx.db.unit_of_work() as uow:
            await store.lock_ingest_exclusive(uow.conn)
            if await boards.generation() is not None:
                return False
            students = await self.placement.resync_boards(uow.conn, today)
        log.warning("Redis had lost the boards: rebuilt them from Postgres (%d students)", students)
        return True

    async def prune_applied(self) -> int:
        async with self.ctx.db.connection() as conn:
            return await store.prune_applied(conn, self.ctx.config.applied_events_retention_days)


class Chores:
    """Runs the periodic jobs: coalesced community stats, the boards' first pages,
    the daily window roll-over, kept moves of a long backlog, and forgetting
    applied event ids older than the stream can redeliver."""

    def __init__(self, jobs: Jobs, config: LeaderboardConfig) -> None:
        self._jobs = jobs
        self._config = config
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        jobs = self._jobs
        self._tasks = [
            asyncio.create_task(self._every(0.2, jobs.publish_stats_if_due), name="stats"),
            asyncio.create_task(
                self._every(FIRST_PAGES_TICK_SECONDS, jobs.publish_first_pages),
                name="first-pages",
            ),
            asyncio.create_task(
                self._every(self._config.rollover_check_seconds, jobs.roll_windows),
                name="rollover",
            ),
            asyncio.create_task(self._every(3600, jobs.prune_applied), name="prune"),
            asyncio.create_task(self._every(15, jobs.announce_stale_moves), name="stale-moves"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await stop_tasks(*tasks)

    @staticmethod
    async def _every(seconds: float, chore: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await chore()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("chore %s failed", getattr(chore, "__name__", chore), exc_info=True)
            await asyncio.sleep(seconds)
