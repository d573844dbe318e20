"""HTTP controllers: parse and validate, authorize, call the service, answer."""

from __future__ import annotations

from typing import Any

import msgspec
from community_shared.auth import Identity
from community_shared.pagination import parse_limit
from community_shared.web import require_student, students_only
from litestar import Controller, Request, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException, ValidationException
from litestar.params import FromQuery, JSONBody

from community_leaderboard.rules import SORTS, TRACKS, WINDOWS
from community_leaderboard.schemas import (
    ActivityPage,
    BoardPage,
    CommunityStats,
    MyStanding,
    Privacy,
)
from community_leaderboard.service import LeaderboardService

MAX_OFFSET = 1_000_000


async def provide_service(state: State) -> LeaderboardService:
    service: LeaderboardService | None = getattr(state, "leaderboard_service", None)
    if service is None:
        raise ServiceUnavailableException(
            detail="the leaderboard is starting", headers={"Retry-After": "1"}
        )
    return service


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValidationException(detail=f"{name} must be one of: {', '.join(allowed)}")
    return value


class LeaderboardController(Controller):
    path = "/leaderboard"
    tags = ["leaderboard"]

    @get("/", summary="A board: students ranked by points, or sorted by another metric")
    async def board(
        self,
        service: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],  # anyone may read; a bad token is still a 401
        window: FromQuery[str] = "all",
        track: FromQuery[str] = "all",
        sort: FromQuery[str] = "rank",
        limit: FromQuery[int | None] = None,
        offset: FromQuery[int] = 0,
    ) -> BoardPage:
        _one_of("window", window, WINDOWS)
        _one_of("track", track, TRACKS)
        _one_of("sort", sort, SORTS)
        page_size = parse_limit(limit)
        if not 0 <= offset <= MAX_OFFSET:
            raise ValidationException(detail=f"offset must be between 0 and {MAX_OFFSET}")
        return await service.board(
            window=window, track=track, sort=sort, limit=page_size, offset=offset
        )

    @get("/me", summary="The caller's own standing, ranks and neighbours", guards=[students_only])
    async def me(
        self, service: NamedDependency[LeaderboardService], identity: NamedDependency[Identity]
    ) -> MyStanding:
        require_student(identity)
        return await service.me(identity)

    @put(
        "/me/privacy",
        summary="Show or hide oneself and one's earnings on the boards",
        guards=[students_only],
    )
    async def privacy(
        self,
        service: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],
        request: Request[Any, Any, Any],
        data: JSONBody[Privacy],
    ) -> Privacy:
        require_student(identity)
        # The framework converts leniently (1 -> true); a privacy switch takes JSON booleans only.
        try:
            choice = msgspec.json.decode(await request.body(), type=Privacy)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValidationException(detail=f"invalid privacy settings: {exc}") from exc
        return await service.set_privacy(identity, choice)

    @get("/stats", summary="Community totals")
    async def stats(
        self, service: NamedDependency[LeaderboardService], identity: NamedDependency[Identity]
    ) -> CommunityStats:
        return await service.stats()

    @get("/activity", summary="Recent community activity, newest first")
    async def activity(
        self,
        service: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> ActivityPage:
        return await service.activity(limit=parse_limit(limit), cursor=cursor)
