"""HTTP controllers of the goals service (SPEC §5): authorize, parse, call the service.

Each route states who may call it and the errors it answers (`answers`). Role
checks are guards, so they run before the request body is read: a student
calling an instructor route gets 403 (and a guest 401) whatever the body holds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from community_shared.pagination import Page
from community_shared.web import (
    ANYONE,
    MODERATORS,
    STUDENTS,
    Caller,
    Idempotency,
    PageQuery,
    PathId,
    answers,
)
from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

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

ReviewFilter = Annotated[ReviewStatus, Parameter(description="which reviews: pending by default")]
StoryFilter = Annotated[
    Literal["published", "pending"],
    Parameter(description="published stories, or the verification queue (instructors only)"),
]

Goals = NamedDependency[GoalsService]


class GoalsController(Controller):
    path = "/goals"
    tags = ["goals"]

    @get("/tracks", summary="Tracks and their goals", **answers(ANYONE))
    async def tracks(self, identity: Caller, goals: Goals) -> TracksOut:
        # Anyone may read; `identity` is resolved so that a bad token is still a 401.
        del identity
        return await goals.list_tracks()

    # ------------------------------------------------------------------- the student

    @get("/me", summary="The caller's goal profile", **answers(STUDENTS))
    async def my_profile(self, identity: Caller, goals: Goals) -> ProfileOut:
        return await goals.my_profile(identity)

    @put("/me/goal", status_code=200, summary="Request a goal", **answers(STUDENTS, 409))
    async def request_goal(
        self, identity: Caller, goals: Goals, data: JSONBody[GoalRequestIn]
    ) -> ProfileOut:
        return await goals.request_goal(identity, data.goal_slug)

    @post("/me/submissions", summary="Submit revenue proof", **answers(STUDENTS, 409, 422))
    async def submit_revenue(
        self,
        identity: Caller,
        goals: Goals,
        idempotency: Idempotency,
        data: JSONBody[SubmissionIn],
    ) -> SubmissionOut:
        return await goals.submit_revenue(identity, data, idempotency)

    @get("/me/submissions", summary="The caller's submissions", **answers(STUDENTS))
    async def my_submissions(
        self, identity: Caller, goals: Goals, page: PageQuery
    ) -> Page[SubmissionOut]:
        return await goals.my_submissions(identity, page)

    # ------------------------------------------------------------------- instructors

    @get("/reviews", summary="The review queue, oldest first", **answers(MODERATORS))
    async def list_reviews(
        self,
        identity: Caller,
        goals: Goals,
        *,
        status: ReviewFilter = "pending",
        page: PageQuery,
    ) -> Page[ReviewOut]:
        return await goals.list_reviews(identity, page, status=status)

    @post(
        "/reviews/{review_id:uuid}/approve",
        status_code=200,
        summary="Approve a goal request or a revenue submission",
        **answers(MODERATORS, 404, 409),
    )
    async def approve_review(self, identity: Caller, goals: Goals, review_id: PathId) -> ReviewOut:
        return await goals.approve_review(identity, review_id)

    @post(
        "/reviews/{review_id:uuid}/reject",
        status_code=200,
        summary="Reject a goal request or a revenue submission",
        **answers(MODERATORS, 404, 409),
    )
    async def reject_review(
        self, identity: Caller, goals: Goals, review_id: PathId, data: JSONBody[RejectIn]
    ) -> ReviewOut:
        return await goals.reject_review(identity, review_id, data.reason)

    @get("/students/{user_id:uuid}", summary="A student's profile", **answers(MODERATORS, 404))
    async def student_detail(
        self, identity: Caller, goals: Goals, user_id: PathId
    ) -> StudentDetailOut:
        return await goals.student_detail(identity, user_id)

    # ------------------------------------------------------------------- stories

    @post("/stories", summary="Submit a success story", **answers(STUDENTS, 422))
    async def create_story(
        self,
        identity: Caller,
        goals: Goals,
        idempotency: Idempotency,
        data: JSONBody[StoryIn],
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
        identity: Caller,
        goals: Goals,
        *,
        status: StoryFilter = "published",
        page: PageQuery,
    ) -> Page[StoryPublicOut] | Page[StoryOut]:
        return await goals.stories(identity, page, pending=status == "pending")

    @post(
        "/stories/{story_id:uuid}/publish",
        status_code=200,
        summary="Verify and publish a story",
        **answers(MODERATORS, 404, 409),
    )
    async def publish_story(self, identity: Caller, goals: Goals, story_id: PathId) -> StoryOut:
        return await goals.publish_story(identity, story_id)
