"""Helpers of the leaderboard's integration tests: publishing events the way the
other services and the course platform do (envelope + `Nats-Msg-Id`), waiting
until they are applied, and reading the API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from community_shared.events import Envelope, encode_envelope, make_event
from community_shared.settings import Settings

from tests.conftest import User, eventually

T = TypeVar("T")


def app_of(client: Any) -> Any:
    """The Litestar app behind a service client (served over ASGI on the test's loop,
    or by litestar's test client in a thread of its own)."""
    app = getattr(client, "app", None)
    return app if app is not None else client._transport.app


def parts_of(client: Any) -> Any:
    """The leaderboard's running parts: `.service`, `.consumers`, `.chores`."""
    return app_of(client).state.leaderboard


async def in_app(client: Any, fn: Callable[[], Awaitable[T]]) -> T:
    """Run `fn` on the app's own event loop (the one its pools and connections
    belong to): the test's loop, or litestar's test client's thread."""
    portal = getattr(client, "blocking_portal", None)
    if portal is None:
        return await fn()
    return await asyncio.to_thread(portal.call, fn)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def days_ago(days: float) -> dt.datetime:
    return now() - dt.timedelta(days=days)


def post_created(
    author: User,
    post_id: uuid.UUID,
    at: dt.datetime,
    visibility: str = "public",
    role: str | None = None,
) -> dict[str, Any]:
    """The data of a `posts.post.created` event as the posts service publishes it."""
    stamp = at.isoformat()
    return {
        "id": str(post_id),
        "author": {"id": str(author.id), "name": author.name, "role": role or author.role},
        "content": "hello",
        "visibility": visibility,
        "is_pinned": False,
        "likes_count": 0,
        "replies_count": 0,
        "created_at": stamp,
        "updated_at": stamp,
        "edited": False,
    }


@dataclass
class Events:
    """Publishes event envelopes and waits for the leaderboard to apply them."""

    js: Any
    settings: Settings
    db: asyncpg.Pool
    sequences: dict[uuid.UUID, int] = field(default_factory=dict)
    """The `EVENTS` sequence of each envelope published."""

    async def publish(
        self,
        type_: str,
        data: dict[str, Any],
        *,
        occurred_at: dt.datetime | None = None,
        event_id: uuid.UUID | None = None,
        msg_id: str | None = None,
        actor_id: uuid.UUID | None = None,
    ) -> Envelope:
        envelope = make_event(
            type_,
            data,
            source=type_.split(".", 1)[0],
            actor_id=actor_id,
            event_id=event_id,
            occurred_at=occurred_at,
        )
        await self.publish_envelope(envelope, msg_id=msg_id)
        return envelope

    async def publish_envelope(self, envelope: Envelope, *, msg_id: str | None = None) -> None:
        ack = await self.js.publish(
            self.settings.subject(envelope.type),
            encode_envelope(envelope),
            headers={"Nats-Msg-Id": msg_id or str(envelope.id)},
        )
        self.sequences[envelope.id] = ack.seq

    async def caught_up(self, within: float = 15.0) -> None:
        """Wait until the leaderboard has applied everything already in the stream."""
        from tests.integration.leaderboard.conftest import caught_up

        await caught_up(self.js, self.settings, timeout=within)

    async def applied(self, *envelopes: Envelope, within: float = 5.0) -> None:
        """Wait until every envelope was applied (its effect committed, boards moved)."""
        ids = [e.id for e in envelopes]

        async def done() -> bool:
            count = await self.db.fetchval(
                "SELECT count(*) FROM leaderboard.applied_events WHERE id = ANY($1::uuid[])", ids
            )
            return bool(count == len(set(ids)))

        await eventually(done, timeout=within)

    async def send(self, type_: str, data: dict[str, Any], **kwargs: Any) -> Envelope:
        envelope = await self.publish(type_, data, **kwargs)
        await self.applied(envelope)
        return envelope

    # ----------------------------------------------------------- payload helpers

    async def post(
        self,
        author: User,
        *,
        visibility: str = "public",
        at: dt.datetime | None = None,
        post_id: uuid.UUID | None = None,
        role: str | None = None,
    ) -> Envelope:
        return await self.send(
            "posts.post.created",
            post_created(author, post_id or uuid.uuid4(), at or now(), visibility, role),
            occurred_at=at,
            actor_id=author.id,
        )

    async def like(
        self,
        user: User,
        post_id: uuid.UUID,
        post_author: uuid.UUID,
        *,
        unlike: bool = False,
        at: dt.datetime | None = None,
    ) -> Envelope:
        return await self.send(
            "posts.post.unliked" if unlike else "posts.post.liked",
            {
                "post_id": str(post_id),
                "user_id": str(user.id),
                "user_name": user.name,
                "likes_count": 1,
                "post_author_id": str(post_author),
                "visibility": "public",
            },
            occurred_at=at,
            actor_id=user.id,
        )

    async def video_event(self, user: User, watched: int = 60, session: int = 120) -> Envelope:
        """Publish a video watched without waiting for it to be applied."""
        return await self.publish(
            "learning.video.watched",
            {
                "user_id": str(user.id),
                "video_id": str(uuid.uuid4()),
                "watched_seconds": watched,
                "session_seconds": session,
            },
        )

    async def video(
        self, user: User, watched: int, session: int, *, at: dt.datetime | None = None
    ) -> Envelope:
        return await self.send(
            "learning.video.watched",
            {
                "user_id": str(user.id),
                "video_id": str(uuid.uuid4()),
                "watched_seconds": watched,
                "session_seconds": session,
            },
            occurred_at=at,
        )

    async def assigned(self, user: User, track: str, goal_slug: str = "first-1k") -> Envelope:
        return await self.send(
            "goals.goal.assigned",
            {
                "student_id": str(user.id),
                "student_name": user.name,
                "track": track,
                "goal_slug": goal_slug,
                "goal_name": goal_slug.replace("-", " ").title(),
                "target": "1000.00",
                "review_id": None,
                "reviewed_by": None,
            },
        )

    def approval(
        self, user: User, track: str, *, amount: str, total: str, mrr: str = "0.00"
    ) -> dict[str, Any]:
        return {
            "review_id": str(uuid.uuid4()),
            "student_id": str(user.id),
            "student_name": user.name,
            "track": track,
            "goal_slug": "first-1k",
            "amount": amount,
            "total_revenue_earned": total,
            "current_mrr": mrr,
            "reviewed_by": str(uuid.uuid4()),
            "reviewed_at": now().isoformat(),
        }

    async def approve(
        self,
        user: User,
        track: str,
        *,
        amount: str,
        total: str,
        mrr: str = "0.00",
        at: dt.datetime | None = None,
    ) -> Envelope:
        return await self.send(
            "goals.submission.approved",
            self.approval(user, track, amount=amount, total=total, mrr=mrr),
            occurred_at=at,
        )

    async def goal_completed(
        self, user: User, track: str, *, at: dt.datetime | None = None, slug: str = "first-1k"
    ) -> Envelope:
        return await self.send(
            "goals.goal.completed",
            {
                "student_id": str(user.id),
                "student_name": user.name,
                "track": track,
                "goal_slug": slug,
                "goal_name": slug.title(),
                "target": "1000.00",
                "amount": "1000.00",
                "days_to_complete": 3,
                "completed_at": (at or now()).isoformat(),
            },
            occurred_at=at,
        )


async def me(client: Any, user: User) -> dict[str, Any]:
    response = await client.get("/leaderboard/me", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def whole_board(
    client: Any, *, window: str = "all", track: str = "all", sort: str = "rank"
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        response = await client.get(
            "/leaderboard",
            params={"window": window, "track": track, "sort": sort, "limit": 100, "offset": offset},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        offset += 100
        if offset >= page["total"]:
            return items
