"""HTTP controllers of the goals service (SPEC §5): authorize, parse, call the service.

Each route states who may call it and the errors it answers (`answers`). Role
checks are guards, so they run before the request body is read: a student
calling an instructor route gets 403 (and a guest 401) whatever the body holds.
"""

from __future__ import annotations

import uuid
from typing import Literal

from community_shared.auth import Identity
from community_shared.idempotency import IdempotencyKey
from community_shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, parse_limit
from community_shared.web import (
    ANYONE,
    MODERATORS,
    STUDENTS,
    answers,
    require_moderator,
    require_user,
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

    @get("/tracks", summary="Tracks and their goals", **answers(ANYONE))
    async def tracks(self, identity: Identity, goals: GoalsService) -> TracksOut:
        # Anyone may read; `identity` is resolved so that a bad token is still a 401.
        del identity
        return await goals.list_tracks()

    # ------------------------------------------------------------------- the student

    @get("/me", summary="The caller's goal profile", **answers(STUDENTS))
    async def my_profile(self, identity: Identity, goals: GoalsService) -> ProfileOut:
        return await goals.my_profile(identity)

    @put("/me/goal", status_code=200, summary="Request a goal", **answers(STUDENTS, 409))
    async def request_goal(
        self, identity: Identity, goals: GoalsService, data: GoalRequestIn
    ) -> ProfileOut:
        return await goals.request_goal(identity, data.goal_slug)

    @post("/me/submissions", summary="Submit revenue proof", **answers(STUDENTS, 409, 422))
    async def submit_revenue(
        self,
        identity: Identity,
        goals: GoalsService,
        idempotency: IdempotencyKey | None,
        data: SubmissionIn,
    ) -> SubmissionOut:
        return await goals.submit_revenue(identity, data, idempotency)

    @get("/me/submissions", summary="The caller's submissions", **answers(STUDENTS))
    async def my_submissions(
        self,
        identity: Identity,
        goals: GoalsService,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[SubmissionOut]:
        return await goals.my_submissions(identity, cursor=cursor, limit=parse_limit(limit))

    # ------------------------------------------------------------------- instructors

    @get("/reviews", summary="The review queue, oldest first", **answers(MODERATORS))
    async def list_reviews(
        self,
        goals: GoalsService,
        status: ReviewStatus = "pending",
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ReviewOut]:
        return await goals.list_reviews(status=status, cursor=cursor, limit=parse_limit(limit))

    @post(
        "/reviews/{review_id:uuid}/approve",
        status_code=200,
        summary="Approve a goal request or a revenue submission",
        **answers(MODERATORS, 404, 409),
    )
    async def approve_review(
        self, identity: Identity, goals: GoalsService, review_id: uuid.UUID
    ) -> ReviewOut:
        return await goals.approve_review(review_id, require_moderator(identity))

    @post(
        "/reviews/{review_id:uuid}/reject",
        status_code=200,
        summary="Reject a goal request or a revenue submission",
        **answers(MODERATORS, 404, 409),
    )
    async def reject_review(
        self, identity: Identity, goals: GoalsService, review_id: uuid.UUID, data: RejectIn
    ) -> ReviewOut:
        return await goals.reject_review(review_id, require_moderator(identity), data.reason)

    @get("/students/{user_id:uuid}", summary="A student's profile", **answers(MODERATORS, 404))
    async def student_detail(self, goals: GoalsService, user_id: uuid.UUID) -> StudentDetailOut:
        return await goals.student_detail(user_id)

    # ------------------------------------------------------------------- stories

    @post("/stories", summary="Submit a success story", **answers(STUDENTS, 422))
    async def create_story(
        self,
        identity: Identity,
        goals: GoalsService,
        idempotency: IdempotencyKey | None,
        data: StoryIn,
    ) -> StoryOut:
        return await goals.create_story(identity, data, idempotency)

    @get(
        "/stories",
        summary="Published success stories, newest first",
        # `status=pending` is the verification queue: instructors and admins only.
        **answers(ANYONE, 403),
    )
    async def published_stories(
        self,
        identity: Identity,
        goals: GoalsService,
        status: Literal["published", "pending"] = "published",
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
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
        status_code=200,
        summary="Verify and publish a story",
        **answers(MODERATORS, 404, 409),
    )
    async def publish_story(
        self, identity: Identity, goals: GoalsService, story_id: uuid.UUID
    ) -> StoryOut:
        return await goals.publish_story(story_id, require_moderator(identity))
