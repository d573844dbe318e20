"""The leaderboard's rules, pure: no I/O, no clock (callers pass `today`).

Everything a reader needs to know about how a student is measured and ranked
lives here: which days a window covers, what `earned` means per track, the
learn and execution rates, points and their weights, streaks, each badge's
threshold, the public earnings ranges, and how "who got there first" is
encoded into a Redis sorted-set score so that a single `ZREVRANGE` yields the
board in order.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from community_leaderboard.counters import Tally as Tally

# --------------------------------------------------------------------------- boards

WINDOWS: tuple[str, ...] = ("all", "30d", "7d")
TRACKS: tuple[str, ...] = ("all", "agency", "saas")
STUDENT_TRACKS: frozenset[str] = frozenset({"agency", "saas"})
WINDOW_DAYS: dict[str, int] = {"30d": 30, "7d": 7}
SORTS: tuple[str, ...] = ("rank", "earned", "actions", "learn_rate", "name")
BOARDS: tuple[str, ...] = tuple(f"{w}:{t}" for w in WINDOWS for t in TRACKS)
ALL_TIME_BOARD = "all:all"
ZERO = Decimal("0")


def board_name(window: str, track: str) -> str:
    return f"{window}:{track}"


def window_start(window: str, today: dt.date) -> dt.date | None:
    """First UTC day counted by `window` (None for all time).

    A window of N days is today and the N-1 days before it: on the 7-day board
    an action from 6 days ago counts, one from 7 days ago no longer does.
    """
    days = WINDOW_DAYS.get(window)
    if days is None:
        return None
    return today - dt.timedelta(days=days - 1)


def in_window(day: dt.date, window: str, today: dt.date) -> bool:
    start = window_start(window, today)
    return start is None or day >= start


def _boards_of(track: str | None) -> tuple[str, ...]:
    tracks = ["all"] + ([track] if track in STUDENT_TRACKS and track is not None else [])
    return tuple(board_name(w, t) for w in WINDOWS for t in tracks)


_BOARDS_OF = {track: _boards_of(track) for track in (None, *STUDENT_TRACKS)}


def boards_of(track: str | None) -> tuple[str, ...]:
    """The boards a student of `track` can appear on (their track's and `all`)."""
    return _BOARDS_OF.get(track) or _BOARDS_OF[None]


# --------------------------------------------------------------------------- metrics


def actions(t: Tally) -> int:
    """Posts, replies, likes given, submissions, videos watched, tasks completed."""
    return (
        t.posts + t.replies + t.likes_given + t.submissions + t.videos_watched + t.tasks_completed
    )


def learn_rate(watched_seconds: int, session_seconds: int) -> float:
    """Minutes of video watched per hour on the platform: 60 x watched / session.

    0.0 when there is no session time yet (nothing to divide by).
    """
    if session_seconds <= 0:
        return 0.0
    return 60.0 * max(watched_seconds, 0) / session_seconds


def execution_rate(completed: int, assigned: int) -> float:
    """Tasks completed per task assigned, in percent, at most 100.

    A task completed without a recorded assignment counts as assigned (the
    assignment may predate the history), so the rate never exceeds 100; with
    nothing assigned and nothing completed it is 0.0.
    """
    completed = max(completed, 0)
    basis = max(assigned, completed)
    if basis <= 0:
        return 0.0
    return 100.0 * completed / basis


def round1(value: float) -> float:
    return round(value, 1)


def earned_for_track(track: str | None, total_revenue: Decimal, current_mrr: Decimal) -> Decimal:
    """All-time `earned`: agency students by total revenue, saas students by current MRR."""
    if track == "agency":
        return total_revenue
    if track == "saas":
        return current_mrr
    return ZERO


def window_earned(track: str | None, revenue_growth: Decimal, mrr_growth: Decimal) -> Decimal:
    """`earned` over a window: how much the track's figure grew in it (never below 0)."""
    growth = earned_for_track(track, revenue_growth, mrr_growth)
    return max(growth, ZERO)


# --------------------------------------------------------------------------- points


@dataclass(frozen=True)
class Weights:
    """Points per action and achievement. Defaults are documented in docs/leaderboard.md."""

    post: int = 5
    reply: int = 3
    like: int = 1
    submission: int = 10
    approval: int = 25
    video: int = 2
    task: int = 5
    goal: int = 250
    per_100_earned: int = 1

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"weight {name} must not be negative")


DEFAULT_WEIGHTS = Weights()


def points(t: Tally, earned: Decimal, weights: Weights = DEFAULT_WEIGHTS) -> int:
    """Weighted sum of actions and achievements, never negative.

    Achievements are completed goals, approved revenue submissions and money
    earned (`per_100_earned` points per whole 100 of the track's figure).
    """
    total = (
        weights.post * t.posts
        + weights.reply * t.replies
        + weights.like * t.likes_given
        + weights.submission * t.submissions
        + weights.approval * t.approvals
        + weights.video * t.videos_watched
        + weights.task * t.tasks_completed
        + weights.goal * t.completed_goals
        + weights.per_100_earned * int(max(earned, ZERO) // 100)
    )
    return max(total, 0)


# --------------------------------------------------------------------------- ranking ties

SCORE_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
TIME_BITS = 32
TIME_SPAN = 1 << TIME_BITS  # seconds: 136 years from the epoch
MAX_POINTS = (1 << (53 - TIME_BITS)) - 1  # points x 2^32 + time stays an exact double


def _seconds_since_epoch(at: dt.datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    seconds = math.floor((at - SCORE_EPOCH).total_seconds())
    return min(max(seconds, 0), TIME_SPAN - 1)


def board_score(points_: int, reached_at: dt.datetime) -> int:
    """Sorted-set score: more points first; equal points, who reached them first.

    `points * 2^32 + (2^32 - 1 - seconds since 2020)`: the integer stays below
    2^53, so a Redis double holds it exactly and `ZREVRANGE` orders by points,
    then by the earlier `reached_at`. Points are clamped to 0..2^21-1 and time
    to whole seconds; students tied to the second are ordered by id.
    """
    return score_with(points_, tie_break(reached_at))


def tie_break(reached_at: dt.datetime) -> int:
    """The low half of a `board_score`: larger for whoever reached the points first."""
    return TIME_SPAN - 1 - _seconds_since_epoch(reached_at)


def score_with(points_: int, tie: int) -> int:
    """`board_score` from the points and a `tie_break` computed once per student."""
    return min(max(points_, 0), MAX_POINTS) * TIME_SPAN + tie


def decode_board_score(score: float | int) -> tuple[int, dt.datetime]:
    """(points, reached_at to the second) of a `board_score`."""
    value = int(score)
    p, rest = divmod(value, TIME_SPAN)
    seconds = TIME_SPAN - 1 - rest
    return p, SCORE_EPOCH + dt.timedelta(seconds=seconds)


# --------------------------------------------------------------------------- streaks


def extend_streak(
    streak: tuple[dt.date, dt.date] | None, day: dt.date
) -> tuple[dt.date, dt.date] | None:
    """The latest run of consecutive active days after `day` became active.

    `streak` is (first, last) day of the latest run. Returns None when the
    answer needs the full history: `day` is just before the run, which may now
    join an older run.
    """
    if streak is None:
        return (day, day)
    start, end = streak
    if start <= day <= end or day < start - dt.timedelta(days=1):
        return streak
    if day == end + dt.timedelta(days=1):
        return (start, day)
    if day > end:
        return (day, day)
    return None  # day == start - 1


def latest_run(active_days: Iterable[dt.date]) -> tuple[dt.date, dt.date] | None:
    """(first, last) day of the run of consecutive days ending at the latest day."""
    days = sorted(set(active_days), reverse=True)
    if not days:
        return None
    end = start = days[0]
    for day in days[1:]:
        if day == start - dt.timedelta(days=1):
            start = day
        else:
            break
    return (start, end)


def current_streak(streak: tuple[dt.date, dt.date] | None, today: dt.date) -> int:
    """Length of the streak still alive today: the run must end today or yesterday
    (today is not over yet)."""
    if streak is None:
        return 0
    start, end = streak
    if end < today - dt.timedelta(days=1):
        return 0
    return (end - start).days + 1


# --------------------------------------------------------------------------- badges

TOP_PERFORMER = "top-performer"
CONSISTENT = "consistent"
FAST_LEARNER = "fast-learner"
GOAL_CRUSHER = "goal-crusher"
BADGES: tuple[str, ...] = (TOP_PERFORMER, CONSISTENT, FAST_LEARNER, GOAL_CRUSHER)

TOP_PERFORMER_SIZE = 10
CONSISTENT_DAYS = 30
FAST_LEARNER_RATE = 40.0
GOAL_CRUSHER_GOALS = 3


def earns_consistent(streak_days: int) -> bool:
    return streak_days >= CONSISTENT_DAYS


def earns_fast_learner(watched_seconds_7d: int, session_seconds_7d: int) -> bool:
    """Learn rate of at least 40 minutes per hour over the last 7 days."""
    return (
        session_seconds_7d > 0
        and learn_rate(watched_seconds_7d, session_seconds_7d) >= FAST_LEARNER_RATE
    )


def earns_goal_crusher(completed_goals: int) -> bool:
    return completed_goals >= GOAL_CRUSHER_GOALS


@dataclass(frozen=True)
class Earner:
    user_id: str
    earned: Decimal
    earned_at: dt.datetime | None


def top_performers(earners: Sequence[Earner]) -> list[str]:
    """The top 10 of a track by earned (only students who earned something);
    ties go to who reached the amount first, then to the id."""
    far_future = dt.datetime.max.replace(tzinfo=dt.UTC)

    def key(e: Earner) -> tuple[Decimal, dt.datetime, str]:
        at = e.earned_at or far_future
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        return (-e.earned, at, e.user_id)

    ranked = sorted((e for e in earners if e.earned > 0), key=key)
    return [e.user_id for e in ranked[:TOP_PERFORMER_SIZE]]


def personal_badges(
    *, streak_days: int, watched_7d: int, session_7d: int, completed_goals: int
) -> set[str]:
    """The badges a student earns on their own record (top-performer is relative)."""
    found: set[str] = set()
    if earns_consistent(streak_days):
        found.add(CONSISTENT)
    if earns_fast_learner(watched_7d, session_7d):
        found.add(FAST_LEARNER)
    if earns_goal_crusher(completed_goals):
        found.add(GOAL_CRUSHER)
    return found


# --------------------------------------------------------------------------- privacy

EARNINGS_RANGES: tuple[tuple[Decimal, str], ...] = (
    (Decimal(1_000), "$0-$1k"),
    (Decimal(5_000), "$1k-$5k"),
    (Decimal(10_000), "$5k-$10k"),
    (Decimal(25_000), "$10k-$25k"),
    (Decimal(50_000), "$25k-$50k"),
)
TOP_RANGE = "$50k+"


def earnings_range(earned: Decimal) -> str:
    """The public bucket of an amount; a bound belongs to the bucket above it
    ($1,000.00 is "$1k-$5k")."""
    for bound, label in EARNINGS_RANGES:
        if earned < bound:
            return label
    return TOP_RANGE


def earnings_range_floor(earned: Decimal) -> Decimal:
    """The lower bound of the public bucket of an amount ($7,500.00 → 5,000)."""
    floor = ZERO
    for bound, _ in EARNINGS_RANGES:
        if earned < bound:
            return floor
        floor = bound
    return floor


def earned_sort_value(earned: Decimal, *, show_earnings: bool) -> Decimal:
    """What a student is placed by under `sort=earned`: their figure, or, when
    they hide it, the lower bound of its range, so the order reveals no more
    than the range shown (SPEC §7)."""
    return earned if show_earnings else earnings_range_floor(earned)


# --------------------------------------------------------------------------- activity

BADGE_TITLES: dict[str, str] = {
    TOP_PERFORMER: "Top Performer",
    CONSISTENT: "Consistent",
    FAST_LEARNER: "Fast Learner",
    GOAL_CRUSHER: "Goal Crusher",
}


def activity_text(
    kind: str, name: str, *, detail: str | None, amount: Decimal | None, show_earnings: bool
) -> str:
    """The ticker line of an activity item; amounts only when the student shows earnings."""
    if kind == "post.created":
        return f"{name} shared a new post"
    if kind == "goal.completed":
        return f"{name} completed the goal {detail}" if detail else f"{name} completed a goal"
    if kind == "submission.approved":
        if show_earnings and amount is not None:
            return f"{name} logged ${amount:,.2f} in revenue"
        return f"{name} had a revenue milestone approved"
    if kind == "badge.awarded":
        title = BADGE_TITLES.get(detail or "", detail or "a")
        return f"{name} earned the {title} badge"
    if kind == "story.published":
        return (
            f"{name} published a success story: {detail}" if detail else f"{name} published a story"
        )
    return f"{name} was active"
