"""The leaderboard's read views: a board, one's own standing, the community
totals, the activity ticker, and the boards' first pages.

Ranks and orders come from the Redis boards, the figures from the students'
profiles in Postgres (`standing.py` computes them, the same as the boards'
scores); a page of a board is one Redis pipeline and one query.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence

from community_shared.auth import Identity
from community_shared.money import format_money
from community_shared.pagination import PageRequest, TimeKey, decode_cursor, keyset_page

from community_leaderboard import rules, store
from community_leaderboard.announcements import UNNAMED
from community_leaderboard.context import Context
from community_leaderboard.firstpages import PAGE_SIZE
from community_leaderboard.rows import Profile
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
from community_leaderboard.standing import Standing, empty_profile, standing


def board_item(
    profile: Profile, window: str, rank: int | None, weights: rules.Weights
) -> BoardItem:
    """A student's line on a board, as the API and `top.changed` show it."""
    s = standing(profile, window, weights)
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


def board_items(
    members: Sequence[uuid.UUID],
    ranks: Sequence[int | None],
    profiles: Mapping[uuid.UUID, Profile],
    window: str,
    weights: rules.Weights,
) -> list[BoardItem]:
    return [
        board_item(profiles[m], window, rank, weights)
        for m, rank in zip(members, ranks, strict=True)
        if m in profiles
    ]


def window_figures(s: Standing) -> WindowFigures:
    """One's own figures over a window (earned always shown to its owner)."""
    return WindowFigures(
        points=s.points,
        earned=format_money(s.earned) or "0.00",
        earnings_range=rules.earnings_range(s.earned),
        actions=s.actions,
        learn_rate=s.learn_rate,
        execution_rate=s.execution_rate,
        days_active=s.days_active,
        completed_goals=s.completed_goals,
    )


def _goal(profile: Profile) -> Goal | None:
    if not profile.goal_slug:
        return None
    return Goal(slug=profile.goal_slug, name=profile.goal_name or profile.goal_slug)


def _badges(profile: Profile) -> list[str]:
    return [b for b in rules.BADGES if b in profile.badges]


class Views:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def board(
        self, *, window: str, track: str, sort: str, limit: int, offset: int
    ) -> BoardPage:
        ctx = self.ctx
        board = rules.board_name(window, track)
        today = ctx.today()
        if sort == "name":
            async with ctx.db.connection() as conn:
                members = await store.board_by_name(
                    conn,
                    since=rules.window_start(window, today),
                    track=None if track == "all" else track,
                    limit=limit,
                    offset=offset,
                )
            ranks = await ctx.boards.ranks(board, members)
            total = await ctx.boards.total(board)
        elif sort == "rank":
            members, total = await ctx.boards.page_and_total(board, "rank", offset, limit)
            ranks = [offset + i + 1 for i in range(len(members))]
        else:
            members, total = await ctx.boards.page_and_total(board, sort, offset, limit)
            ranks = await ctx.boards.ranks(board, members)
        if not members:
            return BoardPage(items=[], total=total)
        async with ctx.db.connection() as conn:
            profiles = await store.load_profiles(conn, members, today)
        return BoardPage(
            items=board_items(members, ranks, profiles, window, ctx.weights), total=total
        )

    async def me(self, identity: Identity) -> MyStanding:
        assert identity.user_id is not None
        ctx = self.ctx
        weights = ctx.weights
        user_id = identity.user_id
        today = ctx.today()
        async with ctx.db.connection() as conn:
            profile = (await store.load_profiles(conn, [user_id], today)).get(user_id)
            if profile is None:
                choice = await store.get_privacy(conn, user_id)
                profile = empty_profile(user_id, choice.show_on_leaderboard, choice.show_earnings)
        ranks = await ctx.boards.ranks_everywhere(user_id)
        rank = ranks[rules.ALL_TIME_BOARD]
        above: list[BoardItem] = []
        below: list[BoardItem] = []
        if rank is not None:
            first = max(rank - 3, 0)  # 0-based index of the highest neighbour above
            above_ids = await ctx.boards.page(rules.ALL_TIME_BOARD, "rank", first, rank - 1 - first)
            below_ids = await ctx.boards.page(rules.ALL_TIME_BOARD, "rank", rank, 2)
            async with ctx.db.connection() as conn:
                near = await store.load_profiles(conn, [*above_ids, *below_ids], today)
            above = [
                board_item(near[u], "all", first + i + 1, weights)
                for i, u in enumerate(above_ids)
                if u in near
            ]
            below = [
                board_item(near[u], "all", rank + i + 1, weights)
                for i, u in enumerate(below_ids)
                if u in near
            ]
        mine = standing(profile, "all", weights)
        figures = window_figures(mine)
        return MyStanding(
            user_id=user_id,
            name=profile.name or identity.name or UNNAMED,
            track=profile.track,
            goal=_goal(profile),
            rank=rank,
            points=figures.points,
            earned=figures.earned,
            earnings_range=figures.earnings_range,
            actions=figures.actions,
            learn_rate=figures.learn_rate,
            execution_rate=figures.execution_rate,
            days_active=figures.days_active,
            completed_goals=figures.completed_goals,
            badges=_badges(profile),
            ranks=ranks,
            neighbors=Neighbors(above=above, below=below),
            windows={w: window_figures(standing(profile, w, weights)) for w in ("30d", "7d")},
            privacy=Privacy(
                show_on_leaderboard=profile.visible, show_earnings=profile.show_earnings
            ),
        )

    async def stats(self) -> CommunityStats:
        today = self.ctx.today()
        async with self.ctx.db.connection() as conn:
            figures = await store.community_figures(conn, today - dt.timedelta(days=6))
        return CommunityStats(
            total_students=figures.total_students,
            active_this_week=figures.active_this_week,
            total_earnings=format_money(figures.total_earnings) or "0.00",
            average_learn_rate=rules.round1(figures.average_learn_rate or 0.0),
            students_by_track={"agency": figures.agency, "saas": figures.saas},
        )

    async def activity(self, page: PageRequest) -> ActivityPage:
        after = decode_cursor(page.cursor, TimeKey)
        async with self.ctx.db.connection() as conn:
            rows = await store.recent_activity(
                conn, limit=page.limit + 1, before=(after.at, after.id) if after else None
            )
        kept, next_cursor = keyset_page(rows, page.limit, lambda r: TimeKey(r.occurred_at, r.id))
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
            for r in kept
        ]
        return ActivityPage(items=items, next_cursor=next_cursor)

    async def first_pages(self, boards: Sequence[str]) -> dict[str, list[BoardItem]]:
        """The first page (`sort=rank`, 20 entries) of each board, as `GET /leaderboard`
        renders it, with one Redis round trip and one query for them all."""
        ctx = self.ctx
        today = ctx.today()
        members = await ctx.boards.first_pages(boards, PAGE_SIZE)
        everyone = {m for page in members.values() for m in page}
        profiles: dict[uuid.UUID, Profile] = {}
        if everyone:
            async with ctx.db.connection() as conn:
                profiles = await store.load_profiles(conn, everyone, today)
        return {
            board: board_items(
                page, range(1, len(page) + 1), profiles, board.split(":", 1)[0], ctx.weights
            )
            for board, page in members.items()
        }
