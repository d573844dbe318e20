"""author.goal: the tagline from the goals service over NATS request/reply.

The goals service is not needed: each test answers `rpc.goals.profile` itself,
under a subject prefix of its own so that no other responder can answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import nats
from community_posts.taglines import TaglineDirectory
from community_shared.events import encode_envelope, make_event
from community_shared.settings import Settings

from tests.conftest import RUN_ID, eventually, make_user


def own_settings() -> Settings:
    return Settings(service="posts", nats_subject_prefix=f"{RUN_ID}tl{uuid.uuid4().hex[:6]}.")


@asynccontextmanager
async def goals_responder(
    nats_url: str,
    settings: Settings,
    goals: dict[str, str | None],
    *,
    delay: float = 0.0,
    asked: list[str] | None = None,
    raw: bytes | None = None,
) -> AsyncIterator[None]:
    """Answer rpc.goals.profile like the goals service: a profile, or not_found.

    It runs on its own thread and event loop, as a separate service would: the
    test client blocks the test's loop while the app handles a request.
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    pending: set[asyncio.Task[None]] = set()

    async def answer(msg: Any) -> None:
        user_id = msgspec.json.decode(msg.data)["user_id"]
        if asked is not None:
            asked.append(user_id)

        async def later() -> None:
            await asyncio.sleep(delay)
            if raw is not None:
                await msg.respond(raw)
            elif user_id in goals:
                await msg.respond(
                    msgspec.json.encode(
                        {
                            "user_id": user_id,
                            "track": "agency",
                            "goal_slug": "agency-3k",
                            "goal_name": goals[user_id],
                            "total_revenue_earned": "1200.00",
                            "current_mrr": "0.00",
                        }
                    )
                )
            else:
                await msg.respond(b'{"error": "not_found"}')

        pending.add(loop.create_task(later()))  # a service answers requests concurrently

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        nc = await nats.connect(nats_url)
        await nc.subscribe(settings.subject("rpc.goals.profile"), cb=answer)
        await nc.flush()
        ready.set()
        await stop.wait()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await nc.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    await asyncio.to_thread(ready.wait, 5)
    try:
        yield
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, 5)
        loop.close()


def directory(settings: Settings, nc: Any, **options: Any) -> TaglineDirectory:
    return TaglineDirectory(settings, lambda: nc, **options)


async def test_lookup_asks_once_and_caches(nats_client: Any, infra: Any) -> None:
    settings = own_settings()
    ada, bob, ghost, teacher = (uuid.uuid4() for _ in range(4))
    asked: list[str] = []
    taglines = directory(settings, nats_client)
    async with goals_responder(
        infra.nats_url, settings, {str(ada): "Agency $3K", str(bob): None}, asked=asked
    ):
        found = await taglines.lookup(
            [
                (ada, "student"),
                (bob, "student"),
                (ghost, "student"),
                (teacher, "instructor"),
                (ada, "student"),
            ]
        )
        assert found == {ada: "Agency $3K", bob: None, ghost: None, teacher: None}
        assert sorted(asked) == sorted([str(ada), str(bob), str(ghost)])  # no one twice
        assert await taglines.lookup([(ada, "student"), (ghost, "student")]) == {
            ada: "Agency $3K",
            ghost: None,
        }
        assert len(asked) == 3  # answered from the cache

        taglines.forget(ada)  # the goal changed
        await taglines.lookup([(ada, "student")])
        assert asked.count(str(ada)) == 2


async def test_a_slow_goals_service_costs_one_short_wait(nats_client: Any, infra: Any) -> None:
    settings = own_settings()
    authors = [uuid.uuid4() for _ in range(10)]
    asked: list[str] = []
    taglines = directory(settings, nats_client, timeout=0.15)
    async with goals_responder(
        infra.nats_url, settings, {str(a): "late" for a in authors}, delay=1.0, asked=asked
    ):
        started = time.perf_counter()
        found = await taglines.lookup([(a, "student") for a in authors])
        elapsed = time.perf_counter() - started
        assert found == {a: None for a in authors}
        assert elapsed < 0.5, elapsed  # in parallel, bounded by the timeout

        started = time.perf_counter()
        assert await taglines.lookup([(a, "student") for a in authors]) == found
        assert time.perf_counter() - started < 0.05  # the miss is remembered for a while
        assert len(asked) == 10


async def test_a_page_of_authors_is_looked_up_in_parallel(nats_client: Any, infra: Any) -> None:
    settings = own_settings()
    authors = [uuid.uuid4() for _ in range(20)]
    taglines = directory(settings, nats_client, timeout=3.0)
    async with goals_responder(
        infra.nats_url, settings, {str(a): f"goal {a}" for a in authors}, delay=0.2
    ):
        started = time.perf_counter()
        found = await taglines.lookup([(a, "student") for a in authors])
        # One after the other would take 20 x 0.2 s; the bound leaves a busy machine room.
        assert time.perf_counter() - started < 2.0
        assert found == {a: f"goal {a}" for a in authors}


async def test_no_goals_service_no_nats_or_nonsense_means_no_tagline(
    nats_client: Any, infra: Any
) -> None:
    settings = own_settings()
    user = uuid.uuid4()
    started = time.perf_counter()
    patient = directory(settings, nats_client, timeout=3.0)
    assert await patient.lookup([(user, "student")]) == {user: None}
    assert time.perf_counter() - started < 1.5  # no responders: answered, not timed out
    assert await directory(settings, None).lookup([(user, "student")]) == {user: None}
    async with goals_responder(infra.nats_url, settings, {}, raw=b"not json"):
        assert await directory(settings, nats_client).lookup([(user, "student")]) == {user: None}


async def test_concurrent_lookups_of_one_author_share_one_request(
    nats_client: Any, infra: Any
) -> None:
    settings = own_settings()
    user = uuid.uuid4()
    asked: list[str] = []
    taglines = directory(settings, nats_client)
    async with goals_responder(
        infra.nats_url, settings, {str(user): "SaaS $5K MRR"}, delay=0.05, asked=asked
    ):
        results = await asyncio.gather(*(taglines.lookup([(user, "student")]) for _ in range(10)))
    assert all(r == {user: "SaaS $5K MRR"} for r in results)
    assert asked == [str(user)]


# --------------------------------------------------------------------------- over HTTP


async def test_posts_and_replies_show_their_authors_goal(
    isolated_posts_app: Any, nats_client: Any, infra: Any
) -> None:
    prefix = f"{RUN_ID}tl{uuid.uuid4().hex[:6]}."
    async with isolated_posts_app(own_database=True, nats_subject_prefix=prefix) as other:
        settings = other.settings
        ada, bob, teacher = make_user(name="Ada"), make_user(name="Bob"), make_user("instructor")
        goals: dict[str, str | None] = {str(ada.id): "Agency $3K"}
        published: list[dict[str, Any]] = []

        async def collect(msg: Any) -> None:
            published.append(msgspec.json.decode(msg.data))

        watcher = await nats_client.subscribe(settings.subject("posts.>"), cb=collect)
        async with goals_responder(infra.nats_url, settings, goals):
            created = await other.client.post(
                "/posts", json={"content": "hello"}, headers=ada.headers
            )
            assert created.status_code == 201
            post = created.json()
            assert post["author"]["goal"] == "Agency $3K"
            reply = await other.client.post(
                f"/posts/{post['id']}/replies", json={"content": "hi"}, headers=bob.headers
            )
            assert reply.json()["author"]["goal"] is None  # bob has no goal

            # A live post carries what the HTTP post carries, the tagline included.
            async def announced() -> bool:
                kinds = {e["type"] for e in published}
                return kinds >= {"posts.post.created", "posts.reply.created"}

            await eventually(announced)
            live = next(e["data"] for e in published if e["type"] == "posts.post.created")
            assert live["author"] == post["author"]
            live_reply = next(e["data"] for e in published if e["type"] == "posts.reply.created")
            assert live_reply["author"] == reply.json()["author"]
            await watcher.unsubscribe()
            await other.client.post(
                f"/posts/{post['id']}/replies", json={"content": "welcome"}, headers=teacher.headers
            )
            got = (await other.client.get(f"/posts/{post['id']}")).json()
            assert got["author"]["goal"] == "Agency $3K"
            assert [r["author"]["goal"] for r in got["replies"]] == [None, None]
            feed = (await other.client.get("/posts")).json()["items"]
            assert feed[0]["author"]["goal"] == "Agency $3K"

            # Goals announces a new goal: the cached tagline is dropped at once.
            goals[str(ada.id)] = "Agency $10K"
            event = make_event(
                "goals.goal.assigned",
                {
                    "student_id": str(ada.id),
                    "student_name": "Ada",
                    "track": "agency",
                    "goal_slug": "agency-10k",
                    "goal_name": "Agency $10K",
                    "target": "10000.00",
                    "review_id": None,
                    "reviewed_by": None,
                },
                source="goals",
                actor_id=None,
            )
            await nats_client.publish(
                settings.subject("goals.goal.assigned"), encode_envelope(event)
            )

            async def refreshed() -> bool:
                got = (await other.client.get(f"/posts/{post['id']}")).json()
                return bool(got["author"]["goal"] == "Agency $10K")

            await eventually(refreshed)


async def test_reads_do_not_wait_for_a_missing_goals_service(
    isolated_posts_app: Any,
) -> None:
    prefix = f"{RUN_ID}tl{uuid.uuid4().hex[:6]}."
    async with isolated_posts_app(own_database=True, nats_subject_prefix=prefix) as other:
        authors = [make_user() for _ in range(5)]
        for author in authors:
            await other.client.post("/posts", json={"content": "x"}, headers=author.headers)
        started = time.perf_counter()
        feed = (await other.client.get("/posts")).json()["items"]
        assert time.perf_counter() - started < 0.5
        assert [p["author"]["goal"] for p in feed] == [None] * 5


async def test_wiring_reaches_goals_with_the_runtime_connection(
    isolated_posts_app: Any, nats_client: Any, infra: Any
) -> None:
    """The app's tagline directory uses the app's NATS connection once it is up."""
    prefix = f"{RUN_ID}tl{uuid.uuid4().hex[:6]}."
    async with isolated_posts_app(own_database=True, nats_subject_prefix=prefix) as other:
        user = make_user()
        async with goals_responder(infra.nats_url, other.settings, {str(user.id): "SaaS $1K MRR"}):
            response = await other.client.post(
                "/posts", json={"content": "x"}, headers=user.headers
            )
        assert response.json()["author"]["goal"] == "SaaS $1K MRR"
