"""What the parts of the leaderboard service share while it runs.

One `Context` per running service: the connections, the configuration, the
clock, the Redis boards, and two notes the ingest leaves for the background
jobs (boards whose first page may have changed, and that the community
totals may have).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis
from community_shared.settings import Settings
from community_shared.unit_of_work import Database

from community_leaderboard import events as ev
from community_leaderboard import rules
from community_leaderboard.boards import Boards
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.firstpages import FirstPageWatch
from community_leaderboard.store import SCHEMA


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(eq=False)
class Context:
    pool: asyncpg.Pool
    redis: aioredis.Redis
    settings: Settings
    config: LeaderboardConfig
    today: Callable[[], dt.date] = utc_today
    """The UTC day the windows end on (tests pass their own)."""
    db: Database = field(init=False)
    """The schema's units of work (transactions whose events go to the outbox)."""
    boards: Boards = field(init=False)
    first_pages: FirstPageWatch = field(init=False)
    """Boards touched since their first page was last looked at (`jobs.py` publishes)."""
    stats_dirty: bool = True
    """The community totals may have changed since they were last published."""

    def __post_init__(self) -> None:
        self.db = Database(self.pool, SCHEMA, ev.SOURCE)
        self.boards = Boards(self.redis, self.settings)
        self.first_pages = FirstPageWatch(self.config.top_interval_seconds)

    @property
    def weights(self) -> rules.Weights:
        return self.config.weights

    @property
    def pending_since_key(self) -> str:
        """When the first rank move of the current backlog was kept (ISO time)."""
        return self.settings.redis_key("lb:pending_moves:since")
