"""Replies: threads via reply_to_id, edits, soft deletes, an exact replies_count."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.conftest import make_user


async def test_replies_nest_and_read_flat_oldest_first(api: Any, student: Any) -> None:
    post = await api.create_post(student)
    alice, bob = make_user(name="Alice"), make_user(name="Bob")
    first = await api.create_reply(post["id"], alice, "  first!  ")
    second = await api.create_reply(post["id"], bob, "answering Alice", reply_to_id=first["id"])
    third = await api.create_reply(post["id"], student, "deeper", reply_to_id=second["id"])

    assert first == {
        "id": first["id"],
        "post_id": post["id"],
        "reply_to_id": None,
        "author": {"id": str(alice.id), "name": "Alice", "role": "student", "goal": None},
        "content": "first!",
        "created_at": first["created_at"],
        "edited": False,
    }
    got = await api.get_post(post["id"])
    assert got["replies"] == [first, second, third]
    assert got["replies_count"] == 3


async def test_reply_events_name_who_to_notify(api: Any, student: Any) -> None:
    post = await api.create_post(student, visibility="members")
    alice, bob = make_user(), make_user()
    mark = await api.outbox_mark()
    top = await api.create_reply(post["id"], alice)
    nested = await api.create_reply(post["id"], bob, reply_to_id=top["id"])
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.reply.created"] * 2
    assert events[0]["data"] == {
        "id": top["id"],
        "post_id": post["id"],
        "reply_to_id": None,
        "author": {"id": str(alice.id), "name": alice.name, "role": "student", "goal": None},
        "content": top["content"],
        "created_at": top["created_at"],
        "edited": False,
        "visibility": "members",
        "post_author_id": str(student.id),
        "reply_to_author_id": None,
        "replies_count": 1,
    }
    assert events[1]["data"]["id"] == nested["id"]
    assert events[1]["data"]["reply_to_id"] == top["id"]
    assert events[1]["data"]["reply_to_author_id"] == str(alice.id)
    assert events[1]["data"]["replies_count"] == 2
    assert events[1]["actor_id"] == str(bob.id)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"content": ""}, "must not be empty"),
        ({"content": "  \n "}, "must not be empty"),
        ({"content": "y" * 5001}, "at most 5000"),
        ({"content": 7}, "Expected `str`"),
        ({}, "missing required field"),
        ({"content": "ok", "reply_to_id": "not-a-uuid"}, "uuid"),
        ({"content": "ok", "reply_to_id": 12}, "Expected `uuid"),
        ({"content": "ok", "reply_to_id": str(uuid.UUID(int=1))}, "same post"),
    ],
)
async def test_bad_replies_are_400_and_write_nothing(
    api: Any, unchanged: Any, student: Any, body: Any, fragment: str
) -> None:
    post = await api.create_post(student)
    async with unchanged():
        response = await api.client.post(
            f"/posts/{post['id']}/replies", json=body, headers=student.headers
        )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert fragment.lower() in (problem["detail"] + str(problem.get("extra", ""))).lower()


async def test_reply_to_a_reply_of_another_post_is_400(
    api: Any, unchanged: Any, student: Any
) -> None:
    post, other = await api.create_post(student), await api.create_post(student)
    elsewhere = await api.create_reply(other["id"])
    async with unchanged():
        response = await api.client.post(
            f"/posts/{post['id']}/replies",
            json={"content": "hi", "reply_to_id": elsewhere["id"]},
            headers=student.headers,
        )
    assert response.status_code == 400
    assert "same post" in response.json()["detail"]


async def test_reply_to_a_deleted_reply_is_400(api: Any, unchanged: Any, student: Any) -> None:
    post = await api.create_post(student)
    gone = await api.create_reply(post["id"], student)
    url = f"/posts/{post['id']}/replies/{gone['id']}"
    assert (await api.client.delete(url, headers=student.headers)).status_code == 204
    async with unchanged():
        response = await api.client.post(
            f"/posts/{post['id']}/replies",
            json={"content": "hi", "reply_to_id": gone["id"]},
            headers=student.headers,
        )
    assert response.status_code == 400


async def test_replying_to_unknown_hidden_or_deleted_posts_is_404(
    api: Any, unchanged: Any, student: Any
) -> None:
    deleted = await api.create_post(student)
    await api.client.delete(f"/posts/{deleted['id']}", headers=student.headers)
    async with unchanged():
        for target in (str(uuid.uuid4()), deleted["id"], "nope"):
            response = await api.client.post(
                f"/posts/{target}/replies", json={"content": "hi"}, headers=student.headers
            )
            assert response.status_code == 404


async def test_reply_routes_refuse_guests_and_non_members(
    api: Any, unchanged: Any, student: Any, non_member: Any
) -> None:
    post = await api.create_post(student)
    reply = await api.create_reply(post["id"], student)
    base = f"/posts/{post['id']}/replies"
    async with unchanged():
        assert (await api.client.post(base, json={"content": "x"})).status_code == 401
        assert (
            await api.client.post(base, json={"content": "x"}, headers=non_member.headers)
        ).status_code == 403
        assert (
            await api.client.patch(f"{base}/{reply['id']}", json={"content": "x"})
        ).status_code == 401
        assert (await api.client.delete(f"{base}/{reply['id']}")).status_code == 401
        assert (
            await api.client.patch(
                f"{base}/{reply['id']}", json={"content": "x"}, headers=non_member.headers
            )
        ).status_code == 403


async def test_edit_reply_by_its_author_only(
    api: Any, unchanged: Any, student: Any, instructor: Any
) -> None:
    post = await api.create_post(student)
    author = make_user()
    reply = await api.create_reply(post["id"], author, "typo")
    url = f"/posts/{post['id']}/replies/{reply['id']}"

    async with unchanged():
        for user in (student, instructor, make_user()):  # post author, moderator, stranger
            response = await api.client.patch(url, json={"content": "hijack"}, headers=user.headers)
            assert response.status_code == 403, response.text
        bad = await api.client.patch(url, json={"content": "  "}, headers=author.headers)
        assert bad.status_code == 400

    mark = await api.outbox_mark()
    response = await api.client.patch(url, json={"content": " fixed "}, headers=author.headers)
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["content"] == "fixed" and edited["edited"] is True
    assert edited["created_at"] == reply["created_at"]
    assert (await api.get_post(post["id"]))["replies"] == [edited]
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.reply.updated"]
    assert events[0]["data"]["content"] == "fixed" and events[0]["data"]["edited"] is True
    assert events[0]["data"]["replies_count"] == 1


async def test_edit_or_delete_unknown_replies_is_404(api: Any, student: Any) -> None:
    post, other = await api.create_post(student), await api.create_post(student)
    elsewhere = await api.create_reply(other["id"], student)
    for reply_id in (str(uuid.uuid4()), elsewhere["id"]):
        url = f"/posts/{post['id']}/replies/{reply_id}"
        assert (
            await api.client.patch(url, json={"content": "x"}, headers=student.headers)
        ).status_code == 404
        assert (await api.client.delete(url, headers=student.headers)).status_code == 404
    assert (
        await api.client.delete(f"/posts/{post['id']}/replies/bad-id", headers=student.headers)
    ).status_code == 404


async def test_delete_reply_by_author_instructor_or_admin(
    api: Any, unchanged: Any, student: Any, instructor: Any, admin: Any
) -> None:
    post = await api.create_post(student)
    authors = [make_user() for _ in range(3)]
    replies = [await api.create_reply(post["id"], author) for author in authors]
    base = f"/posts/{post['id']}/replies"

    async with unchanged():  # neither the post's author nor another student moderates
        for user in (student, authors[1]):
            response = await api.client.delete(f"{base}/{replies[0]['id']}", headers=user.headers)
            assert response.status_code == 403

    mark = await api.outbox_mark()
    for reply, user in zip(replies, (authors[0], instructor, admin), strict=True):
        response = await api.client.delete(f"{base}/{reply['id']}", headers=user.headers)
        assert response.status_code == 204, response.text
        assert response.content == b""
    got = await api.get_post(post["id"])
    assert got["replies"] == [] and got["replies_count"] == 0
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.reply.deleted"] * 3
    assert [e["data"]["replies_count"] for e in events] == [2, 1, 0]
    assert events[0]["data"] == {
        "id": replies[0]["id"],
        "post_id": post["id"],
        "visibility": "public",
        "replies_count": 2,
    }
    # A deleted reply is gone: deleting it again is 404.
    again = await api.client.delete(f"{base}/{replies[0]['id']}", headers=instructor.headers)
    assert again.status_code == 404


async def test_deleting_a_reply_keeps_the_replies_to_it(api: Any, student: Any) -> None:
    post = await api.create_post(student)
    parent = await api.create_reply(post["id"], student)
    child = await api.create_reply(post["id"], reply_to_id=parent["id"])
    url = f"/posts/{post['id']}/replies/{parent['id']}"
    assert (await api.client.delete(url, headers=student.headers)).status_code == 204
    got = await api.get_post(post["id"])
    assert got["replies"] == [child] and got["replies_count"] == 1


async def test_replies_count_is_exact_under_concurrent_replies_and_deletes(
    api: Any, db: Any, student: Any, instructor: Any
) -> None:
    post = await api.create_post(student)
    early = [await api.create_reply(post["id"]) for _ in range(10)]
    writers = [make_user() for _ in range(20)]
    creates = [
        api.client.post(f"/posts/{post['id']}/replies", json={"content": "c"}, headers=u.headers)
        for u in writers
    ]
    deletes = [
        api.client.delete(f"/posts/{post['id']}/replies/{r['id']}", headers=instructor.headers)
        for r in early
    ]
    # The same deletion twice at once: exactly one wins.
    deletes.append(
        api.client.delete(
            f"/posts/{post['id']}/replies/{early[0]['id']}", headers=instructor.headers
        )
    )
    responses = await asyncio.gather(*creates, *deletes)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 20 + [204] * 10 + [404]
    got = await api.get_post(post["id"])
    assert got["replies_count"] == len(got["replies"]) == 20
    async with db.acquire() as conn:
        live = await conn.fetchval(
            "SELECT count(*) FROM posts.replies WHERE post_id = $1 AND deleted_at IS NULL",
            uuid.UUID(post["id"]),
        )
    assert live == 20
