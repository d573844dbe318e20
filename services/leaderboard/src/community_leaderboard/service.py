"""The leaderboard's use cases, and the parts they are made of.

What a user can do is a method here: read a board, one's own standing, the
community totals or the activity ticker (`views.py`), and choose whether to
show oneself and one's earnings (`set_privacy`). The rest is the service's own
work, each in a module of its own:

- `ingest.py`: consumed events applied in batches, one transaction each;
- `placement.py`: putting the students concerned where they now belong on the
  boards, settling badges, announcing the moves, with the decisions in
  `planner.py` (pure) and the events built by `announcements.py` (pure);
- `jobs.py`: the background jobs (a backlog's kept moves, the community
  totals, the boards' first pages, the day's roll-over, rebuilding the
  boards);
- `store.py` and `rowsql.py`: every SQL statement; `boards.py`: the Redis
  boards.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence

import asyncpg
import redis.asyncio as aioredis
from community_shared.access import require_student
from community_shared.auth import Identity
from community_shared.errors import InvalidInput
from community_shared.events import Envelope
from community_shared.pagination import PageRequest, parse_limit
from community_shared.settings import Settings

from community_leaderboard import rules, store, tally
from community_leaderboard.announcements import Outgoing
from community_leaderboard.boards import Boards
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.context import Context, utc_today
from community_leaderboard.firstpages import FirstPageWatch
from community_leaderboard.ingest import Ingest, IngestResult
from community_leaderboard.jobs import Jobs
from community_leaderboard.placement import Placement
from community_leaderboard.schemas import (
    ActivityPage,
    BoardPage,
    CommunityStats,
    MyStanding,
    Privacy,
)
from community_leaderboard.views import Views

MAX_OFFSET = 1_000_000
"""The deepest a board may be paged into (`offset`)."""


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of: {', '.join(allowed)}")
    return value


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
        self.ctx = Context(pool, redis, settings, config, today)
        self.placement = Placement(self.ctx)
        self.ingest = Ingest(self.ctx, self.placement)
        self.views = Views(self.ctx)
        self.jobs = Jobs(self.ctx, self.placement, self.views)

    @property
    def pool(self) -> asyncpg.Pool:
        return self.ctx.pool

    @property
    def boards(self) -> Boards:
        return self.ctx.boards

    @property
    def first_pages(self) -> FirstPageWatch:
        return self.ctx.first_pages

    def today(self) -> dt.date:
        return self.ctx.today()

    # ------------------------------------------------------------------ reads

    async def board(
        self, *, window: str, track: str, sort: str, limit: int | None, offset: int
    ) -> BoardPage:
        """A page of a board (`window:track`), by rank or sorted by another metric."""
        _one_of("window", window, rules.WINDOWS)
        _one_of("track", track, rules.TRACKS)
        _one_of("sort", sort, rules.SORTS)
        page_size = parse_limit(limit)
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET}")
        return await self.views.board(
            window=window, track=track, sort=sort, limit=page_size, offset=offset
        )

    async def me(self, identity: Identity) -> MyStanding:
        """The caller's own standing (students only)."""
        require_student(identity)
        return await self.views.me(identity)

    async def stats(self) -> CommunityStats:
        return await self.views.stats()

    async def activity(self, page: PageRequest) -> ActivityPage:
        return await self.views.activity(page)

    # ------------------------------------------------------------------ privacy

    async def set_privacy(self, identity: Identity, choice: Privacy) -> Privacy:
        """Store the student's choice and apply it to every board at once.

        A student no event has named yet takes the name of their token."""
        user_id = require_student(identity)
        today = self.ctx.today()
        async with self.placement.moving() as (uow, moves):
            conn = uow.conn
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
            await self.placement.place(
                conn,
                [user_id],
                today,
                out,
                moves,
                everywhere=True,
                defer_moves=await self.ctx.boards.has_pending(),
            )
            uow.add(out)
        return choice

    # ------------------------------------------------------------------ events and jobs

    async def apply_events(
        self,
        envelopes: Sequence[Envelope],
        *,
        behind: bool = False,
        parsed: Mapping[uuid.UUID, tally.Parsed | tally.InvalidEvent | None] | None = None,
    ) -> IngestResult:
        """Apply a batch of consumed events exactly once each (`ingest.py`)."""
        return await self.ingest.apply_events(envelopes, behind=behind, parsed=parsed)

    async def announce_pending_moves(self) -> int:
        """Announce a worked-through backlog's net rank moves (`jobs.py`)."""
        return await self.jobs.announce_pending_moves()

    async def roll_windows(self, today: dt.date | None = None) -> int:
        """Re-place the students a new UTC day moves (`jobs.py`)."""
        return await self.jobs.roll_windows(today)

    async def resync(self) -> None:
        """Rebuild every Redis board from the statistics (`jobs.py`)."""
        await self.jobs.resync()
