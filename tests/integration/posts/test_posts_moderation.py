"""Editing, deleting, pinning and reporting posts; the moderators' queue."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.conftest import make_user


async def ids_in_feed(api: Any, query: str, user: Any = None) -> list[str]:
    response = await api.client.get(f"/posts?{query}", headers=user.headers if user else None)
    assert response.status_code == 200
    return [p["id"] for p in response.json()["items"]]


def word() -> str:
    return "mod" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


# --------------------------------------------------------------------------- edit


async def test_author_edits_a_post(api: Any, student: Any) -> None:
    post = await api.create_post(student, "first draft")
    mark = await api.outbox_mark()
    response = await api.client.patch(
        f"/posts/{post['id']}", json={"content": "  final words "}, headers=student.headers
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["content"] == "final words" and edited["edited"] is True
    assert edited["created_at"] == post["created_at"]
    assert edited["updated_at"] > post["updated_at"]
    assert (await api.get_post(post["id"]))["content"] == "final words"
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.post.updated"]
    assert events[0]["data"]["content"] == "final words" and events[0]["data"]["edited"] is True


async def test_only_the_author_edits(
    api: Any, unchanged: Any, student: Any, instructor: Any, admin: Any, non_member: Any
) -> None:
    post = await api.create_post(student)
    url = f"/posts/{post['id']}"
    async with unchanged():
        assert (await api.client.patch(url, json={"content": "x"})).status_code == 401
        for user in (make_user(), instructor, admin, non_member):
            response = await api.client.patch(url, json={"content": "x"}, headers=user.headers)
            assert response.status_code == 403, (user.role, response.text)
    assert (await api.get_post(post["id"]))["content"] == post["content"]


@pytest.mark.parametrize(
    "body", [{"content": ""}, {"content": " "}, {"content": "z" * 5001}, {"content": 1}, {}]
)
async def test_bad_edits_are_400(api: Any, unchanged: Any, student: Any, body: Any) -> None:
    post = await api.create_post(student)
    async with unchanged():
        response = await api.client.patch(
            f"/posts/{post['id']}", json=body, headers=student.headers
        )
    assert response.status_code == 400
    assert (await api.get_post(post["id"]))["edited"] is False


async def test_editing_unknown_or_deleted_posts_is_404(api: Any, student: Any) -> None:
    post = await api.create_post(student)
    await api.client.delete(f"/posts/{post['id']}", headers=student.headers)
    for target in (str(uuid.uuid4()), post["id"]):
        response = await api.client.patch(
            f"/posts/{target}", json={"content": "x"}, headers=student.headers
        )
        assert response.status_code == 404


# --------------------------------------------------------------------------- delete


async def test_author_deletes_a_post(api: Any, student: Any) -> None:
    tag = word()
    post = await api.create_post(student, f"{tag} going away")
    mark = await api.outbox_mark()
    response = await api.client.delete(f"/posts/{post['id']}", headers=student.headers)
    assert response.status_code == 204 and response.content == b""
    assert (await api.client.get(f"/posts/{post['id']}")).status_code == 404
    assert await ids_in_feed(api, f"q={tag}") == []
    assert post["id"] not in await ids_in_feed(api, "filter=mine&limit=100", student)
    assert (
        await api.client.delete(f"/posts/{post['id']}", headers=student.headers)
    ).status_code == 404
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.post.deleted"]
    assert events[0]["data"] == {
        "id": post["id"],
        "author_id": str(student.id),
        "visibility": "public",
        "removed_by": str(student.id),
        "reason": "author",
    }


@pytest.mark.parametrize("role", ["instructor", "admin"])
async def test_moderators_delete_any_post(api: Any, student: Any, role: str) -> None:
    moderator = make_user(role)
    post = await api.create_post(student, visibility="members")
    mark = await api.outbox_mark()
    response = await api.client.delete(f"/posts/{post['id']}", headers=moderator.headers)
    assert response.status_code == 204
    (event,) = await api.events_since(mark)
    assert event["data"]["reason"] == "moderator"
    assert event["data"]["removed_by"] == str(moderator.id)
    assert event["data"]["visibility"] == "members"


async def test_others_cannot_delete(
    api: Any, unchanged: Any, student: Any, non_member: Any
) -> None:
    post = await api.create_post(student)
    url = f"/posts/{post['id']}"
    async with unchanged():
        assert (await api.client.delete(url)).status_code == 401
        assert (await api.client.delete(url, headers=make_user().headers)).status_code == 403
        assert (await api.client.delete(url, headers=non_member.headers)).status_code == 403
        assert (
            await api.client.delete(f"/posts/{uuid.uuid4()}", headers=student.headers)
        ).status_code == 404
    # A members-only post is hidden from a non-member: 404, not 403.
    hidden = await api.create_post(student, visibility="members")
    response = await api.client.delete(f"/posts/{hidden['id']}", headers=non_member.headers)
    assert response.status_code == 404


# --------------------------------------------------------------------------- pin


@pytest.mark.parametrize("role", ["instructor", "admin"])
async def test_pin_and_unpin(api: Any, student: Any, role: str) -> None:
    moderator = make_user(role)
    tag = word()
    older = await api.create_post(student, f"{tag} older")
    newer = await api.create_post(student, f"{tag} newer")
    assert await ids_in_feed(api, f"q={tag}") == [newer["id"], older["id"]]

    mark = await api.outbox_mark()
    response = await api.client.put(f"/posts/{older['id']}/pin", headers=moderator.headers)
    assert response.status_code == 200, response.text
    pinned = response.json()
    assert pinned["is_pinned"] is True and pinned["id"] == older["id"]
    assert pinned["edited"] is False and pinned["updated_at"] == older["updated_at"]
    assert await ids_in_feed(api, f"q={tag}") == [older["id"], newer["id"]]
    # Pinned first everywhere, including page boundaries.
    first_page = await ids_in_feed(api, "limit=1")
    assert first_page == [older["id"]] or (await api.get_post(first_page[0]))["is_pinned"]

    again = await api.client.put(f"/posts/{older['id']}/pin", headers=moderator.headers)
    assert again.status_code == 200 and again.json()["is_pinned"] is True

    response = await api.client.delete(f"/posts/{older['id']}/pin", headers=moderator.headers)
    assert response.status_code == 200 and response.json()["is_pinned"] is False
    assert await ids_in_feed(api, f"q={tag}") == [newer["id"], older["id"]]
    again = await api.client.delete(f"/posts/{older['id']}/pin", headers=moderator.headers)
    assert again.status_code == 200 and again.json()["is_pinned"] is False

    events = await api.events_since(mark)  # repeated pins and unpins announce nothing
    assert [e["type"] for e in events] == ["posts.post.pinned", "posts.post.unpinned"]
    assert events[0]["data"]["is_pinned"] is True and events[1]["data"]["is_pinned"] is False
    assert events[0]["actor_id"] == str(moderator.id)


async def test_paging_across_pinned_and_unpinned_posts(api: Any, instructor: Any) -> None:
    tag = word()
    author = make_user()
    posts = [await api.create_post(author, f"{tag} {i}") for i in range(6)]
    for post in (posts[1], posts[4]):
        await api.client.put(f"/posts/{post['id']}/pin", headers=instructor.headers)
    seen: list[str] = []
    cursor = None
    while True:
        url = f"/posts?q={tag}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await api.client.get(url)).json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    order = [posts[i]["id"] for i in (4, 1, 5, 3, 2, 0)]
    assert seen == order
    for post in (posts[1], posts[4]):
        await api.client.delete(f"/posts/{post['id']}/pin", headers=instructor.headers)


async def test_pin_refuses_students_and_guests(api: Any, unchanged: Any, student: Any) -> None:
    post = await api.create_post(student)
    async with unchanged():
        for method in (api.client.put, api.client.delete):
            assert (await method(f"/posts/{post['id']}/pin")).status_code == 401
            assert (
                await method(f"/posts/{post['id']}/pin", headers=student.headers)
            ).status_code == 403
    assert (await api.get_post(post["id"]))["is_pinned"] is False


async def test_pin_unknown_or_deleted_post_is_404(api: Any, student: Any, instructor: Any) -> None:
    post = await api.create_post(student)
    await api.client.delete(f"/posts/{post['id']}", headers=student.headers)
    for target in (str(uuid.uuid4()), post["id"]):
        for method in (api.client.put, api.client.delete):
            assert (
                await method(f"/posts/{target}/pin", headers=instructor.headers)
            ).status_code == 404


# --------------------------------------------------------------------------- reports


async def report(api: Any, post_id: str, user: Any, reason: str = "spam", **extra: Any) -> Any:
    return await api.client.post(
        f"/posts/{post_id}/reports", json={"reason": reason, **extra}, headers=user.headers
    )


async def test_report_a_post(api: Any, student: Any) -> None:
    post = await api.create_post(student)
    reporter = make_user()
    mark = await api.outbox_mark()
    response = await report(api, post["id"], reporter, "abuse", details="  rude  ")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["post_id"] == post["id"] and created["status"] == "open"
    assert created["reason"] == "abuse" and created["details"] == "rude"
    assert created["reporter"] == {"id": str(reporter.id), "name": reporter.name}
    assert created["action"] is None and created["resolved_at"] is None
    assert created["post"]["content"] == post["content"] and created["post"]["deleted"] is False
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.report.created"]
    assert events[0]["data"] == {
        "id": created["id"],
        "post_id": post["id"],
        "reporter_id": str(reporter.id),
        "reason": "abuse",
        "details": "rude",
    }


async def test_one_open_report_per_user_and_post(
    api: Any, unchanged: Any, student: Any, instructor: Any
) -> None:
    post = await api.create_post(student)
    reporter = make_user()
    first = await report(api, post["id"], reporter)
    assert first.status_code == 201
    async with unchanged():
        second = await report(api, post["id"], reporter, "other")
    assert second.status_code == 409 and second.json()["detail"]
    # Someone else may still report it.
    assert (await report(api, post["id"], make_user())).status_code == 201
    # After the report is resolved, the same user may report again.
    resolved = await api.client.post(
        f"/reports/{first.json()['id']}/resolve",
        json={"action": "dismiss"},
        headers=instructor.headers,
    )
    assert resolved.status_code == 200
    assert (await report(api, post["id"], reporter, "off_topic")).status_code == 201


async def test_concurrent_duplicate_reports_open_one(api: Any, student: Any) -> None:
    post = await api.create_post(student)
    reporter = make_user()
    responses = await asyncio.gather(*(report(api, post["id"], reporter) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "boring"},
        {"reason": ""},
        {"reason": 3},
        {},
        {"reason": "spam", "details": "d" * 1001},
        {"reason": "spam", "details": 5},
        {"reason": "spam", "details": "nul\u0000"},
    ],
)
async def test_bad_reports_are_400(api: Any, unchanged: Any, student: Any, body: Any) -> None:
    post = await api.create_post(student)
    async with unchanged():
        response = await api.client.post(
            f"/posts/{post['id']}/reports", json=body, headers=make_user().headers
        )
    assert response.status_code == 400, response.text


async def test_report_refuses_guests_and_non_members_and_unknown_posts(
    api: Any, unchanged: Any, student: Any, non_member: Any
) -> None:
    post = await api.create_post(student)
    async with unchanged():
        assert (
            await api.client.post(f"/posts/{post['id']}/reports", json={"reason": "spam"})
        ).status_code == 401
        assert (await report(api, post["id"], non_member)).status_code == 403
        assert (await report(api, str(uuid.uuid4()), student)).status_code == 404


async def test_moderation_queue(api: Any, student: Any, instructor: Any, admin: Any) -> None:
    posts = [await api.create_post(student) for _ in range(3)]
    mine = [(await report(api, p["id"], make_user(), "other")).json() for p in posts]

    queue: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = "/reports?status=open&limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = await api.client.get(url, headers=admin.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        queue += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    ids = [r["id"] for r in queue]
    assert len(ids) == len(set(ids))
    assert [r["id"] for r in mine] == [
        i for i in ids if i in {r["id"] for r in mine}
    ]  # oldest first
    assert all(r["status"] == "open" for r in queue)
    default = (await api.client.get("/reports?limit=100", headers=instructor.headers)).json()
    assert {r["id"] for r in mine} <= {r["id"] for r in default["items"]}

    await api.client.post(
        f"/reports/{mine[0]['id']}/resolve", json={"action": "dismiss"}, headers=instructor.headers
    )
    await api.client.post(
        f"/reports/{mine[1]['id']}/resolve", json={"action": "dismiss"}, headers=instructor.headers
    )
    resolved = (
        await api.client.get("/reports?status=resolved&limit=2", headers=admin.headers)
    ).json()
    assert [r["id"] for r in resolved["items"]] == [mine[1]["id"], mine[0]["id"]]  # newest first
    assert all(r["status"] == "resolved" and r["action"] == "dismiss" for r in resolved["items"])
    rest = (
        (
            await api.client.get(
                f"/reports?status=resolved&limit=2&cursor={resolved['next_cursor']}",
                headers=admin.headers,
            )
        ).json()
        if resolved["next_cursor"]
        else {"items": []}
    )
    assert not {r["id"] for r in rest["items"]} & {mine[0]["id"], mine[1]["id"]}
    still_open = {
        r["id"]
        for r in (await api.client.get("/reports?limit=100", headers=admin.headers)).json()["items"]
    }
    assert mine[2]["id"] in still_open and mine[0]["id"] not in still_open


async def test_queue_refuses_students_and_guests(api: Any, student: Any) -> None:
    assert (await api.client.get("/reports")).status_code == 401
    assert (await api.client.get("/reports", headers=student.headers)).status_code == 403


@pytest.mark.parametrize(
    "query", ["status=pending", "limit=0", "limit=101", "cursor=garbage", "cursor=WzFd"]
)
async def test_bad_queue_queries_are_400(api: Any, instructor: Any, query: str) -> None:
    response = await api.client.get(f"/reports?{query}", headers=instructor.headers)
    assert response.status_code == 400, response.text


async def test_resolve_with_remove_deletes_the_post(
    api: Any, student: Any, instructor: Any
) -> None:
    tag = word()
    post = await api.create_post(student, f"{tag} spam spam spam", visibility="members")
    first = (await report(api, post["id"], make_user())).json()
    second = (await report(api, post["id"], make_user(), "abuse")).json()
    mark = await api.outbox_mark()
    response = await api.client.post(
        f"/reports/{first['id']}/resolve", json={"action": "remove"}, headers=instructor.headers
    )
    assert response.status_code == 200, response.text
    resolved = response.json()
    assert resolved["status"] == "resolved" and resolved["action"] == "remove"
    assert resolved["resolved_by"] == str(instructor.id) and resolved["resolved_at"]
    assert resolved["post"]["deleted"] is True
    assert (
        await api.client.get(f"/posts/{post['id']}", headers=student.headers)
    ).status_code == 404
    assert await ids_in_feed(api, f"q={tag}", student) == []

    events = await api.events_since(mark)
    assert [e["type"] for e in events] == [
        "posts.post.deleted",
        "posts.report.resolved",
        "posts.report.resolved",
    ]
    assert events[0]["data"] == {
        "id": post["id"],
        "author_id": str(student.id),
        "visibility": "members",
        "removed_by": str(instructor.id),
        "reason": "report",
    }
    assert {e["data"]["id"] for e in events[1:]} == {first["id"], second["id"]}
    assert all(e["data"]["action"] == "remove" for e in events[1:])
    # Every open report of the removed post left the queue.
    queue = (await api.client.get("/reports?limit=100", headers=instructor.headers)).json()
    assert not {first["id"], second["id"]} & {r["id"] for r in queue["items"]}


async def test_resolve_dismiss_keeps_the_post(api: Any, student: Any, admin: Any) -> None:
    post = await api.create_post(student)
    opened = (await report(api, post["id"], make_user())).json()
    mark = await api.outbox_mark()
    response = await api.client.post(
        f"/reports/{opened['id']}/resolve", json={"action": "dismiss"}, headers=admin.headers
    )
    assert response.status_code == 200 and response.json()["action"] == "dismiss"
    assert (await api.get_post(post["id"]))["id"] == post["id"]
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.report.resolved"]
    assert events[0]["data"] == {
        "id": opened["id"],
        "post_id": post["id"],
        "action": "dismiss",
        "resolved_by": str(admin.id),
    }


async def test_resolve_twice_is_409_and_only_one_of_two_moderators_wins(
    api: Any, unchanged: Any, student: Any, instructor: Any, admin: Any
) -> None:
    post = await api.create_post(student)
    opened = (await report(api, post["id"], make_user())).json()
    url = f"/reports/{opened['id']}/resolve"
    responses = await asyncio.gather(
        api.client.post(url, json={"action": "dismiss"}, headers=instructor.headers),
        api.client.post(url, json={"action": "remove"}, headers=admin.headers),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    async with unchanged():
        again = await api.client.post(url, json={"action": "dismiss"}, headers=admin.headers)
    assert again.status_code == 409


async def test_resolve_refusals(api: Any, unchanged: Any, student: Any, instructor: Any) -> None:
    post = await api.create_post(student)
    opened = (await report(api, post["id"], make_user())).json()
    url = f"/reports/{opened['id']}/resolve"
    async with unchanged():
        assert (await api.client.post(url, json={"action": "dismiss"})).status_code == 401
        assert (
            await api.client.post(url, json={"action": "dismiss"}, headers=student.headers)
        ).status_code == 403
        for body in ({"action": "ban"}, {}, {"action": None}):
            response = await api.client.post(url, json=body, headers=instructor.headers)
            assert response.status_code == 400
        assert (
            await api.client.post(
                f"/reports/{uuid.uuid4()}/resolve",
                json={"action": "dismiss"},
                headers=instructor.headers,
            )
        ).status_code == 404
        assert (
            await api.client.post(
                "/reports/xyz/resolve", json={"action": "dismiss"}, headers=instructor.headers
            )
        ).status_code == 404
