"""HTTP controllers of the posts service: parse, authorize, call the use case.

Each route states who may call it and the errors it answers (`answers`): its
guard refuses guests (401) and non-members or non-moderators (403) before the
body is even read, so a caller without the right learns nothing from
validation errors. Bodies and query enums are typed (msgspec), so a wrong type
or an unknown value is a 400 before any use case runs.
"""

from __future__ import annotations

from typing import Annotated

from community_shared.web import (
    ANYONE,
    MEMBERS,
    MODERATORS,
    SIGNED_IN,
    Caller,
    Idempotency,
    PageQuery,
    PathId,
    answers,
)
from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from community_posts.rules import MAX_QUERY_CHARS, FeedFilter, ReportStatus
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

Posts = NamedDependency[PostsService]
FeedFilterParam = Annotated[
    FeedFilter,
    QueryParameter(description="all | instructors (instructors' and admins' posts) | mine"),
]
SearchParam = Annotated[
    str | None,
    QueryParameter(
        description=f"full-text search, at most {MAX_QUERY_CHARS} characters once trimmed"
    ),
]
ReportStatusParam = Annotated[ReportStatus, QueryParameter(description="open | resolved")]


class PostsController(Controller):
    path = "/posts"
    tags = ["posts"]

    @post("/", status_code=201, **answers(MEMBERS, 422, 429))
    async def create_post(
        self,
        identity: Caller,
        posts: Posts,
        idempotency: Idempotency,
        data: JSONBody[NewPost],
    ) -> Post:
        """Publish a post (members); content is trimmed, 1..5000 characters."""
        return await posts.create_post(identity, data.content, data.visibility, idempotency)

    @get("/", **answers(ANYONE))
    async def list_posts(
        self,
        identity: Caller,
        posts: Posts,
        filter: FeedFilterParam = "all",
        q: SearchParam = None,
        *,
        page: PageQuery,
    ) -> PostPage:
        """The feed: pinned first, then newest. Guests see public posts only."""
        return await posts.list_posts(identity, page, feed_filter=filter, q=q)

    @get("/{post_id:uuid}", **answers(ANYONE, 404))
    async def get_post(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> PostWithReplies:
        """A post with its replies (flat, oldest first)."""
        return await posts.get_post(identity, post_id)

    @patch("/{post_id:uuid}", **answers(MEMBERS, 404))
    async def edit_post(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
        data: JSONBody[PostEdit],
    ) -> Post:
        """Edit one's own post."""
        return await posts.edit_post(identity, post_id, data.content)

    @delete("/{post_id:uuid}", status_code=204, **answers(SIGNED_IN, 403, 404))
    async def delete_post(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> None:
        """Delete a post (its author, an instructor or an admin)."""
        await posts.delete_post(identity, post_id)

    @put("/{post_id:uuid}/like", **answers(MEMBERS, 404, 429))
    async def like(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> LikeState:
        """Like a post (idempotent)."""
        return await posts.like(identity, post_id)

    @delete("/{post_id:uuid}/like", status_code=200, **answers(MEMBERS, 404))
    async def unlike(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> LikeState:
        """Withdraw a like (idempotent)."""
        return await posts.unlike(identity, post_id)

    @post("/{post_id:uuid}/replies", status_code=201, **answers(MEMBERS, 404, 429, 422))
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

    @patch("/{post_id:uuid}/replies/{reply_id:uuid}", **answers(MEMBERS, 404))
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

    @delete(
        "/{post_id:uuid}/replies/{reply_id:uuid}",
        status_code=204,
        **answers(SIGNED_IN, 403, 404),
    )
    async def delete_reply(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
        reply_id: PathId,
    ) -> None:
        """Delete a reply (its author, an instructor or an admin)."""
        await posts.delete_reply(identity, post_id, reply_id)

    @put("/{post_id:uuid}/pin", **answers(MODERATORS, 404))
    async def pin(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> Post:
        """Pin a post to the top of the feed (instructors, admins)."""
        return await posts.set_pinned(identity, post_id, pinned=True)

    @delete("/{post_id:uuid}/pin", status_code=200, **answers(MODERATORS, 404))
    async def unpin(
        self,
        identity: Caller,
        posts: Posts,
        post_id: PathId,
    ) -> Post:
        """Unpin a post (instructors, admins)."""
        return await posts.set_pinned(identity, post_id, pinned=False)

    @post("/{post_id:uuid}/reports", status_code=201, **answers(MEMBERS, 404, 409, 422))
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

    @get("/", **answers(MODERATORS))
    async def list_reports(
        self,
        identity: Caller,
        posts: Posts,
        status: ReportStatusParam = "open",
        *,
        page: PageQuery,
    ) -> ReportPage:
        """The moderation queue: open reports oldest first, or resolved ones newest first."""
        return await posts.list_reports(identity, page, status=status)

    @post("/{report_id:uuid}/resolve", status_code=200, **answers(MODERATORS, 404, 409))
    async def resolve(
        self,
        identity: Caller,
        posts: Posts,
        report_id: PathId,
        data: JSONBody[Resolution],
    ) -> Report:
        """Dismiss a report, or remove the reported post."""
        return await posts.resolve_report(identity, report_id, data.action)
