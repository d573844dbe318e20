"""HTTP controllers of the goals service (SPEC §5): authorize, parse, call the service.

Role checks are guards, so they run before the request body is read: a student
calling an instructor route gets 403 (and a guest 401) whatever the body holds.
"""

from __future__ import annotations

import uuid
from typing import Literal

from community_shared.auth import Identity
from community_shared.idempotency import IdempotencyKey
from community_shared.pagination import Page, parse_limit
from community_shared.web import (
    IDEMPOTENT_RESPONSES,
    moderators_only,
    require_moderator,
    require_user,
    students_only,
)
from litestar import Controller, get, post, put
from litestar.exceptions import PermissionDeniedException

from community_goals.schemas import (
    GoalRequestIn,
    ProfileOut,
    RejectIn,
    ReviewOut,
    ReviewStatus,
    StoryIn,
    StoryOut,
    StoryPublicOut,
    StudentDetailOut,
    SubmissionIn,
    SubmissionOut,
    TracksOut,
)
from community_goals.service import GoalsService


class GoalsController(Controller):
    path = "/goals"
    tags = ["goals"]

    @get("/tracks", summary="Tracks and their goals")
    async def tracks(self, identity: Identity, goals: GoalsService) -> TracksOut:
        # Anyone may read; `identity` is resolved so that a bad token is still a 401.
        del identity
        return await goals.list_tracks()

    # ------------------------------------------------------------------- the student

    @get("/me", guards=[students_only], summary="The caller's goal profile")
    async def my_profile(self, identity: Identity, goals: GoalsService) -> ProfileOut:
        return await goals.my_profile(identity)

    @put("/me/goal", guards=[students_only], status_code=200, summary="Request a goal")
    async def request_goal(
        self, identity: Identity, goals: GoalsService, data: GoalRequestIn
    ) -> ProfileOut:
        return await goals.request_goal(identity, data.goal_slug)

    @post(
        "/me/submissions",
        guards=[students_only],
        summary="Submit revenue proof",
        responses=IDEMPOTENT_RESPONSES,
    )
    async def submit_revenue(
        self,
        identity: Identity,
        goals: GoalsService,
        idempotency: IdempotencyKey | None,
        data: SubmissionIn,
    ) -> SubmissionOut:
        return await goals.submit_revenue(identity, data, idempotency)

    @get("/me/submissions", guards=[students_only], summary="The caller's submissions")
    async def my_submissions(
        self,
        identity: Identity,
        goals: GoalsService,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[SubmissionOut]:
        return await goals.my_submissions(identity, cursor=cursor, limit=parse_limit(limit))

    # ------------------------------------------------------------------- instructors

    @get("/reviews", guards=[moderators_only], summary="The review queue, oldest first")
    async def list_reviews(
        self,
        goals: GoalsService,
        status: ReviewStatus = "pending",
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[ReviewOut]:
        return await goals.list_reviews(status=status, cursor=cursor, limit=parse_limit(limit))

    @post(
        "/reviews/{review_id:uuid}/approve",
        guards=[moderators_only],
        status_code=200,
        summary="Approve a goal request or a revenue submission",
    )
    async def approve_review(
        self, identity: Identity, goals: GoalsService, review_id: uuid.UUID
    ) -> ReviewOut:
        return await goals.approve_review(review_id, require_moderator(identity))

    @post(
        "/reviews/{review_id:uuid}/reject",
        guards=[moderators_only],
        status_code=200,
        summary="Reject a goal request or a revenue submission",
    )
    async def reject_review(
        self, identity: Identity, goals: GoalsService, review_id: uuid.UUID, data: RejectIn
    ) -> ReviewOut:
        return await goals.reject_review(review_id, require_moderator(identity), data.reason)

    @get("/students/{user_id:uuid}", guards=[moderators_only], summary="A student's profile")
    async def student_detail(self, goals: GoalsService, user_id: uuid.UUID) -> StudentDetailOut:
        return await goals.student_detail(user_id)

    # ------------------------------------------------------------------- stories

    @post(
        "/stories",
        guards=[students_only],
        summary="Submit a success story",
        responses=IDEMPOTENT_RESPONSES,
    )
    async def create_story(
        self,
        identity: Identity,
        goals: GoalsService,
        idempotency: IdempotencyKey | None,
        data: StoryIn,
    ) -> StoryOut:
        return await goals.create_story(identity, data, idempotency)

    @get("/stories", summary="Published success stories, newest first")
    async def published_stories(
        self,
        identity: Identity,
        goals: GoalsService,
        status: Literal["published", "pending"] = "published",
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[StoryPublicOut] | Page[StoryOut]:
        page_size = parse_limit(limit)
        if status == "pending":  # the verification queue, for instructors and admins
            require_user(identity)
            if not identity.is_moderator:
                raise PermissionDeniedException(detail="instructors and admins only")
            return await goals.pending_stories(cursor=cursor, limit=page_size)
        return await goals.published_stories(cursor=cursor, limit=page_size)

    @post(
        "/stories/{story_id:uuid}/publish",
        guards=[moderators_only],
        status_code=200,
        summary="Verify and publish a story",
    )
    async def publish_story(
        self, identity: Identity, goals: GoalsService, story_id: uuid.UUID
    ) -> StoryOut:
        return await goals.publish_story(story_id, require_moderator(identity))
