"""msgspec Structs of the leaderboard's HTTP API (SPEC section 7)."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from community_shared.pagination import Page


class Goal(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    name: str


class BoardItem(msgspec.Struct, frozen=True, kw_only=True):
    rank: int | None
    user_id: uuid.UUID
    name: str
    track: str | None
    goal: Goal | None
    points: int
    earned: str | None
    """Money string; null when the student hides their earnings."""
    earnings_range: str
    actions: int
    learn_rate: float
    execution_rate: float
    days_active: int
    completed_goals: int
    badges: list[str]


class BoardPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[BoardItem]
    total: int


class Privacy(msgspec.Struct, frozen=True, kw_only=True):
    show_on_leaderboard: bool
    show_earnings: bool


class WindowFigures(msgspec.Struct, frozen=True, kw_only=True):
    points: int
    earned: str
    earnings_range: str
    actions: int
    learn_rate: float
    execution_rate: float
    days_active: int
    completed_goals: int


class Neighbors(msgspec.Struct, frozen=True, kw_only=True):
    above: list[BoardItem]
    """Up to two students just above, in rank order."""
    below: list[BoardItem]
    """Up to two students just below, in rank order."""


class MyStanding(msgspec.Struct, frozen=True, kw_only=True):
    """The caller's own all-time figures (earned always shown to its owner), their
    rank on every board (null where they are not on it) and their neighbours on
    the all-time board."""

    user_id: uuid.UUID
    name: str
    track: str | None
    goal: Goal | None
    rank: int | None
    points: int
    earned: str
    earnings_range: str
    actions: int
    learn_rate: float
    execution_rate: float
    days_active: int
    completed_goals: int
    badges: list[str]
    ranks: dict[str, int | None]
    neighbors: Neighbors
    windows: dict[str, WindowFigures]
    privacy: Privacy


class CommunityStats(msgspec.Struct, frozen=True, kw_only=True):
    total_students: int
    active_this_week: int
    total_earnings: str
    average_learn_rate: float
    students_by_track: dict[str, int]


class ActivityItem(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    type: str
    user_id: uuid.UUID
    name: str
    text: str
    occurred_at: dt.datetime
    ref: dict[str, str]


class ActivityPage(Page[ActivityItem]):
    """Activity items, newest first (SPEC §3 paging)."""

    # Named again: the OpenAPI document does not resolve the generic base's item type.
    items: list[ActivityItem]
