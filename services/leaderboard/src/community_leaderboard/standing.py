"""A student's standing on each board, computed from their loaded profile; pure.

Who is on a board: a student (never an instructor or admin) who shows on the
leaderboard, is on the board's track (`all` takes everyone), and has at least
one counted event (an action or an achievement) in the board's window.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from decimal import Decimal

import msgspec

from community_leaderboard import rules
from community_leaderboard.rows import Profile, WindowFigures

ZERO = Decimal("0")


class BoardEntry(msgspec.Struct, frozen=True, gc=False):
    """A student's place-defining numbers on one board."""

    score: int
    points: int
    earned_cents: int
    """What the `earned` sort places the student by: their figure, or the lower
    bound of its range when they hide it (`rules.earned_sort_value`)."""
    actions: int
    learn_rate: float


class Standing(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A student's figures over one window."""

    points: int
    earned: Decimal
    actions: int
    learn_rate: float
    execution_rate: float
    days_active: int
    completed_goals: int


def standing(profile: Profile, window: str, weights: rules.Weights) -> Standing:
    figures = profile.windows[window]
    tally = figures.tally
    if window == "all":
        earned = rules.earned_for_track(profile.track, profile.total_revenue, profile.current_mrr)
    else:
        earned = rules.window_earned(profile.track, figures.revenue_growth, figures.mrr_growth)
    return Standing(
        points=rules.points(tally, earned, weights),
        earned=earned,
        actions=rules.actions(tally),
        learn_rate=rules.round1(rules.learn_rate(tally.watched_seconds, tally.session_seconds)),
        execution_rate=rules.round1(
            rules.execution_rate(tally.tasks_completed, tally.tasks_assigned)
        ),
        days_active=tally.days_active,
        completed_goals=tally.completed_goals,
    )


def empty_profile(user_id: uuid.UUID, visible: bool, show_earnings: bool) -> Profile:
    """The profile of a student the leaderboard has not seen do anything yet."""
    nothing = WindowFigures(rules.Tally(), ZERO, ZERO)
    return Profile(
        user_id=user_id,
        name=None,
        role="student",
        track=None,
        goal_slug=None,
        goal_name=None,
        total_revenue=ZERO,
        current_mrr=ZERO,
        earned=ZERO,
        earned_at=None,
        first_event_day=None,
        last_event_day=None,
        streak_start=None,
        streak_end=None,
        reached_at=None,
        visible=visible,
        show_earnings=show_earnings,
        badges=frozenset(),
        windows={w: nothing for w in rules.WINDOWS},
    )


def is_rankable(profile: Profile) -> bool:
    return profile.role == "student" and profile.visible and profile.first_event_day is not None


def on_board(profile: Profile, window: str, track: str, today: dt.date) -> bool:
    if not is_rankable(profile):
        return False
    if track != "all" and profile.track != track:
        return False
    start = rules.window_start(window, today)
    return start is None or (profile.last_event_day is not None and profile.last_event_day >= start)


def board_entries(
    profile: Profile, today: dt.date, weights: rules.Weights
) -> dict[str, BoardEntry]:
    """The boards the student belongs on, with their entry on each (the same
    membership as `on_board`, and the same figures as `standing`, computed once
    per window: this runs for every student an ingest batch touches)."""
    entries: dict[str, BoardEntry] = {}
    if not is_rankable(profile):
        return entries
    tie = rules.tie_break(profile.reached_at or rules.SCORE_EPOCH)
    track = profile.track
    names = _BOARD_NAMES.get(track) or _BOARD_NAMES[None]
    last = profile.last_event_day
    for window, start in _window_starts(today):
        if start is not None and (last is None or last < start):
            continue
        figures = profile.windows[window]
        tally = figures.tally
        if window == "all":
            earned = rules.earned_for_track(track, profile.total_revenue, profile.current_mrr)
        else:
            earned = rules.window_earned(track, figures.revenue_growth, figures.mrr_growth)
        points = rules.points(tally, earned, weights)
        entry = BoardEntry(
            score=rules.score_with(points, tie),
            points=points,
            earned_cents=int(
                rules.earned_sort_value(earned, show_earnings=profile.show_earnings) * 100
            ),
            actions=rules.actions(tally),
            learn_rate=rules.round1(rules.learn_rate(tally.watched_seconds, tally.session_seconds)),
        )
        for name in names[window]:
            entries[name] = entry
    return entries


_BOARD_NAMES: dict[str | None, dict[str, tuple[str, ...]]] = {
    track: {
        w: tuple(f"{w}:{t}" for t in (("all", track) if track is not None else ("all",)))
        for w in rules.WINDOWS
    }
    for track in (None, *sorted(rules.STUDENT_TRACKS))
}


@functools.lru_cache(maxsize=8)
def _window_starts(today: dt.date) -> tuple[tuple[str, dt.date | None], ...]:
    return tuple((w, rules.window_start(w, today)) for w in rules.WINDOWS)


def personal_badges(profile: Profile, today: dt.date) -> set[str]:
    """Badges earned on the student's own record (top-performer is decided per track)."""
    if profile.role != "student":
        return set()
    week = profile.windows["7d"].tally
    return rules.personal_badges(
        streak_days=rules.current_streak(profile.streak, today),
        watched_7d=week.watched_seconds,
        session_7d=week.session_seconds,
        completed_goals=profile.windows["all"].tally.completed_goals,
    )
