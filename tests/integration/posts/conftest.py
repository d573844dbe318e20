"""Fixtures of the posts service's integration tests.

The posts app under test runs on the test's own event loop (see `harness`), so
requests gathered with `asyncio.gather` really run concurrently.

- `api`: small helpers over the session's posts app (`posts_client`: create a post, a
  reply, read the outbox) so that tests state behaviour, not plumbing.
- `isolated_posts_app`: a second posts app with other settings (a dead Redis,
  a NATS server the test starts and stops, another subject prefix), with its
  own database when its outbox relay must not share the session's outbox.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from community_posts.app import create_app
from community_shared.settings import Settings
from litestar import Litestar

from tests.conftest import Infra, User, fresh_database, make_user
from tests.harness import (
    nats_hooks_ran,
    serve_in_this_loop,
)

TABLES = ("posts", "replies", "likes", "reports", "outbox")


@dataclass
class Api:
    client: Any
    db: asyncpg.Pool

    async def create_post(
        self, user: User | None = None, content: str | None = None, visibility: str = "public"
    ) -> dict[str, Any]:
        user = user or make_user()
        body = {"content": content or f"post {uuid.uuid4().hex}", "visibility": visibility}
        response = await self.client.post("/posts", json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        post: dict[str, Any] = response.json()
        return post

    async def create_reply(
        self,
        post_id: str,
        user: User | None = None,
        content: str | None = None,
        reply_to_id: str | None = None,
    ) -> dict[str, Any]:
        user = user or make_user()
        body: dict[str, Any] = {"content": content or f"reply {uuid.uuid4().hex}"}
        if reply_to_id is not None:
            body["reply_to_id"] = reply_to_id
        response = await self.client.post(
            f"/posts/{post_id}/replies", json=body, headers=user.headers
        )
        assert response.status_code == 201, response.text
        reply: dict[str, Any] = response.json()
        return reply

    async def get_post(self, post_id: str, user: User | None = None) -> dict[str, Any]:
        response = await self.client.get(
            f"/posts/{post_id}", headers=user.headers if user else None
        )
        assert response.status_code == 200, response.text
        post: dict[str, Any] = response.json()
        return post

    async def counts(self) -> dict[str, int]:
        """Row counts of every posts table (the outbox included)."""
        async with self.db.acquire() as conn:
            return {t: await conn.fetchval(f"SELECT count(*) FROM posts.{t}") for t in TABLES}

    async def outbox_mark(self) -> int:
        async with self.db.acquire() as conn:
            mark: int = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM posts.outbox")
            return mark

    async def events_since(self, mark: int) -> list[dict[str, Any]]:
        """Envelopes written to the outbox after `mark`, in order."""
        async with self.db.acquire() as conn:
            rows = await conn.fetch(
                "SELECT payload FROM posts.outbox WHERE seq > $1 ORDER BY seq", mark
            )
        return [msgspec.json.decode(bytes(row["payload"])) for row in rows]


@pytest.fixture
def api(posts_client: httpx.AsyncClient, db: asyncpg.Pool) -> Api:
    return Api(client=posts_client, db=db)


class Unchanged:
    """`async with unchanged(api):` asserts that a block wrote no row and no event."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._before: dict[str, int] = {}

    async def __aenter__(self) -> None:
        self._before = await self._api.counts()

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert await self._api.counts() == self._before


@pytest.fixture
def unchanged(api: Api) -> Callable[[], Unchanged]:
    return lambda: Unchanged(api)


# --------------------------------------------------------------------------- other apps


@dataclass
class IsolatedApp:
    client: Any
    app: Litestar
    settings: Settings


@pytest.fixture
def isolated_posts_app(
    infra: Infra, settings_for: Callable[..., Settings]
) -> Callable[..., contextlib.AbstractAsyncContextManager[IsolatedApp]]:
    """Start another posts app: `async with isolated_posts_app(own_database=True, **overrides)`.

    With `wait_for_nats` it returns once its NATS hooks ran.
    """

    @contextlib.asynccontextmanager
    async def start(
        *, own_database: bool = False, wait_for_nats: bool = True, **overrides: Any
    ) -> AsyncIterator[IsolatedApp]:
        async with contextlib.AsyncExitStack() as stack:
            if own_database:
                overrides["database_url"] = await stack.enter_async_context(fresh_database(infra))
            settings = settings_for("posts", **overrides)
            app = create_app(settings)
            client = await stack.enter_async_context(serve_in_this_loop(app))
            if wait_for_nats:
                await nats_hooks_ran(app)
            yield IsolatedApp(client=client, app=app, settings=settings)

    return start
