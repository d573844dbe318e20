"""The events the goals service publishes (the `data` of each envelope).

Consumers (the gateway, the leaderboard) rely on these field names. Money is
a string with two decimals, times are RFC 3339 UTC, ids UUID strings. Every
event of a student's goals and reviews uses the aggregate `student:<id>`, so a
student's events are published in the order they were committed.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

SOURCE = "goals"

GOAL_REQUESTED = "goals.goal.requested"
GOAL_ASSIGNED = "goals.goal.assigned"
GOAL_REJECTED = "goals.goal.rejected"
GOAL_COMPLETED = "goals.goal.completed"
SUBMISSION_CREATED = "goals.submission.created"
SUBMISSION_APPROVED = "goals.submission.approved"
SUBMISSION_REJECTED = "goals.submission.rejected"
STORY_CREATED = "goals.story.created"
STORY_PUBLISHED = "goals.story.published"

RPC_PROFILE = "rpc.goals.profile"


class GoalRequested(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    goal_name: str
    created_at: dt.datetime


class GoalAssigned(msgspec.Struct, frozen=True, kw_only=True):
    """A goal became the student's goal: by an approved request (`review_id` set)
    or by advancing after a completion (`review_id` and `reviewed_by` null)."""

    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    goal_name: str
    target: str
    review_id: uuid.UUID | None
    reviewed_by: uuid.UUID | None


class GoalRejected(msgspec.Struct, frozen=True, kw_only=True):
    """A goal request was rejected; the student's goal is unchanged."""

    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    goal_slug: str
    reason: str
    reviewed_by: uuid.UUID


class GoalCompleted(msgspec.Struct, frozen=True, kw_only=True):
    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    goal_name: str
    target: str
    amount: str
    days_to_complete: int
    completed_at: dt.datetime


class SubmissionCreated(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    amount: str
    proof_url: str
    note: str | None
    created_at: dt.datetime


class SubmissionApproved(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    track: str
    goal_slug: str
    amount: str
    total_revenue_earned: str
    current_mrr: str
    reviewed_by: uuid.UUID
    reviewed_at: dt.datetime


class SubmissionRejected(msgspec.Struct, frozen=True, kw_only=True):
    review_id: uuid.UUID
    student_id: uuid.UUID
    student_name: str
    amount: str
    reason: str
    reviewed_by: uuid.UUID
    reviewed_at: dt.datetime


class StoryCreated(msgspec.Struct, frozen=True, kw_only=True):
    """`anonymous` tells consumers not to show the author with the story."""

    story_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    created_at: dt.datetime
    anonymous: bool


class StoryPublished(msgspec.Struct, frozen=True, kw_only=True):
    """`anonymous` tells consumers not to show the author with the story."""

    story_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    published_at: dt.datetime
    anonymous: bool


class ProfileRequest(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID


class ProfileReply(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    track: str | None
    goal_slug: str | None
    goal_name: str | None
    total_revenue_earned: str
    current_mrr: str


class RpcError(msgspec.Struct, frozen=True, kw_only=True):
    error: str


CATALOGUE: dict[str, type[msgspec.Struct]] = {
    GOAL_REQUESTED: GoalRequested,
    GOAL_ASSIGNED: GoalAssigned,
    GOAL_REJECTED: GoalRejected,
    GOAL_COMPLETED: GoalCompleted,
    SUBMISSION_CREATED: SubmissionCreated,
    SUBMISSION_APPROVED: SubmissionApproved,
    SUBMISSION_REJECTED: SubmissionRejected,
    STORY_CREATED: StoryCreated,
    STORY_PUBLISHED: StoryPublished,
}
"""Every subject the goals service publishes, with its payload (the events catalogue)."""


def student_aggregate(student_id: uuid.UUID) -> str:
    return f"student:{student_id}"


def story_aggregate(story_id: uuid.UUID) -> str:
    return f"story:{story_id}"
