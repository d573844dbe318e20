"""The leaderboard's rows as the code holds them; pure data, no I/O.

Students, day rows and profiles cross the wire as JSON arrays of their fields
in order (`array_like`): Postgres builds them, msgspec decodes them straight
into these structs and encodes them back for the writes. The statements that
build and take apart those arrays are generated from these fields, in one
place (`rowsql`); field order is column order there.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from community_leaderboard.counters import Counters, Tally

# --------------------------------------------------------------------------- ingest state


class DayState(msgspec.Struct, array_like=True, gc=False):
    user_id: uuid.UUID
    day: dt.date
    counters: Counters = msgspec.field(default_factory=Counters)
    revenue_delta: Decimal = Decimal("0.00")
    mrr_delta: Decimal = Decimal("0.00")
    active: bool = False


class StudentState(msgspec.Struct, array_like=True, gc=False):
    user_id: uuid.UUID
    name: str | None = None
    name_at: dt.datetime | None = None
    role: str = "student"
    track: str | None = None
    goal_slug: str | None = None
    goal_name: str | None = None
    total_revenue: Decimal = Decimal("0.00")
    current_mrr: Decimal = Decimal("0.00")
    earned_at: dt.datetime | None = None
    counters: Counters = msgspec.field(default_factory=Counters)
    days_active: int = 0
    first_event_day: dt.date | None = None
    last_event_day: dt.date | None = None
    last_active_day: dt.date | None = None
    streak_start: dt.date | None = None
    streak_end: dt.date | None = None
    reached_at: dt.datetime | None = None
    version: int = 0
    """The row version it was read at (Postgres's `xmin`; 0 for a new student):
    the ingest writes a student back only if nobody changed the row since."""


@dataclass(frozen=True, slots=True)
class ItemState:
    user_id: uuid.UUID
    day: dt.date


ItemKey = tuple[str, str]
DayKey = tuple[uuid.UUID, dt.date]


@dataclass(frozen=True, slots=True)
class ActivityRow:
    id: uuid.UUID
    kind: str
    user_id: uuid.UUID
    occurred_at: dt.datetime
    subject_id: str
    amount: Decimal | None
    detail: str | None
    ref: dict[str, str]


@dataclass(frozen=True)
class PrivacyRow:
    show_on_leaderboard: bool
    show_earnings: bool


# --------------------------------------------------------------------------- profiles


class WindowFigures(msgspec.Struct, frozen=True, gc=False, array_like=True):
    tally: Tally
    revenue_growth: Decimal
    mrr_growth: Decimal


class Profile(msgspec.Struct, frozen=True, kw_only=True, gc=False, array_like=True):
    """Everything the boards and the API show about one student.

    As JSON, a profile and its parts are arrays of their fields in order
    (`array_like`): the profile query sends one per student touched by a batch,
    and without the keys it is less than half the size."""

    user_id: uuid.UUID
    name: str | None
    role: str
    track: str | None
    goal_slug: str | None
    goal_name: str | None
    total_revenue: Decimal
    current_mrr: Decimal
    earned: Decimal
    earned_at: dt.datetime | None
    first_event_day: dt.date | None
    last_event_day: dt.date | None
    streak_start: dt.date | None
    streak_end: dt.date | None
    reached_at: dt.datetime | None
    visible: bool
    show_earnings: bool
    badges: frozenset[str]
    windows: dict[str, WindowFigures]

    @property
    def streak(self) -> tuple[dt.date, dt.date] | None:
        if self.streak_start is None or self.streak_end is None:
            return None
        return (self.streak_start, self.streak_end)
