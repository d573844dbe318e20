"""The approval rules of the goals service, and nothing else: pure, no I/O.

A track measures one metric: the Agency track the cumulative revenue a student
earned (approved amounts are added), the SaaS track the monthly recurring
revenue (the highest approved amount: MRR never decreases). A student works on
one goal at a time. When the track's metric reaches the goal's target the goal
is completed and the student moves on to the next goal of the track whose
target is above the metric; goals jumped over on the way are completed too.
After the last goal the student stays on it, completed.

Callers pass the time (`now`) and the current state; every function returns a
new value and never mutates its arguments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Literal

Metric = Literal["total_revenue", "mrr"]
GoalStatus = Literal["none", "active", "completed"]

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
_PERCENT_PLACES = Decimal("0.01")
_DAY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Goal:
    slug: str
    name: str
    target: Decimal
    position: int
    track: str


@dataclass(frozen=True)
class Track:
    slug: str
    name: str
    metric: Metric
    goals: tuple[Goal, ...]  # by position, targets strictly increasing

    def goal(self, slug: str) -> Goal | None:
        return next((g for g in self.goals if g.slug == slug), None)

    def after(self, goal: Goal) -> Goal | None:
        """The goal that follows `goal` in this track, or None after the last."""
        later = [g for g in self.goals if g.position > goal.position]
        return later[0] if later else None


@dataclass(frozen=True)
class Metrics:
    total_revenue_earned: Decimal = ZERO
    current_mrr: Decimal = ZERO


def apply_approved_amount(metric: Metric, metrics: Metrics, amount: Decimal) -> Metrics:
    """The metrics after an approved revenue submission of `amount`.

    Agency (`total_revenue`): the amount is added. SaaS (`mrr`): MRR becomes the
    larger of the current MRR and the amount, so it never decreases.
    """
    if metric == "total_revenue":
        return Metrics(metrics.total_revenue_earned + amount, metrics.current_mrr)
    return Metrics(metrics.total_revenue_earned, max(metrics.current_mrr, amount))


def progress_of(metric: Metric, metrics: Metrics) -> Decimal:
    """What a track's goals are measured against."""
    return metrics.total_revenue_earned if metric == "total_revenue" else metrics.current_mrr


def percent(progress: Decimal, target: Decimal) -> Decimal:
    """Progress towards `target` in percent, 0..100, truncated to two decimals."""
    if target <= 0:
        return HUNDRED
    value = min(HUNDRED, max(ZERO, progress * HUNDRED / target))
    return value.quantize(_PERCENT_PLACES, rounding=ROUND_DOWN)


def days_between(start: dt.datetime, end: dt.datetime) -> int:
    """Whole days from `start` to `end` (0 when `end` is not later)."""
    return max(0, int((end - start).total_seconds() // _DAY_SECONDS))


@dataclass(frozen=True)
class Completion:
    goal: Goal
    completed_at: dt.datetime
    days_to_complete: int
    amount: Decimal  # the progress when the goal was completed


@dataclass(frozen=True)
class GoalState:
    """The goal in effect: which goal, whether it is done, and since when it is worked on."""

    goal: Goal
    status: Literal["active", "completed"]
    started_at: dt.datetime


@dataclass(frozen=True)
class Advance:
    state: GoalState
    completed: tuple[Completion, ...]  # newly completed goals, in track order


def advance_goal(
    track: Track,
    state: GoalState,
    progress: Decimal,
    now: dt.datetime,
    already_completed: Iterable[str] = (),
) -> Advance:
    """Complete every goal whose target `progress` has reached and move on.

    Starting at `state.goal`: while the goal's target is <= `progress` it is
    completed (days counted from `state.started_at`: everything completed in
    one step was being worked towards since then) and the student moves to the
    next goal; a student on the last goal stays on it with status completed.
    Goals in `already_completed` (slugs) are passed over without a second
    completion record. A completed state stays as it is.
    """
    if state.status == "completed":
        return Advance(state=state, completed=())
    done = set(already_completed)
    goal = state.goal
    completions: list[Completion] = []
    while goal.target <= progress:
        if goal.slug not in done:
            completions.append(
                Completion(
                    goal=goal,
                    completed_at=now,
                    days_to_complete=days_between(state.started_at, now),
                    amount=progress,
                )
            )
        following = track.after(goal)
        if following is None:
            return Advance(
                state=GoalState(goal=goal, status="completed", started_at=_since(state, goal, now)),
                completed=tuple(completions),
            )
        goal = following
    return Advance(
        state=GoalState(goal=goal, status="active", started_at=_since(state, goal, now)),
        completed=tuple(completions),
    )


def _since(previous: GoalState, goal: Goal, now: dt.datetime) -> dt.datetime:
    return previous.started_at if goal == previous.goal else now


@dataclass(frozen=True)
class ApprovalOutcome:
    metrics: Metrics
    advance: Advance


def approve_submission(
    track: Track,
    state: GoalState,
    metrics: Metrics,
    amount: Decimal,
    now: dt.datetime,
    already_completed: Iterable[str] = (),
) -> ApprovalOutcome:
    """Apply an approved revenue submission: update the metric, then advance."""
    updated = apply_approved_amount(track.metric, metrics, amount)
    advance = advance_goal(track, state, progress_of(track.metric, updated), now, already_completed)
    return ApprovalOutcome(metrics=updated, advance=advance)


def assign_goal(
    track: Track,
    goal: Goal,
    metrics: Metrics,
    now: dt.datetime,
    already_completed: Iterable[str] = (),
) -> Advance:
    """Make `goal` the goal in effect (an approved goal request).

    The student's metrics are kept across goals and tracks, so a goal whose
    target is already reached is completed at once and the student advances,
    exactly as after an approved submission.
    """
    start = GoalState(goal=goal, status="active", started_at=now)
    return advance_goal(track, start, progress_of(track.metric, metrics), now, already_completed)


def pseudonym(number: int) -> str:
    """'Member A' for 1, ... 'Member Z' for 26, 'Member AA' for 27 (bijective base 26)."""
    if number < 1:
        raise ValueError("pseudonym numbers start at 1")
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"Member {letters}"
