"""The posts service's use cases: one method per thing a user can do.

Each write is one unit of work (`community_shared.unit_of_work`): the change
and the events announcing it commit together, so a change is never published
without being committed nor committed without being published. Counters
(`likes_count`, `replies_count`) move in the same transaction as the row they
count, and only when that row really changed, which keeps them exact under
any concurrency. Refusals are domain errors (`community_shared.errors`); who
may do what is asked of `rules` and `community_shared.access`; every SQL
statement is in `store`, every row → answer in `views`.

Rate limits are checked after the request has been fully validated (content,
visibility, reply target, post existence), inside the unit of work just before
the write, and the slot is given back if it then fails: a bad request or a
write that did not happen never counts. A like that changes nothing (the user
already likes the post) does not count either, and unlikes are not limited
(see docs/posts.md).

Reads render authors with their tagline from `TaglineDirectory`, after the
database connection has been released (a slow goals service never holds a
connection). Creates look up the taglines they show before their transaction
opens: the answer to a create is stored in the transaction of the write (for
its `Idempotency-Key`, `community_shared.idempotency`), so it must be complete
before the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import msgspec
from community_shared.access import require_member, require_moderator, require_user
from community_shared.auth import Identity
from community_shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from community_shared.idempotency import IdempotencyKey
from community_shared.pagination import PageRequest, TimeKey, decode_cursor, keyset_page
from community_shared.ratelimit import Limit
from community_shared.unit_of_work import Database, UnitOfWork

from community_posts import events as ev
from community_posts import rules, store, views
from community_posts.schemas import (
    LikeState,
    Post,
    PostPage,
    PostWithReplies,
    Reply,
    Report,
    ReportPage,
)
from community_posts.taglines import TaglineDirectory

POSTS_PER_HOUR = Limit("posts", 10, 3600)
REPLIES_PER_HOUR = Limit("replies", 20, 3600)
LIKES_PER_HOUR = Limit("likes", 100, 3600)

_POST_HIDDEN = "post not found"
_REPLY_HIDDEN = "reply not found"


def _post_aggregate(post_id: uuid.UUID) -> str:
    # Every event about a post (likes, replies, pins included) shares the
    # post's aggregate, so subscribers see them in the order they happened.
    return f"post:{post_id}"


async def _visible_post(
    conn: asyncpg.Connection, viewer: Identity, post_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record:
    """The live post if the viewer may see it; 404 otherwise (existence does not leak)."""
    row = await store.get_live_post(conn, post_id, lock=lock)
    if row is None or not rules.may_see(
        viewer, visibility=row["visibility"], author_id=row["author_id"]
    ):
        raise NotFound(_POST_HIDDEN)
    return row


@dataclass
class PostsService:
    db: Database
    taglines: TaglineDirectory

    def _record(
        self, uow: UnitOfWork, type_: str, data: object, actor: uuid.UUID, post_id: uuid.UUID
    ) -> None:
        uow.record(type_, data, actor_id=actor, aggregate=_post_aggregate(post_id))

    async def _goals(self, rows: Iterable[asyncpg.Record]) -> views.Taglines:
        return await self.taglines.lookup((row["author_id"], row["author_role"]) for row in rows)

    async def _present(self, row: asyncpg.Record, liked: bool) -> Post:
        return views.post(row, await self._goals([row]), liked)

    # ------------------------------------------------------------------ posts

    async def create_post(
        self,
        viewer: Identity,
        content: str,
        visibility: rules.Visibility,
        idempotency: IdempotencyKey | None = None,
    ) -> Post:
        user_id = require_member(viewer)
        text = rules.clean_content(content)
        goals = await self.taglines.lookup([(user_id, viewer.role)])
        async with self.db.unit_of_work() as uow:
            await uow.claim(idempotency)
            await uow.take(POSTS_PER_HOUR, str(user_id))
            row = await store.insert_post(
                uow.conn,
                post_id=uuid.uuid4(),
                author=store.Author(user_id, viewer.name, viewer.role),
                content=text,
                visibility=visibility,
            )
            self._record(uow, ev.POST_CREATED, views.post_data(row, goals), user_id, row["id"])
            post = views.post(row, goals, liked=False)
            await uow.remember(idempotency, post)
        return post

    async def list_posts(
        self,
        viewer: Identity,
        page: PageRequest,
        *,
        feed_filter: str,
        q: str | None,
    ) -> PostPage:
        page_size = page.limit
        query = rules.clean_query(q)
        after = decode_cursor(page.cursor, store.FeedKey)
        author_id = require_user(viewer) if feed_filter == "mine" else None
        async with self.db.connection() as conn:
            rows = await store.list_posts(
                conn,
                audience=rules.feed_audience(viewer),
                viewer_id=viewer.user_id,
                author_id=author_id,
                instructors_only=feed_filter == "instructors",
                query=query,
                after=after,
                limit=page_size + 1,
            )
            kept, next_cursor = keyset_page(
                rows, page_size, lambda r: store.FeedKey(r["is_pinned"], r["created_at"], r["id"])
            )
            liked = (
                await store.liked_post_ids(conn, viewer.user_id, [r["id"] for r in kept])
                if viewer.user_id is not None
                else set()
            )
        goals = await self._goals(kept)
        return PostPage(
            items=[views.post(row, goals, row["id"] in liked) for row in kept],
            next_cursor=next_cursor,
        )

    async def get_post(self, viewer: Identity, post_id: uuid.UUID) -> PostWithReplies:
        async with self.db.connection() as conn:
            row = await _visible_post(conn, viewer, post_id)
            replies = await store.list_replies(conn, post_id)
            liked = viewer.user_id is not None and bool(
                await store.liked_post_ids(conn, viewer.user_id, [post_id])
            )
        goals = await self._goals([row, *replies])
        return PostWithReplies(
            **msgspec.structs.asdict(views.post(row, goals, liked)),
            replies=[views.reply(reply, goals) for reply in replies],
        )

    async def edit_post(self, viewer: Identity, post_id: uuid.UUID, content: str) -> Post:
        user_id = require_member(viewer)
        text = rules.clean_content(content)
        goals = await self.taglines.lookup([(user_id, viewer.role)])
        async with self.db.unit_of_work() as uow:
            row = await store.update_post_content(uow.conn, post_id, user_id, text)
            if row is None:
                await _visible_post(uow.conn, viewer, post_id)  # 404 if hidden or gone
                raise Forbidden("only the author may edit a post")
            self._record(uow, ev.POST_UPDATED, views.post_data(row, goals), user_id, post_id)
            liked = bool(await store.liked_post_ids(uow.conn, user_id, [post_id]))
        return await self._present(row, liked)

    async def delete_post(self, viewer: Identity, post_id: uuid.UUID) -> None:
        user_id = require_user(viewer)
        async with self.db.unit_of_work() as uow:
            row = await _visible_post(uow.conn, viewer, post_id, lock=True)
            if not rules.may_remove(viewer, author_id=row["author_id"]):
                raise Forbidden("only the author, an instructor or an admin may delete a post")
            reason = rules.deletion_reason(viewer, author_id=row["author_id"])
            await store.soft_delete_post(uow.conn, post_id, deleted_by=user_id, reason=reason)
            deleted = ev.PostDeletedData(
                id=post_id,
                author_id=row["author_id"],
                visibility=row["visibility"],
                removed_by=user_id,
                reason=reason,
            )
            self._record(uow, ev.POST_DELETED, deleted, user_id, post_id)

    async def set_pinned(self, viewer: Identity, post_id: uuid.UUID, *, pinned: bool) -> Post:
        """Pin or unpin; doing what is already done answers the post and emits nothing."""
        user_id = require_moderator(viewer)
        goals = await self._author_tagline(post_id)
        async with self.db.unit_of_work() as uow:
            row = await store.set_pinned(uow.conn, post_id, pinned=pinned, by=user_id)
            if row is not None:
                event = ev.POST_PINNED if pinned else ev.POST_UNPINNED
                self._record(uow, event, views.post_data(row, goals), user_id, post_id)
            else:
                row = await _visible_post(uow.conn, viewer, post_id)
            liked = bool(await store.liked_post_ids(uow.conn, user_id, [post_id]))
        return await self._present(row, liked)

    # ------------------------------------------------------------------ likes

    async def like(self, viewer: Identity, post_id: uuid.UUID) -> LikeState:
        user_id = require_member(viewer)
        async with self.db.unit_of_work() as uow:
            post = await _visible_post(uow.conn, viewer, post_id)
            if not await store.insert_like(uow.conn, post_id, user_id):
                return LikeState(liked=True, likes_count=await store.likes_count(uow.conn, post_id))
            await uow.take(LIKES_PER_HOUR, str(user_id))
            count = await store.add_to_likes_count(uow.conn, post_id, +1)
            data = views.like_data(post, user_id=user_id, user_name=viewer.name, likes_count=count)
            self._record(uow, ev.POST_LIKED, data, user_id, post_id)
        return LikeState(liked=True, likes_count=count)

    async def unlike(self, viewer: Identity, post_id: uuid.UUID) -> LikeState:
        user_id = require_member(viewer)
        async with self.db.unit_of_work() as uow:
            post = await _visible_post(uow.conn, viewer, post_id)
            if not await store.delete_like(uow.conn, post_id, user_id):
                return LikeState(
                    liked=False, likes_count=await store.likes_count(uow.conn, post_id)
                )
            count = await store.add_to_likes_count(uow.conn, post_id, -1)
            data = views.like_data(post, user_id=user_id, user_name=viewer.name, likes_count=count)
            self._record(uow, ev.POST_UNLIKED, data, user_id, post_id)
        return LikeState(liked=False, likes_count=count)

    # ------------------------------------------------------------------ replies

    async def create_reply(
        self,
        viewer: Identity,
        post_id: uuid.UUID,
        content: str,
        reply_to_id: uuid.UUID | None,
        idempotency: IdempotencyKey | None = None,
    ) -> Reply:
        user_id = require_member(viewer)
        text = rules.clean_content(content)
        goals = await self.taglines.lookup([(user_id, viewer.role)])
        async with self.db.unit_of_work() as uow:
            await uow.claim(idempotency)
            post = await _visible_post(uow.conn, viewer, post_id)
            if reply_to_id is not None and (
                await store.get_live_reply(uow.conn, post_id, reply_to_id) is None
            ):
                raise InvalidInput("reply_to_id must be a reply of the same post")
            await uow.take(REPLIES_PER_HOUR, str(user_id))
            reply = await store.insert_reply(
                uow.conn,
                reply_id=uuid.uuid4(),
                post_id=post_id,
                reply_to_id=reply_to_id,
                author=store.Author(user_id, viewer.name, viewer.role),
                content=text,
            )
            count = await store.add_to_replies_count(uow.conn, post_id, +1)
            if count is None:  # deleted while we were writing
                raise NotFound(_POST_HIDDEN)
            data = await self._reply_data(uow.conn, reply, post, count, goals)
            self._record(uow, ev.REPLY_CREATED, data, user_id, post_id)
            answer = views.reply(reply, goals)
            await uow.remember(idempotency, answer)
        return answer

    @staticmethod
    async def _reply_data(
        conn: asyncpg.Connection,
        reply: asyncpg.Record,
        post: asyncpg.Record,
        count: int,
        goals: views.Taglines,
    ) -> ev.ReplyData:
        to_id = reply["reply_to_id"]
        return views.reply_data(
            reply,
            post,
            goals,
            replies_count=count,
            reply_to_author_id=None if to_id is None else await store.reply_author(conn, to_id),
        )

    @staticmethod
    async def _reply_in_visible_post(
        conn: asyncpg.Connection, viewer: Identity, post_id: uuid.UUID, reply_id: uuid.UUID
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        post = await _visible_post(conn, viewer, post_id, lock=True)
        reply = await store.get_live_reply(conn, post_id, reply_id)
        if reply is None:
            raise NotFound(_REPLY_HIDDEN)
        return post, reply

    async def edit_reply(
        self, viewer: Identity, post_id: uuid.UUID, reply_id: uuid.UUID, content: str
    ) -> Reply:
        user_id = require_member(viewer)
        text = rules.clean_content(content)
        goals = await self.taglines.lookup([(user_id, viewer.role)])
        async with self.db.unit_of_work() as uow:
            post, reply = await self._reply_in_visible_post(uow.conn, viewer, post_id, reply_id)
            if not rules.may_edit(viewer, author_id=reply["author_id"]):
                raise Forbidden("only the author may edit a reply")
            reply = await store.update_reply_content(uow.conn, reply_id, text)
            data = await self._reply_data(uow.conn, reply, post, post["replies_count"], goals)
            self._record(uow, ev.REPLY_UPDATED, data, user_id, post_id)
        return views.reply(reply, goals)

    async def delete_reply(self, viewer: Identity, post_id: uuid.UUID, reply_id: uuid.UUID) -> None:
        user_id = require_user(viewer)
        async with self.db.unit_of_work() as uow:
            post, reply = await self._reply_in_visible_post(uow.conn, viewer, post_id, reply_id)
            if not rules.may_remove(viewer, author_id=reply["author_id"]):
                raise Forbidden("only the author, an instructor or an admin may delete a reply")
            if not await store.soft_delete_reply(uow.conn, reply_id, user_id):
                raise NotFound(_REPLY_HIDDEN)
            count = await store.add_to_replies_count(uow.conn, post_id, -1)
            deleted = ev.ReplyDeletedData(
                id=reply_id,
                post_id=post_id,
                visibility=post["visibility"],
                replies_count=count if count is not None else 0,
            )
            self._record(uow, ev.REPLY_DELETED, deleted, user_id, post_id)

    # ------------------------------------------------------------------ reports

    async def _reports(self, rows: Iterable[asyncpg.Record]) -> list[Report]:
        rows = list(rows)
        goals = await self.taglines.lookup(
            (row["post_author_id"], row["post_author_role"]) for row in rows
        )
        return [views.report(row, goals) for row in rows]

    async def _author_tagline(self, post_id: uuid.UUID) -> views.Taglines:
        """The tagline of a post's author, looked up before a transaction opens.

        Never refuses: whether the caller may see the post is decided inside
        the transaction (a retry must still replay once the post is gone).
        """
        async with self.db.connection() as conn:
            post = await store.get_live_post(conn, post_id)
        if post is None:
            return {}
        return await self.taglines.lookup([(post["author_id"], post["author_role"])])

    async def report_post(
        self,
        viewer: Identity,
        post_id: uuid.UUID,
        reason: rules.ReportReason,
        details: str | None,
        idempotency: IdempotencyKey | None = None,
    ) -> Report:
        user_id = require_member(viewer)
        text = rules.clean_details(details)
        report_id = uuid.uuid4()
        goals = await self._author_tagline(post_id)
        async with self.db.unit_of_work() as uow:
            await uow.claim(idempotency)
            await _visible_post(uow.conn, viewer, post_id)
            opened = await store.insert_report(
                uow.conn,
                report_id=report_id,
                post_id=post_id,
                reporter_id=user_id,
                reporter_name=viewer.name,
                reason=reason,
                details=text,
            )
            if not opened:
                raise Conflict("you already have an open report on this post")
            created = ev.ReportCreatedData(
                id=report_id, post_id=post_id, reporter_id=user_id, reason=reason, details=text
            )
            uow.record(
                ev.REPORT_CREATED, created, actor_id=user_id, aggregate=f"report:{report_id}"
            )
            row = await store.get_report(uow.conn, report_id)
            assert row is not None
            report = views.report(row, goals)
            await uow.remember(idempotency, report)
        return report

    async def list_reports(self, viewer: Identity, page: PageRequest, *, status: str) -> ReportPage:
        require_moderator(viewer)
        page_size = page.limit
        after = decode_cursor(page.cursor, TimeKey)
        async with self.db.connection() as conn:
            rows = await store.list_reports(conn, status=status, after=after, limit=page_size + 1)
        at = "created_at" if status == "open" else "resolved_at"
        kept, next_cursor = keyset_page(rows, page_size, lambda r: TimeKey(r[at], r["id"]))
        return ReportPage(items=await self._reports(kept), next_cursor=next_cursor)

    async def resolve_report(
        self, viewer: Identity, report_id: uuid.UUID, action: rules.ResolveAction
    ) -> Report:
        """Dismiss a report, or remove its post (which resolves every open report of it)."""
        user_id = require_moderator(viewer)
        async with self.db.unit_of_work() as uow:
            report = await store.get_report(uow.conn, report_id, lock=True)
            if report is None:
                raise NotFound("report not found")
            if report["status"] != "open":
                raise Conflict("report already resolved")
            post_id: uuid.UUID = report["post_id"]
            resolved = [report_id]
            await store.resolve_report(uow.conn, report_id, action=action, resolved_by=user_id)
            if action == "remove":
                removed = await store.soft_delete_post(
                    uow.conn, post_id, deleted_by=user_id, reason="report"
                )
                if removed is not None:
                    deleted = ev.PostDeletedData(
                        id=post_id,
                        author_id=removed["author_id"],
                        visibility=removed["visibility"],
                        removed_by=user_id,
                        reason="report",
                    )
                    self._record(uow, ev.POST_DELETED, deleted, user_id, post_id)
                resolved += await store.resolve_open_reports_of_post(
                    uow.conn, post_id, action=action, resolved_by=user_id
                )
            for resolved_id in resolved:
                uow.record(
                    ev.REPORT_RESOLVED,
                    ev.ReportResolvedData(
                        id=resolved_id, post_id=post_id, action=action, resolved_by=user_id
                    ),
                    actor_id=user_id,
                    aggregate=f"report:{resolved_id}",
                )
            row = await store.get_report(uow.conn, report_id)
        assert row is not None
        return (await self._reports([row]))[0]
