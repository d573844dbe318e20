"""The posts service's use cases: one method per thing a user can do.

Each write is one database transaction that makes the change and writes the
events announcing it to the outbox, so a change is never published without
being committed nor committed without being published. Counters
(`likes_count`, `replies_count`) move in the same transaction as the row they
count, and only when that row really changed, which keeps them exact under
any concurrency.

Rate limits are checked after the request has been fully validated (content,
visibility, reply target, post existence), inside the transaction just before
the write, and the slot is given back if the transaction then fails: a bad
request or a write that did not happen never counts. A like that changes
nothing (the user already likes the post) does not count either, and unlikes
are not limited (see docs/posts.md).

Reads render authors with their tagline from `TaglineDirectory`, after the
database connection has been released (a slow goals service never holds a
connection). Creates look up the taglines they show before their transaction
opens: the answer to a create is stored in the transaction of the write (for
its `Idempotency-Key`, `community_shared.idempotency`), so it must be complete
before the commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from community_shared.auth import Identity
from community_shared.events import make_event
from community_shared.idempotency import IdempotencyKey, claim, remember
from community_shared.outbox import enqueue
from community_shared.pagination import decode_cursor, encode_cursor, parse_limit
from community_shared.ratelimit import Limit, SlidingWindowLimiter
from community_shared.web import require_member, require_moderator, require_user
from litestar.exceptions import (
    ClientException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)

from community_posts import events as ev
from community_posts import rules, store
from community_posts.schemas import (
    Author,
    LikeState,
    Post,
    PostPage,
    PostWithReplies,
    Reply,
    Report,
    ReportedPost,
    Reporter,
    ReportPage,
)
from community_posts.taglines import TaglineDirectory

POSTS_PER_HOUR = Limit("posts", 10, 3600)
REPLIES_PER_HOUR = Limit("replies", 20, 3600)
LIKES_PER_HOUR = Limit("likes", 100, 3600)

_POST_HIDDEN = "post not found"
_REPLY_HIDDEN = "reply not found"


def _invalid(exc: rules.InvalidInput) -> ValidationException:
    return ValidationException(detail=str(exc))


def _content(raw: str, field: str = "content") -> str:
    try:
        return rules.clean_content(raw, field)
    except rules.InvalidInput as exc:
        raise _invalid(exc) from exc


def _aware(moment: dt.datetime) -> None:
    """Cursor times must carry their zone (they always do when we made them)."""
    if moment.tzinfo is None:
        raise ValidationException(detail="malformed cursor")


def _author_ref(
    row: asyncpg.Record, goals: dict[uuid.UUID, str | None], prefix: str = "author"
) -> ev.AuthorRef:
    author_id = row[f"{prefix}_id"]
    return ev.AuthorRef(
        id=author_id,
        name=row[f"{prefix}_name"],
        role=row[f"{prefix}_role"],
        goal=goals.get(author_id),
    )


def _post_data(row: asyncpg.Record, goals: dict[uuid.UUID, str | None]) -> ev.PostData:
    """A post event's payload: the post as `GET /posts` shows it, the author's tagline included."""
    return ev.PostData(
        id=row["id"],
        author=_author_ref(row, goals),
        content=row["content"],
        visibility=row["visibility"],
        is_pinned=row["is_pinned"],
        likes_count=row["likes_count"],
        replies_count=row["replies_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        edited=row["edited"],
    )


def _aggregate(post_id: uuid.UUID) -> str:
    # Every event about a post (likes, replies, pins included) shares the
    # post's aggregate, so subscribers see them in the order they happened.
    return f"post:{post_id}"


@dataclass
class PostsService:
    pool: asyncpg.Pool
    limiter: SlidingWindowLimiter
    taglines: TaglineDirectory

    # ------------------------------------------------------------------ helpers

    async def _publish(
        self, conn: asyncpg.Connection, type_: str, data: Any, actor: uuid.UUID, aggregate: str
    ) -> None:
        envelope = make_event(type=type_, data=data, source=ev.SOURCE, actor_id=actor)
        await enqueue(conn, store.SCHEMA, envelope, aggregate=aggregate)

    async def _goals(self, rows: Iterable[asyncpg.Record]) -> dict[uuid.UUID, str | None]:
        return await self.taglines.lookup((row["author_id"], row["author_role"]) for row in rows)

    @staticmethod
    def _author(row: asyncpg.Record, goals: dict[uuid.UUID, str | None]) -> Author:
        return Author(
            id=row["author_id"],
            name=row["author_name"],
            role=row["author_role"],
            goal=goals.get(row["author_id"]),
        )

    def _post(self, row: asyncpg.Record, goals: dict[uuid.UUID, str | None], liked: bool) -> Post:
        return Post(
            id=row["id"],
            author=self._author(row, goals),
            content=row["content"],
            visibility=row["visibility"],
            is_pinned=row["is_pinned"],
            likes_count=row["likes_count"],
            replies_count=row["replies_count"],
            liked_by_me=liked,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            edited=row["edited"],
        )

    def _reply(self, row: asyncpg.Record, goals: dict[uuid.UUID, str | None]) -> Reply:
        return Reply(
            id=row["id"],
            post_id=row["post_id"],
            reply_to_id=row["reply_to_id"],
            author=self._author(row, goals),
            content=row["content"],
            created_at=row["created_at"],
            edited=row["edited"],
        )

    async def _present(self, row: asyncpg.Record, liked: bool) -> Post:
        return self._post(row, await self._goals([row]), liked)

    @staticmethod
    async def _visible_post(
        conn: asyncpg.Connection, viewer: Identity, post_id: uuid.UUID, *, lock: bool = False
    ) -> asyncpg.Record:
        """The live post if the viewer may see it; 404 otherwise (existence does not leak)."""
        row = await store.get_live_post(conn, post_id, lock=lock)
        if row is None or not rules.may_see(
            viewer, visibility=row["visibility"], author_id=row["author_id"]
        ):
            raise NotFoundException(detail=_POST_HIDDEN)
        return row

    # ------------------------------------------------------------------ posts

    async def create_post(
        self,
        viewer: Identity,
        content: str,
        visibility: rules.Visibility,
        idempotency: IdempotencyKey | None = None,
    ) -> Post:
        user_id = require_member(viewer)
        text = _content(content)
        goals = await self.taglines.lookup([(user_id, viewer.role)])
        async with (
            self.limiter.reservations() as slots,
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            await claim(conn, store.SCHEMA, idempotency)
            await slots.take(POSTS_PER_HOUR, str(user_id))
            row = await store.insert_post(
                conn,
                post_id=uuid.uuid4(),
                author_id=user_id,
                author_name=viewer.name,
                author_role=viewer.role,
                content=text,
                visibility=visibility,
            )
            await self._publish(
                conn, ev.POST_CREATED, _post_data(row, goals), user_id, _aggregate(row["id"])
            )
            post = self._post(row, goals, liked=False)
            await remember(conn, store.SCHEMA, idempotency, post)
        return post

    async def list_posts(
        self,
        viewer: Identity,
        *,
        feed_filter: str,
        q: str | None,
        cursor: str | None,
        limit: int | None,
    ) -> PostPage:
        page_size = parse_limit(limit)
        try:
            query = rules.clean_query(q)
        except rules.InvalidInput as exc:
            raise _invalid(exc) from exc
        after = decode_cursor(cursor, store.FeedKey)
        if after is not None:
            _aware(after.created_at)
        author_id = require_user(viewer) if feed_filter == "mine" else None
        if viewer.is_member:
            audience = "members"
        elif viewer.user_id is not None:
            audience = "public+own"
        else:
            audience = "public"
        async with self.pool.acquire() as conn:
            rows = await store.list_posts(
                conn,
                audience=audience,
                viewer_id=viewer.user_id,
                author_id=author_id,
                instructors_only=feed_filter == "instructors",
                query=query,
                after=after,
                limit=page_size + 1,
            )
            page = rows[:page_size]
            liked = (
                await store.liked_post_ids(conn, viewer.user_id, [r["id"] for r in page])
                if viewer.user_id is not None
                else set()
            )
        goals = await self._goals(page)
        next_cursor = None
        if len(rows) > page_size:
            last = page[-1]
            next_cursor = encode_cursor(
                store.FeedKey(last["is_pinned"], last["created_at"], last["id"])
            )
        return PostPage(
            items=[self._post(row, goals, row["id"] in liked) for row in page],
            next_cursor=next_cursor,
        )

    async def get_post(self, viewer: Identity, post_id: uuid.UUID) -> PostWithReplies:
        async with self.pool.acquire() as conn:
            row = await self._visible_post(conn, viewer, post_id)
            replies = await store.list_replies(conn, post_id)
            liked = viewer.user_id is not None and bool(
                await store.liked_post_ids(conn, viewer.user_id, [post_id])
            )
        goals = await self._goals([row, *replies])
        post = self._post(row, goals, liked)
        return PostWithReplies(
            **msgspec.structs.asdict(post),
            replies=[self._reply(reply, goals) for reply in replies],
        )

    async def edit_post(self, viewer: Identity, post_id: uuid.UUID, content: str) -> Post:
        user_id = require_member(viewer)
        text = _content(content)
        goals = await self.taglines.lookup([(user_id, viewer.role)])
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await store.update_post_content(conn, post_id, user_id, text)
                if row is None:
                    await self._visible_post(conn, viewer, post_id)  # 404 if hidden or gone
                    raise PermissionDeniedException(detail="only the author may edit a post")
                await self._publish(
                    conn, ev.POST_UPDATED, _post_data(row, goals), user_id, _aggregate(post_id)
                )
            liked = bool(await store.liked_post_ids(conn, user_id, [post_id]))
        return await self._present(row, liked)

    async def delete_post(self, viewer: Identity, post_id: uuid.UUID) -> None:
        user_id = require_user(viewer)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._visible_post(conn, viewer, post_id, lock=True)
            if not rules.may_remove(viewer, author_id=row["author_id"]):
                raise PermissionDeniedException(
                    detail="only the author, an instructor or an admin may delete a post"
                )
            reason = rules.deletion_reason(viewer, author_id=row["author_id"])
            await store.soft_delete_post(conn, post_id, deleted_by=user_id, reason=reason)
            await self._publish(
                conn,
                ev.POST_DELETED,
                ev.PostDeletedData(
                    id=post_id,
                    author_id=row["author_id"],
                    visibility=row["visibility"],
                    removed_by=user_id,
                    reason=reason,
                ),
                user_id,
                _aggregate(post_id),
            )

    async def set_pinned(self, viewer: Identity, post_id: uuid.UUID, *, pinned: bool) -> Post:
        """Pin or unpin; doing what is already done answers the post and emits nothing."""
        user_id = require_moderator(viewer)
        goals = await self._author_tagline(post_id)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await store.set_pinned(conn, post_id, pinned=pinned, by=user_id)
                if row is not None:
                    await self._publish(
                        conn,
                        ev.POST_PINNED if pinned else ev.POST_UNPINNED,
                        _post_data(row, goals),
                        user_id,
                        _aggregate(post_id),
                    )
                else:
                    row = await self._visible_post(conn, viewer, post_id)
            liked = bool(await store.liked_post_ids(conn, user_id, [post_id]))
        return await self._present(row, liked)

    # ------------------------------------------------------------------ likes

    async def like(self, viewer: Identity, post_id: uuid.UUID) -> LikeState:
        user_id = require_member(viewer)
        async with (
            self.limiter.reservations() as slots,
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            post = await self._visible_post(conn, viewer, post_id)
            if not await store.insert_like(conn, post_id, user_id):
                return LikeState(liked=True, likes_count=await store.likes_count(conn, post_id))
            await slots.take(LIKES_PER_HOUR, str(user_id))
            count = await store.add_to_likes_count(conn, post_id, +1)
            await self._publish(
                conn,
                ev.POST_LIKED,
                ev.LikeData(
                    post_id=post_id,
                    user_id=user_id,
                    user_name=viewer.name,
                    likes_count=count,
                    post_author_id=post["author_id"],
                    visibility=post["visibility"],
                ),
                user_id,
                _aggregate(post_id),
            )
        return LikeState(liked=True, likes_count=count)

    async def unlike(self, viewer: Identity, post_id: uuid.UUID) -> LikeState:
        user_id = require_member(viewer)
        async with self.pool.acquire() as conn, conn.transaction():
            post = await self._visible_post(conn, viewer, post_id)
            if not await store.delete_like(conn, post_id, user_id):
                return LikeState(liked=False, likes_count=await store.likes_count(conn, post_id))
            count = await store.add_to_likes_count(conn, post_id, -1)
            await self._publish(
                conn,
                ev.POST_UNLIKED,
                ev.LikeData(
                    post_id=post_id,
                    user_id=user_id,
                    user_name=viewer.name,
                    likes_count=count,
                    post_author_id=post["author_id"],
                    visibility=post["visibility"],
                ),
                user_id,
                _aggregate(post_id),
            )
        return LikeState(liked=False, likes_count=count)

    # ------------------------------------------------------------------ replies

    async def _reply_data(
        self,
        conn: asyncpg.Connection,
        reply: asyncpg.Record,
        post: asyncpg.Record,
        replies_count: int,
        goals: dict[uuid.UUID, str | None],
    ) -> ev.ReplyData:
        reply_to_author = (
            await store.reply_author(conn, reply["reply_to_id"])
            if reply["reply_to_id"] is not None
            else None
        )
        return ev.ReplyData(
            id=reply["id"],
            post_id=reply["post_id"],
            reply_to_id=reply["reply_to_id"],
            author=_author_ref(reply, goals),
            content=reply["content"],
            created_at=reply["created_at"],
            edited=reply["edited"],
            visibility=post["visibility"],
            post_author_id=post["author_id"],
            reply_to_author_id=reply_to_author,
            replies_count=replies_count,
        )

    async def create_reply(
        self,
        viewer: Identity,
        post_id: uuid.UUID,
        content: str,
        reply_to_id: uuid.UUID | None,
        idempotency: IdempotencyKey | None = None,
    ) -> Reply:
        user_id = require_member(viewer)
        text = _content(content)
        goals = await self.taglines.lookup([(user_id, viewer.role)])
        async with (
            self.limiter.reservations() as slots,
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            await claim(conn, store.SCHEMA, idempotency)
            post = await self._visible_post(conn, viewer, post_id)
            if reply_to_id is not None and (
                await store.get_live_reply(conn, post_id, reply_to_id) is None
            ):
                raise ValidationException(detail="reply_to_id must be a reply of the same post")
            await slots.take(REPLIES_PER_HOUR, str(user_id))
            reply = await store.insert_reply(
                conn,
                reply_id=uuid.uuid4(),
                post_id=post_id,
                reply_to_id=reply_to_id,
                author_id=user_id,
                author_name=viewer.name,
                author_role=viewer.role,
                content=text,
            )
            count = await store.add_to_replies_count(conn, post_id, +1)
            if count is None:  # deleted while we were writing
                raise NotFoundException(detail=_POST_HIDDEN)
            data = await self._reply_data(conn, reply, post, count, goals)
            await self._publish(conn, ev.REPLY_CREATED, data, user_id, _aggregate(post_id))
            answer = self._reply(reply, goals)
            await remember(conn, store.SCHEMA, idempotency, answer)
        return answer

    async def _reply_in_visible_post(
        self, conn: asyncpg.Connection, viewer: Identity, post_id: uuid.UUID, reply_id: uuid.UUID
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        post = await self._visible_post(conn, viewer, post_id, lock=True)
        reply = await store.get_live_reply(conn, post_id, reply_id)
        if reply is None:
            raise NotFoundException(detail=_REPLY_HIDDEN)
        return post, reply

    async def edit_reply(
        self, viewer: Identity, post_id: uuid.UUID, reply_id: uuid.UUID, content: str
    ) -> Reply:
        user_id = require_member(viewer)
        text = _content(content)
        goals = await self.taglines.lookup([(user_id, viewer.role)])
        async with self.pool.acquire() as conn, conn.transaction():
            post, reply = await self._reply_in_visible_post(conn, viewer, post_id, reply_id)
            if not rules.may_edit(viewer, author_id=reply["author_id"]):
                raise PermissionDeniedException(detail="only the author may edit a reply")
            reply = await store.update_reply_content(conn, reply_id, text)
            data = await self._reply_data(conn, reply, post, post["replies_count"], goals)
            await self._publish(conn, ev.REPLY_UPDATED, data, user_id, _aggregate(post_id))
        return self._reply(reply, goals)

    async def delete_reply(self, viewer: Identity, post_id: uuid.UUID, reply_id: uuid.UUID) -> None:
        user_id = require_user(viewer)
        async with self.pool.acquire() as conn, conn.transaction():
            post, reply = await self._reply_in_visible_post(conn, viewer, post_id, reply_id)
            if not rules.may_remove(viewer, author_id=reply["author_id"]):
                raise PermissionDeniedException(
                    detail="only the author, an instructor or an admin may delete a reply"
                )
            if not await store.soft_delete_reply(conn, reply_id, user_id):
                raise NotFoundException(detail=_REPLY_HIDDEN)
            count = await store.add_to_replies_count(conn, post_id, -1)
            await self._publish(
                conn,
                ev.REPLY_DELETED,
                ev.ReplyDeletedData(
                    id=reply_id,
                    post_id=post_id,
                    visibility=post["visibility"],
                    replies_count=count if count is not None else 0,
                ),
                user_id,
                _aggregate(post_id),
            )

    # ------------------------------------------------------------------ reports

    async def _reports(self, rows: Sequence[asyncpg.Record]) -> list[Report]:
        goals = await self.taglines.lookup(
            (row["post_author_id"], row["post_author_role"]) for row in rows
        )
        return [self._report(row, goals) for row in rows]

    def _report(self, row: asyncpg.Record, goals: dict[uuid.UUID, str | None]) -> Report:
        return Report(
            id=row["id"],
            post_id=row["post_id"],
            reporter=Reporter(id=row["reporter_id"], name=row["reporter_name"]),
            reason=row["reason"],
            details=row["details"],
            status=row["status"],
            action=row["action"],
            created_at=row["created_at"],
            resolved_at=row["resolved_at"],
            resolved_by=row["resolved_by"],
            post=ReportedPost(
                id=row["post_id"],
                author=self._author_of_report(row, goals),
                content=row["post_content"],
                visibility=row["post_visibility"],
                created_at=row["post_created_at"],
                deleted=row["post_deleted"],
            ),
        )

    async def _author_tagline(self, post_id: uuid.UUID) -> dict[uuid.UUID, str | None]:
        """The tagline of a post's author, looked up before a transaction opens.

        Never refuses: whether the caller may see the post is decided inside
        the transaction (a retry must still replay once the post is gone).
        """
        async with self.pool.acquire() as conn:
            post = await store.get_live_post(conn, post_id)
        if post is None:
            return {}
        return await self.taglines.lookup([(post["author_id"], post["author_role"])])

    @staticmethod
    def _author_of_report(row: asyncpg.Record, goals: dict[uuid.UUID, str | None]) -> Author:
        return Author(
            id=row["post_author_id"],
            name=row["post_author_name"],
            role=row["post_author_role"],
            goal=goals.get(row["post_author_id"]),
        )

    async def report_post(
        self,
        viewer: Identity,
        post_id: uuid.UUID,
        reason: rules.ReportReason,
        details: str | None,
        idempotency: IdempotencyKey | None = None,
    ) -> Report:
        user_id = require_member(viewer)
        try:
            text = rules.clean_details(details)
        except rules.InvalidInput as exc:
            raise _invalid(exc) from exc
        report_id = uuid.uuid4()
        goals = await self._author_tagline(post_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await claim(conn, store.SCHEMA, idempotency)
            await self._visible_post(conn, viewer, post_id)
            opened = await store.insert_report(
                conn,
                report_id=report_id,
                post_id=post_id,
                reporter_id=user_id,
                reporter_name=viewer.name,
                reason=reason,
                details=text,
            )
            if not opened:
                raise ClientException(
                    status_code=409, detail="you already have an open report on this post"
                )
            await self._publish(
                conn,
                ev.REPORT_CREATED,
                ev.ReportCreatedData(
                    id=report_id,
                    post_id=post_id,
                    reporter_id=user_id,
                    reason=reason,
                    details=text,
                ),
                user_id,
                f"report:{report_id}",
            )
            row = await store.get_report(conn, report_id)
            assert row is not None
            report = self._report(row, goals)
            await remember(conn, store.SCHEMA, idempotency, report)
        return report

    async def list_reports(
        self, viewer: Identity, *, status: str, cursor: str | None, limit: int | None
    ) -> ReportPage:
        require_moderator(viewer)
        page_size = parse_limit(limit)
        after = decode_cursor(cursor, store.ReportKey)
        if after is not None:
            _aware(after.at)
        async with self.pool.acquire() as conn:
            rows = await store.list_reports(conn, status=status, after=after, limit=page_size + 1)
        page = rows[:page_size]
        next_cursor = None
        if len(rows) > page_size:
            last = page[-1]
            key = last["created_at"] if status == "open" else last["resolved_at"]
            next_cursor = encode_cursor(store.ReportKey(key, last["id"]))
        return ReportPage(items=await self._reports(page), next_cursor=next_cursor)

    async def resolve_report(
        self, viewer: Identity, report_id: uuid.UUID, action: rules.ResolveAction
    ) -> Report:
        """Dismiss a report, or remove its post (which resolves every open report of it)."""
        user_id = require_moderator(viewer)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                report = await store.get_report(conn, report_id, lock=True)
                if report is None:
                    raise NotFoundException(detail="report not found")
                if report["status"] != "open":
                    raise ClientException(status_code=409, detail="report already resolved")
                post_id: uuid.UUID = report["post_id"]
                resolved = [report_id]
                await store.resolve_report(conn, report_id, action=action, resolved_by=user_id)
                if action == "remove":
                    removed = await store.soft_delete_post(
                        conn, post_id, deleted_by=user_id, reason="report"
                    )
                    if removed is not None:
                        await self._publish(
                            conn,
                            ev.POST_DELETED,
                            ev.PostDeletedData(
                                id=post_id,
                                author_id=removed["author_id"],
                                visibility=removed["visibility"],
                                removed_by=user_id,
                                reason="report",
                            ),
                            user_id,
                            _aggregate(post_id),
                        )
                    resolved += await store.resolve_open_reports_of_post(
                        conn, post_id, action=action, resolved_by=user_id
                    )
                for resolved_id in resolved:
                    await self._publish(
                        conn,
                        ev.REPORT_RESOLVED,
                        ev.ReportResolvedData(
                            id=resolved_id, post_id=post_id, action=action, resolved_by=user_id
                        ),
                        user_id,
                        f"report:{resolved_id}",
                    )
            row = await store.get_report(conn, report_id)
        assert row is not None
        return (await self._reports([row]))[0]
