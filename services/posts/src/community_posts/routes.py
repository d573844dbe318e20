"""HTTP controllers of the posts service: parse, authorize, call the use case.

Guards refuse guests (401) and non-members or non-moderators (403) before the
body is even read, so a caller without the right learns nothing from
validation errors. Bodies and query enums are typed (msgspec), so a wrong type
or an unknown value is a 400 before any use case runs.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from community_shared.auth import Identity, InvalidToken, identity_from_authorization
from community_shared.idempotency import IdempotencyKey
from community_shared.web import (
    IDEMPOTENT_RESPONSES,
    require_member,
    require_moderator,
    require_user,
    runtime_of,
)
from litestar import Controller, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody, QueryParameter

from community_posts.rules import FeedFilter, ReportStatus
from community_posts.schemas import (
    LikeState,
    NewPost,
    NewReply,
    NewReport,
    Post,
    PostEdit,
    PostPage,
    PostWithReplies,
    Reply,
    ReplyEdit,
    Report,
    ReportPage,
    Resolution,
)
from community_posts.service import PostsService


def _identity(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    secret = runtime_of(connection.app.state).settings.jwt_secret
    try:
        return identity_from_authorization(connection.headers.get("authorization"), secret)
    except InvalidToken as exc:
        raise NotAuthorizedException(detail=f"invalid token: {exc}") from exc


def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 401 for guests and bad tokens."""
    require_user(_identity(connection))


def members(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 401 for guests, 403 for students without an active membership."""
    require_member(_identity(connection))


def moderators(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: 401 for guests, 403 unless instructor or admin."""
    require_moderator(_identity(connection))


Caller = NamedDependency[Identity]
Posts = NamedDependency[PostsService]
Idempotency = NamedDependency[IdempotencyKey | None]
PathId = FromPath[uuid.UUID]
FeedFilterParam = Annotated[
    FeedFilter,
    QueryParameter(description="all | instructors (instructors' and admins' posts) | mine"),
]
SearchParam = Annotated[str | None, QueryParameter(description="full-text search")]
ReportStatusParam = Annotated[ReportStatus, QueryParameter(description="open | resolved")]
LimitParam = Annotated[int | None, QueryParameter(description="page size, 1..100 (default 20)")]
CursorParam = Annotated[str | None, QueryParameter(description="next_cursor of a previous page")]


class PostsController(Controller):
    path = "/posts"
    tags = ["posts"]

    @post("/", guards=[members], status_code=201, responses=IDEMPOTENT_RESPONSES)
    async def create_post(
        self,
        identity: Caller,
        posts: Posts,
        idempotency: Idempotency,
        data: JSONBody[NewPost],
    ) -> Post:
        """Publish a post (members); content is trimmed, 1..5000 characters."""
        return await posts.create_post(identity, data.content, data.visibility, idempotency)

    @get("/")
    async def list_posts(
        self,
        identity: Caller,
        posts: Posts,
        filter: FeedFilterParam = "all",
        q: SearchParam = None,
        cursor: CursorParam = None,
        limit: LimitParam = None,
    ) -> PostPage:
        """The feed: pinned first, then newest. Guests see public posts only."""
        return await posts.list_posts(identity, feed_filter=filter, q=q, cursor=cursor, limit=limit)

    @get("/{post_id:uuid}")
    async def get_post(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> PostWithReplies:
        """A post with its replies (flat, oldest first)."""
        return await posts.get_post(identity, post_id)

    @patch("/{post_id:uuid}", guards=[members])
    async def edit_post(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
        data: JSONBody[PostEdit],
    ) -> Post:
        """Edit one's own post."""
        return await posts.edit_post(identity, post_id, data.content)

    @delete("/{post_id:uuid}", guards=[signed_in], status_code=204)
    async def delete_post(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> None:
        """Delete a post (its author, an instructor or an admin)."""
        await posts.delete_post(identity, post_id)

    @put("/{post_id:uuid}/like", guards=[members])
    async def like(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> LikeState:
        """Like a post (idempotent)."""
        return await posts.like(identity, post_id)

    @delete("/{post_id:uuid}/like", guards=[members], status_code=200)
    async def unlike(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> LikeState:
        """Withdraw a like (idempotent)."""
        return await posts.unlike(identity, post_id)

    @post(
        "/{post_id:uuid}/replies",
        guards=[members],
        status_code=201,
        responses=IDEMPOTENT_RESPONSES,
    )
    async def create_reply(
        self,
        identity: Caller,
        posts: Posts,
        idempotency: Idempotency,
        post_id: PathId,
        data: JSONBody[NewReply],
    ) -> Reply:
        """Reply to a post, or to one of its replies with `reply_to_id`."""
        return await posts.create_reply(
            identity, post_id, data.content, data.reply_to_id, idempotency
        )

    @patch("/{post_id:uuid}/replies/{reply_id:uuid}", guards=[members])
    async def edit_reply(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
        reply_id: PathId,
        data: JSONBody[ReplyEdit],
    ) -> Reply:
        """Edit one's own reply."""
        return await posts.edit_reply(identity, post_id, reply_id, data.content)

    @delete("/{post_id:uuid}/replies/{reply_id:uuid}", guards=[signed_in], status_code=204)
    async def delete_reply(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
        reply_id: PathId,
    ) -> None:
        """Delete a reply (its author, an instructor or an admin)."""
        await posts.delete_reply(identity, post_id, reply_id)

    @put("/{post_id:uuid}/pin", guards=[moderators])
    async def pin(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> Post:
        """Pin a post to the top of the feed (instructors, admins)."""
        return await posts.set_pinned(identity, post_id, pinned=True)

    @delete("/{post_id:uuid}/pin", guards=[moderators], status_code=200)
    async def unpin(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> Post:
        """Unpin a post (instructors, admins)."""
        return await posts.set_pinned(identity, post_id, pinned=False)

    @post(
        "/{post_id:uuid}/reports",
        guards=[members],
        status_code=201,
        responses=IDEMPOTENT_RESPONSES,
    )
    async def report(
        self,
        identity: Caller,
        posts: Posts,
        idempotency: Idempotency,
        post_id: PathId,
        data: JSONBody[NewReport],
    ) -> Report:
        """Report a post to the moderators; one open report per user and post."""
        return await posts.report_post(identity, post_id, data.reason, data.details, idempotency)


class ReportsController(Controller):
    path = "/reports"
    tags = ["moderation"]
    guards = [moderators]

    @get("/")
    async def list_reports(
        self,
        identity: Caller,
        posts: Posts,
        status: ReportStatusParam = "open",
        cursor: CursorParam = None,
        limit: LimitParam = None,
    ) -> ReportPage:
        """The moderation queue: open reports oldest first, or resolved ones newest first."""
        return await posts.list_reports(identity, status=status, cursor=cursor, limit=limit)

    @post("/{report_id:uuid}/resolve", status_code=200)
    async def resolve(
        self,
        identity: Caller,
        posts: Posts,
        report_id: PathId,
        data: JSONBody[Resolution],
    ) -> Report:
        """Dismiss a report, or remove the reported post."""
        return await posts.resolve_report(identity, report_id, data.action)
