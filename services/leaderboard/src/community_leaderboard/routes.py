"""HTTP controllers: take the parameters, call the use case, answer.

Each route states who may call it and the errors it answers (`answers`); the
use cases (`service.py`) check who asks and what they ask, and raise domain
errors that the shared handler turns into HTTP answers.
"""

from __future__ import annotations

from typing import Annotated

from community_shared.auth import Identity
from community_shared.pagination import DEFAULT_LIMIT, Limit
from community_shared.web import ANYONE, STUDENTS, PageQuery, answers
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from community_leaderboard.rules import SORTS, TRACKS, WINDOWS
from community_leaderboard.schemas import (
    ActivityPage,
    BoardPage,
    CommunityStats,
    MyStanding,
    Privacy,
)
from community_leaderboard.service import MAX_OFFSET, LeaderboardService

# The values are checked by the use case (its message names the parameter); the
# document lists them.
WindowParam = Annotated[str, QueryParameter(schema_extra={"enum": list(WINDOWS)})]
TrackParam = Annotated[str, QueryParameter(schema_extra={"enum": list(TRACKS)})]
SortParam = Annotated[str, QueryParameter(schema_extra={"enum": list(SORTS)})]
OffsetParam = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)]


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
        leaderboard: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],  # anyone may read; a bad token is still a 401
        window: WindowParam = "all",
        track: TrackParam = "all",
        sort: SortParam = "rank",
        limit: Limit = DEFAULT_LIMIT,
        offset: OffsetParam = 0,
    ) -> BoardPage:
        return await leaderboard.board(
            window=window, track=track, sort=sort, limit=limit, offset=offset
        )

    @get("/me", summary="The caller's own standing, ranks and neighbours", **answers(STUDENTS))
    async def me(
        self,
        leaderboard: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],
    ) -> MyStanding:
        return await leaderboard.me(identity)

    @put(
        "/me/privacy",
        summary="Show or hide oneself and one's earnings on the boards",
        **answers(STUDENTS),
    )
    async def privacy(
        self,
        leaderboard: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],
        data: JSONBody[Privacy],
    ) -> Privacy:
        return await leaderboard.set_privacy(identity, data)

    @get("/stats", summary="Community totals", **answers(ANYONE))
    async def stats(
        self,
        leaderboard: NamedDependency[LeaderboardService],
        identity: NamedDependency[Identity],
    ) -> CommunityStats:
        return await leaderboard.stats()

    @get("/activity", summary="Recent community activity, newest first", **answers(ANYONE))
    async def activity(
        self, leaderboard: NamedDependency[LeaderboardService], page: PageQuery
    ) -> ActivityPage:
        return await leaderboard.activity(page)
