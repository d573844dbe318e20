"""PUT/DELETE /posts/{id}/like: idempotent, exact under concurrency, announced once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.conftest import make_user


async def likes_in_db(db: Any, post_id: str) -> tuple[int, int]:
    """(likes_count column, number of like rows) of a post."""
    async with db.acquire() as conn:
        counter = await conn.fetchval(
            "SELECT likes_count FROM posts.posts WHERE id = $1", uuid.UUID(post_id)
        )
        rows = await conn.fetchval(
            "SELECT count(*) FROM posts.likes WHERE post_id = $1", uuid.UUID(post_id)
        )
    return counter, rows


async def test_like_and_unlike_are_idempotent(api: Any, student: Any) -> None:
    post = await api.create_post(student)
    liker = make_user()
    url = f"/posts/{post['id']}/like"
    mark = await api.outbox_mark()

    for _ in range(2):
        response = await api.client.put(url, headers=liker.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"liked": True, "likes_count": 1}
    assert (await api.get_post(post["id"], liker))["liked_by_me"] is True

    for _ in range(2):
        response = await api.client.delete(url, headers=liker.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"liked": False, "likes_count": 0}
    assert (await api.get_post(post["id"], liker))["liked_by_me"] is False

    # One event per change; repeating a like or an unlike announces nothing.
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.post.liked", "posts.post.unliked"]
    assert events[0]["data"] == {
        "post_id": post["id"],
        "user_id": str(liker.id),
        "user_name": liker.name,
        "likes_count": 1,
        "post_author_id": str(student.id),
        "visibility": "public",
    }
    assert events[0]["actor_id"] == str(liker.id)
    assert events[1]["data"]["likes_count"] == 0


async def test_authors_may_like_their_own_post(api: Any, student: Any) -> None:
    post = await api.create_post(student)
    response = await api.client.put(f"/posts/{post['id']}/like", headers=student.headers)
    assert response.json() == {"liked": True, "likes_count": 1}


async def test_fifty_distinct_users_liking_at_once(api: Any, db: Any, student: Any) -> None:
    post = await api.create_post(student)
    likers = [make_user() for _ in range(50)]
    mark = await api.outbox_mark()
    responses = await asyncio.gather(
        *(api.client.put(f"/posts/{post['id']}/like", headers=u.headers) for u in likers)
    )
    assert all(r.status_code == 200 for r in responses)
    counts = sorted(r.json()["likes_count"] for r in responses)
    assert counts == list(range(1, 51))  # every like saw its own exact count
    assert await likes_in_db(db, post["id"]) == (50, 50)
    assert (await api.get_post(post["id"]))["likes_count"] == 50
    events = await api.events_since(mark)
    assert sorted(e["data"]["likes_count"] for e in events) == list(range(1, 51))
    # Events of one post are in the outbox in the order the counter moved.
    assert [e["data"]["likes_count"] for e in events] == list(range(1, 51))


async def test_fifty_concurrent_toggles_by_one_user_stay_consistent(
    api: Any, db: Any, student: Any
) -> None:
    post = await api.create_post(student)
    user = make_user()
    url = f"/posts/{post['id']}/like"
    calls = [
        api.client.put(url, headers=user.headers)
        if i % 2 == 0
        else api.client.delete(url, headers=user.headers)
        for i in range(50)
    ]
    responses = await asyncio.gather(*calls)
    assert all(r.status_code == 200 for r in responses)
    assert all(r.json()["likes_count"] in (0, 1) for r in responses)
    counter, rows = await likes_in_db(db, post["id"])
    assert counter == rows and rows in (0, 1)
    got = await api.get_post(post["id"], user)
    assert got["likes_count"] == rows
    assert got["liked_by_me"] is (rows == 1)


async def test_like_routes_refuse_guests_and_non_members(
    api: Any, unchanged: Any, student: Any, non_member: Any
) -> None:
    post = await api.create_post(student)
    url = f"/posts/{post['id']}/like"
    async with unchanged():
        assert (await api.client.put(url)).status_code == 401
        assert (await api.client.delete(url)).status_code == 401
        assert (await api.client.put(url, headers=non_member.headers)).status_code == 403
        assert (await api.client.delete(url, headers=non_member.headers)).status_code == 403


async def test_liking_unknown_deleted_or_malformed_posts_is_404(
    api: Any, unchanged: Any, student: Any
) -> None:
    post = await api.create_post(student)
    assert (
        await api.client.delete(f"/posts/{post['id']}", headers=student.headers)
    ).status_code == 204
    user = make_user()
    async with unchanged():
        for target in (str(uuid.uuid4()), post["id"], "nope"):
            assert (
                await api.client.put(f"/posts/{target}/like", headers=user.headers)
            ).status_code == 404
            assert (
                await api.client.delete(f"/posts/{target}/like", headers=user.headers)
            ).status_code == 404


async def test_members_only_posts_are_liked_by_members(api: Any, student: Any) -> None:
    post = await api.create_post(student, visibility="members")
    liker = make_user()
    response = await api.client.put(f"/posts/{post['id']}/like", headers=liker.headers)
    assert response.json() == {"liked": True, "likes_count": 1}
