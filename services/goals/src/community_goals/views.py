"""Rows of the goals schema as the answers and event payloads built from them.

Pure: each function turns rows (and the seeded catalogue of tracks and
goals) into an API Struct (`schemas`) or an event payload (`events`). Money
leaves as a string with two decimals.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import cast

import asyncpg
from community_shared import rpc
from community_shared.money import format_money

from community_goals import events as ev
from community_goals import rules
from community_goals.catalog import Catalog
from community_goals.schemas import (
    CompletedGoalOut,
    CurrentGoalOut,
    GoalOut,
    GoalRequestOut,
    ProfileGoalStatus,
    ProfileOut,
    ProgressOut,
    ReviewOut,
    StoryOut,
    StoryPublicOut,
    StudentRef,
    SubmissionOut,
    TrackOut,
    TracksOut,
)


def money(amount: Decimal) -> str:
    text = format_money(amount)
    assert text is not None
    return text


def optional_money(amount: Decimal | None) -> str | None:
    return format_money(amount)


def tracks(catalog: Catalog) -> TracksOut:
    return TracksOut(
        items=[
            TrackOut(
                slug=t.slug,
                name=t.name,
                metric=t.metric,
                goals=[
                    GoalOut(slug=g.slug, name=g.name, target=money(g.target), position=g.position)
                    for g in t.goals
                ],
            )
            for t in catalog.tracks
        ]
    )


def profile(
    catalog: Catalog,
    row: asyncpg.Record,
    latest: Mapping[str, asyncpg.Record],
    completed: Sequence[asyncpg.Record],
) -> ProfileOut:
    """A student's goal profile: the student row, their latest review of each kind
    (`goal_request`, `revenue_submission`) and their completed goals."""
    request = latest.get("goal_request")
    submission = latest.get("revenue_submission")

    # A pending goal request is what the student is shown until it is decided;
    # a rejected one leaves the goal in effect as it was.
    goal: rules.Goal | None
    goal_status: ProfileGoalStatus
    if request is not None and request["status"] == "pending":
        goal, goal_status = catalog.by_id(request["goal_id"]), "pending_approval"
    elif row["current_goal_id"] is not None:
        goal, goal_status = catalog.by_id(row["current_goal_id"]), row["goal_status"]
    else:
        goal, goal_status = None, "none"

    metrics = rules.Metrics(row["total_revenue_earned"], row["current_mrr"])
    if goal is None:
        progress = ProgressOut(amount=money(rules.ZERO), target=None, percent=0.0)
    else:
        amount = rules.progress_of(catalog.track(goal.track).metric, metrics)
        progress = ProgressOut(
            amount=money(amount),
            target=money(goal.target),
            percent=float(rules.percent(amount, goal.target)),
        )
    return ProfileOut(
        user_id=row["id"],
        name=row["name"],
        track=goal.track if goal else None,
        current_goal=(
            CurrentGoalOut(slug=goal.slug, name=goal.name, target=money(goal.target))
            if goal
            else None
        ),
        goal_status=goal_status,
        progress=progress,
        total_revenue_earned=money(metrics.total_revenue_earned),
        current_mrr=money(metrics.current_mrr),
        completed_goals=[
            CompletedGoalOut(
                slug=catalog.by_id(c["goal_id"]).slug,
                name=catalog.by_id(c["goal_id"]).name,
                completed_at=c["completed_at"],
                days_to_complete=c["days_to_complete"],
                amount=money(c["amount"]),
            )
            for c in completed
        ],
        submission_state=submission["status"] if submission else "none",
        last_verified_amount=optional_money(row["last_verified_amount"]),
        rejection_reason=(
            submission["rejection_reason"]
            if submission and submission["status"] == "rejected"
            else None
        ),
        goal_request=(
            GoalRequestOut(
                id=request["id"],
                goal_slug=catalog.by_id(request["goal_id"]).slug,
                status=request["status"],
                created_at=request["created_at"],
                reviewed_at=request["reviewed_at"],
                rejection_reason=request["rejection_reason"],
            )
            if request
            else None
        ),
    )


def review(catalog: Catalog, row: asyncpg.Record) -> ReviewOut:
    goal = catalog.by_id(row["goal_id"])
    return ReviewOut(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        student=StudentRef(id=row["student_id"], name=row["student_name"]),
        track=goal.track,
        goal_slug=goal.slug,
        amount=optional_money(row["amount"]),
        proof_url=row["proof_url"],
        note=row["note"],
        created_at=row["created_at"],
        reviewed_by=row["reviewed_by"],
        reviewed_at=row["reviewed_at"],
        rejection_reason=row["rejection_reason"],
    )


def submission(catalog: Catalog, row: asyncpg.Record) -> SubmissionOut:
    return SubmissionOut(
        id=row["id"],
        goal_slug=catalog.by_id(row["goal_id"]).slug,
        amount=money(row["amount"]),
        proof_url=row["proof_url"],
        note=row["note"],
        status=row["status"],
        created_at=row["created_at"],
        reviewed_at=row["reviewed_at"],
        rejection_reason=row["rejection_reason"],
    )


def _public_author(row: asyncpg.Record) -> tuple[str, uuid.UUID | None]:
    """What the public sees of a story's author: a pseudonym and no id when anonymous."""
    if row["anonymous"]:
        return rules.pseudonym(cast(int, row["pseudonym_no"])), None
    return row["author_name"], row["author_id"]


def story_public(row: asyncpg.Record) -> StoryPublicOut:
    author_name, author_id = _public_author(row)
    return StoryPublicOut(
        id=row["id"],
        title=row["title"],
        story=row["story"],
        earnings_amount=optional_money(row["earnings_amount"]),
        author_name=author_name,
        author_id=author_id,
        published_at=row["published_at"],
    )


def story(row: asyncpg.Record) -> StoryOut:
    author_name, author_id = _public_author(row)
    return StoryOut(
        id=row["id"],
        title=row["title"],
        story=row["story"],
        earnings_amount=optional_money(row["earnings_amount"]),
        anonymous=row["anonymous"],
        status=row["status"],
        author_name=author_name,
        author_id=author_id,
        author=StudentRef(id=row["author_id"], name=row["author_name"]),
        created_at=row["created_at"],
        published_at=row["published_at"],
    )


def rpc_profile(row: asyncpg.Record) -> rpc.ProfileReply:
    return rpc.ProfileReply(
        user_id=row["id"],
        track=row["track"],
        goal_slug=row["goal_slug"],
        goal_name=row["goal_name"],
        total_revenue_earned=money(row["total_revenue_earned"]),
        current_mrr=money(row["current_mrr"]),
    )


# --------------------------------------------------------------------------- event payloads


def goal_assigned(
    student: asyncpg.Record,
    goal: rules.Goal,
    *,
    review_id: uuid.UUID | None,
    reviewed_by: uuid.UUID | None,
) -> ev.GoalAssigned:
    return ev.GoalAssigned(
        student_id=student["id"],
        student_name=student["name"],
        track=goal.track,
        goal_slug=goal.slug,
        goal_name=goal.name,
        target=money(goal.target),
        review_id=review_id,
        reviewed_by=reviewed_by,
    )


def goal_completed(student: asyncpg.Record, completion: rules.Completion) -> ev.GoalCompleted:
    return ev.GoalCompleted(
        student_id=student["id"],
        student_name=student["name"],
        track=completion.goal.track,
        goal_slug=completion.goal.slug,
        goal_name=completion.goal.name,
        target=money(completion.goal.target),
        amount=money(completion.amount),
        days_to_complete=completion.days_to_complete,
        completed_at=completion.completed_at,
    )
