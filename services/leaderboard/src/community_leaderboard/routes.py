"""HTTP controllers: parse and validate, authorize, call the service, answer.

Each route states who may call it and the errors it answers (`answers`).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from community_shared.auth import Identity
from community_shared.jsonin import decode_json
from community_shared.pagination import DEFAULT_LIMIT, Cursor, Limit, parse_limit
from community_shared.web import ANYONE, STUDENTS, answers, require_student
from litestar import Controller, Request, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException, ValidationException
from litestar.params import JSONBody, QueryParameter

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

# The values are checked by `_one_of` (its message names the parameter); the
# document lists them.
WindowParam = Annotated[str, QueryParameter(schema_extra={"enum": list(WINDOWS)})]
TrackParam = Annotated[str, QueryParameter(schema_extra={"enum": list(TRACKS)})]
SortParam = Annotated[str, QueryParameter(schema_extra={"enum": list(SORTS)})]
OffsetParam = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)]


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

    @get(
        "/",
        summary="A board: students ranked by points, or sorted by another metric",
        **answers(ANYONE),
    )
    async def board(
        self,
        service: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],  # anyone may read; a bad token is still a 401
        window: WindowParam = "all",
        track: TrackParam = "all",
        sort: SortParam = "rank",
        limit: Limit = DEFAULT_LIMIT,
        offset: OffsetParam = 0,
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

    @get("/me", summary="The caller's own standing, ranks and neighbours", **answers(STUDENTS))
    async def me(
        self, service: NamedDependency[LeaderboardService], identity: NamedDependency[Identity]
    ) -> MyStanding:
        require_student(identity)
        return await service.me(identity)

    @put(
        "/me/privacy",
        summary="Show or hide oneself and one's earnings on the boards",
        **answers(STUDENTS),
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
            choice = decode_json(await request.body(), type=Privacy)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValidationException(detail=f"invalid privacy settings: {exc}") from exc
        return await service.set_privacy(identity, choice)

    @get("/stats", summary="Community totals", **answers(ANYONE))
    async def stats(
        self, service: NamedDependency[LeaderboardService], identity: NamedDependency[Identity]
    ) -> CommunityStats:
        return await service.stats()

    @get("/activity", summary="Recent community activity, newest first", **answers(ANYONE))
    async def activity(
        self,
        service: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ActivityPage:
        return await service.activity(limit=parse_limit(limit), cursor=cursor)
