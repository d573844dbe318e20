"""Per-user rate limits: 10 posts, 20 replies, 100 likes per rolling hour."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.conftest import make_user


def assert_limited(response: Any) -> int:
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 3600
    assert "rate limit" in response.json()["detail"]
    return int(retry_after)


async def test_the_eleventh_post_in_an_hour_is_429(api: Any, unchanged: Any) -> None:
    user = make_user()
    for _ in range(10):
        await api.create_post(user)
    async with unchanged():
        response = await api.client.post(
            "/posts", json={"content": "one more"}, headers=user.headers
        )
    retry_after = assert_limited(response)
    assert retry_after > 3500  # the oldest post is seconds old: about an hour to wait
    # Limits are per user.
    await api.create_post(make_user())


async def test_post_limit_is_exact_under_concurrency(api: Any) -> None:
    user = make_user()
    responses = await asyncio.gather(
        *(
            api.client.post("/posts", json={"content": f"c{i}"}, headers=user.headers)
            for i in range(25)
        )
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 10 and statuses.count(429) == 15
    mine = (await api.client.get("/posts?filter=mine&limit=100", headers=user.headers)).json()
    assert len(mine["items"]) == 10


async def test_bad_requests_never_count(api: Any) -> None:
    user = make_user()
    for body in (
        {"content": " "},
        {"content": "x" * 5001},
        {"content": 1},
        {"visibility": "members"},
    ):
        for _ in range(3):
            response = await api.client.post("/posts", json=body, headers=user.headers)
            assert response.status_code == 400
    for _ in range(10):
        await api.create_post(user)
    assert_limited(await api.client.post("/posts", json={"content": "x"}, headers=user.headers))


async def test_replies_that_fail_never_count(api: Any) -> None:
    post = await api.create_post()
    other = await api.create_post()
    elsewhere = await api.create_reply(other["id"])
    user = make_user()
    url = f"/posts/{post['id']}/replies"
    # Refused before or inside the transaction: unknown post, bad target, bad content.
    for _ in range(10):
        missing = await api.client.post(
            f"/posts/{uuid.uuid4()}/replies", json={"content": "x"}, headers=user.headers
        )
        assert missing.status_code == 404
        wrong = await api.client.post(
            url, json={"content": "x", "reply_to_id": elsewhere["id"]}, headers=user.headers
        )
        assert wrong.status_code == 400
        empty = await api.client.post(url, json={"content": ""}, headers=user.headers)
        assert empty.status_code == 400
    responses = await asyncio.gather(
        *(api.client.post(url, json={"content": f"r{i}"}, headers=user.headers) for i in range(22))
    )
    assert sorted(r.status_code for r in responses) == [201] * 20 + [429] * 2
    assert (await api.get_post(post["id"]))["replies_count"] == 20


async def seed_posts(db: Any, count: int) -> list[str]:
    author = uuid.uuid4()
    async with db.acquire() as conn:
        rows = await conn.fetch(
            """INSERT INTO posts.posts (id, author_id, author_name, author_role, content)
               SELECT gen_random_uuid(), $1, 'Seeder', 'student', 'seeded ' || g
               FROM generate_series(1, $2) g
               RETURNING id""",
            author,
            count,
        )
    return [str(r["id"]) for r in rows]


async def hide(db: Any, post_ids: list[str]) -> None:
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE posts.posts SET deleted_at = now() WHERE id = ANY($1::uuid[])",
            [uuid.UUID(i) for i in post_ids],
        )


async def test_likes_limit_counts_changes_only(api: Any, db: Any, unchanged: Any) -> None:
    post_ids = await seed_posts(db, 102)
    try:
        user = make_user()
        responses = await asyncio.gather(
            *(api.client.put(f"/posts/{p}/like", headers=user.headers) for p in post_ids[:101])
        )
        statuses = [r.status_code for r in responses]
        assert statuses.count(200) == 100 and statuses.count(429) == 1
        liked = [p for p, r in zip(post_ids, responses, strict=False) if r.status_code == 200]
        not_liked = [p for p, r in zip(post_ids, responses, strict=False) if r.status_code == 429]

        async with unchanged():
            assert_limited(
                await api.client.put(f"/posts/{not_liked[0]}/like", headers=user.headers)
            )
            # Liking again what one already likes changes nothing, so it is never refused.
            again = await api.client.put(f"/posts/{liked[0]}/like", headers=user.headers)
            assert again.status_code == 200 and again.json()["liked"] is True
        # Unlikes are not limited; liking again afterwards is a change, and counts.
        unlike = await api.client.delete(f"/posts/{liked[0]}/like", headers=user.headers)
        assert unlike.status_code == 200 and unlike.json()["liked"] is False
        assert_limited(await api.client.put(f"/posts/{liked[0]}/like", headers=user.headers))
        # Another user is not affected.
        other = await api.client.put(f"/posts/{post_ids[101]}/like", headers=make_user().headers)
        assert other.status_code == 200
    finally:
        await hide(db, post_ids)


async def test_redis_down_limited_writes_answer_503_and_write_nothing(
    isolated_posts_app: Any,
) -> None:
    """SPEC §3: Redis down is a 503 with Retry-After; a limit is never skipped
    (this used to accept writes unchecked)."""
    async with isolated_posts_app(redis_url="redis://127.0.0.1:1/0") as other:
        user = make_user()
        for i in range(12):  # more than the limit: none may go through unchecked
            response = await other.client.post(
                "/posts", json={"content": f"redis is down {i}"}, headers=user.headers
            )
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) >= 1
        mine = await other.client.get("/posts?filter=mine", headers=user.headers)
        assert mine.status_code == 200 and mine.json()["items"] == []  # reads need no Redis
        metrics = (await other.client.get("/metrics")).text
        line = next(
            line
            for line in metrics.splitlines()
            if line.startswith("dependency_errors_total")
            and 'dependency="redis"' in line
            and 'operation="ratelimit"' in line
        )
        assert float(line.rsplit(" ", 1)[1]) >= 12
        ready = await other.client.get("/ready")
        assert ready.status_code == 503 and "redis" in ready.json()["failing"]
