"""The leaderboard's use cases refuse bad requests with domain errors, before
any I/O and without the web framework: what the routes answer as 400, 401 and
403."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.schemas import Privacy
from community_leaderboard.service import MAX_OFFSET, LeaderboardService
from community_shared.auth import GUEST, Identity
from community_shared.errors import Forbidden, InvalidInput, Unauthenticated
from community_shared.pagination import PageRequest
from community_shared.settings import Settings


class NoDatabase:
    """A pool that fails the test if a refused request reaches Postgres."""

    def acquire(self) -> Any:
        raise AssertionError("a refused request reached the database")


@pytest.fixture
def service() -> LeaderboardService:
    redis = aioredis.Redis.from_url("redis://127.0.0.1:1")  # never connected to
    settings = Settings.from_env("leaderboard", 8004, jwt_secret="x" * 32)
    return LeaderboardService(NoDatabase(), redis, settings, LeaderboardConfig())  # type: ignore[arg-type]


INSTRUCTOR = Identity(user_id=uuid.uuid4(), role="instructor", name="I", member=True)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"window": "year"}, "window must be one of: all, 30d, 7d"),
        ({"track": "ops"}, "track must be one of: all, agency, saas"),
        ({"sort": "points"}, "sort must be one of: rank, earned, actions, learn_rate, name"),
        ({"limit": 0}, "limit must be between 1 and 100"),
        ({"offset": MAX_OFFSET + 1}, f"offset must be between 0 and {MAX_OFFSET}"),
    ],
)
async def test_a_bad_board_query_is_invalid_input(
    service: LeaderboardService, query: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"window": "all", "track": "all", "sort": "rank", "limit": 20}
    args["offset"] = 0
    with pytest.raises(InvalidInput) as raised:
        await service.board(**{**args, **query})
    assert raised.value.detail == message


async def test_a_malformed_activity_cursor_is_invalid_input(service: LeaderboardService) -> None:
    with pytest.raises(InvalidInput, match="malformed cursor"):
        await service.activity(PageRequest(cursor="not-a-cursor", limit=20))


async def test_only_students_have_a_standing_and_privacy(service: LeaderboardService) -> None:
    choice = Privacy(show_on_leaderboard=False, show_earnings=False)
    with pytest.raises(Unauthenticated):
        await service.me(GUEST)
    with pytest.raises(Forbidden):
        await service.me(INSTRUCTOR)
    with pytest.raises(Unauthenticated):
        await service.set_privacy(GUEST, choice)
    with pytest.raises(Forbidden):
        await service.set_privacy(INSTRUCTOR, choice)
