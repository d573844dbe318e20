"""What approving a review does to the student: the writes and events of a decision.

Called by `service.approve_review` inside its unit of work, with the student
row locked. The decisions themselves (which goal, what completes, the new
metrics) are `rules`; this module applies them through `store` and records
the events they cause, in the order they happened.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import asyncpg
from community_shared.unit_of_work import UnitOfWork

from community_goals import events as ev
from community_goals import rules, store, views
from community_goals.catalog import Catalog


def record(
    uow: UnitOfWork, subject: str, payload: object, actor: uuid.UUID, student: uuid.UUID
) -> None:
    """Record an event about a student (their events share one aggregate, in order)."""
    uow.record(subject, payload, actor_id=actor, aggregate=ev.student_aggregate(student))


async def apply_goal_request(
    uow: UnitOfWork,
    catalog: Catalog,
    student: asyncpg.Record,
    review: asyncpg.Record,
    reviewer: uuid.UUID,
    now: dt.datetime,
) -> None:
    """The requested goal becomes the student's goal (and is advanced past if reached)."""
    goal = catalog.by_id(review["goal_id"])
    track = catalog.track(goal.track)
    metrics = rules.Metrics(student["total_revenue_earned"], student["current_mrr"])
    done = await _completed_slugs(uow.conn, catalog, student["id"])
    advance = rules.assign_goal(track, goal, metrics, now, done)
    await store.update_student_goal(
        uow.conn,
        student["id"],
        goal_id=catalog.id_of(advance.state.goal),
        goal_status=advance.state.status,
        goal_started_at=advance.state.started_at,
        total_revenue_earned=metrics.total_revenue_earned,
        current_mrr=metrics.current_mrr,
        last_verified_amount=student["last_verified_amount"],
    )
    assigned = views.goal_assigned(student, goal, review_id=review["id"], reviewed_by=reviewer)
    record(uow, ev.GOAL_ASSIGNED, assigned, reviewer, student["id"])
    await _record_completions(uow, catalog, student, advance, goal, reviewer)


async def apply_submission(
    uow: UnitOfWork,
    catalog: Catalog,
    student: asyncpg.Record,
    review: asyncpg.Record,
    reviewer: uuid.UUID,
    now: dt.datetime,
) -> None:
    """Add the approved amount to the metric of its track, then advance."""
    student_id: uuid.UUID = student["id"]
    amount: Decimal = review["amount"]
    submitted_for = catalog.by_id(review["goal_id"])
    track = catalog.track(submitted_for.track)
    metrics = rules.Metrics(student["total_revenue_earned"], student["current_mrr"])
    current = (
        catalog.by_id(student["current_goal_id"])
        if student["current_goal_id"] is not None
        else None
    )
    advance: rules.Advance | None = None
    if current is not None and current.track == track.slug:
        outcome = rules.approve_submission(
            track,
            rules.GoalState(
                goal=current,
                status=student["goal_status"],
                started_at=student["goal_started_at"],
            ),
            metrics,
            amount,
            now,
            await _completed_slugs(uow.conn, catalog, student_id),
        )
        metrics, advance = outcome.metrics, outcome.advance
    else:  # the student changed tracks meanwhile: the revenue still counts
        metrics = rules.apply_approved_amount(track.metric, metrics, amount)
    await store.update_student_goal(
        uow.conn,
        student_id,
        goal_id=catalog.id_of(advance.state.goal) if advance else student["current_goal_id"],
        goal_status=advance.state.status if advance else student["goal_status"],
        goal_started_at=advance.state.started_at if advance else student["goal_started_at"],
        total_revenue_earned=metrics.total_revenue_earned,
        current_mrr=metrics.current_mrr,
        last_verified_amount=amount,
    )
    approved = ev.SubmissionApproved(
        review_id=review["id"],
        student_id=student_id,
        student_name=student["name"],
        track=track.slug,
        goal_slug=submitted_for.slug,
        amount=views.money(amount),
        total_revenue_earned=views.money(metrics.total_revenue_earned),
        current_mrr=views.money(metrics.current_mrr),
        reviewed_by=reviewer,
        reviewed_at=now,
    )
    record(uow, ev.SUBMISSION_APPROVED, approved, reviewer, student_id)
    if advance is not None and current is not None:
        await _record_completions(uow, catalog, student, advance, current, reviewer)


async def _record_completions(
    uow: UnitOfWork,
    catalog: Catalog,
    student: asyncpg.Record,
    advance: rules.Advance,
    started_on: rules.Goal,
    actor: uuid.UUID,
) -> None:
    """Store and announce each completed goal, then the goal advanced to."""
    student_id: uuid.UUID = student["id"]
    for completion in advance.completed:
        await store.insert_completed(
            uow.conn,
            student_id,
            catalog.id_of(completion.goal),
            completed_at=completion.completed_at,
            days_to_complete=completion.days_to_complete,
            amount=completion.amount,
        )
        completed = views.goal_completed(student, completion)
        record(uow, ev.GOAL_COMPLETED, completed, actor, student_id)
    if advance.state.goal != started_on:
        assigned = views.goal_assigned(
            student, advance.state.goal, review_id=None, reviewed_by=None
        )
        record(uow, ev.GOAL_ASSIGNED, assigned, actor, student_id)


async def _completed_slugs(
    conn: asyncpg.Connection, catalog: Catalog, student_id: uuid.UUID
) -> frozenset[str]:
    rows = await store.fetch_completed(conn, student_id)
    return frozenset(catalog.by_id(r["goal_id"]).slug for r in rows)
