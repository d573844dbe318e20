"""Success stories: submitted by students, published by instructors, pseudonyms that hold."""

from __future__ import annotations

from typing import Any

import msgspec

from tests.conftest import JWT_SECRET, User, make_user


async def _create(client: Any, author: User, **fields: Any) -> dict[str, Any]:
    body = {"title": "From zero to 3k", "story": "Cold emails, every day.", "anonymous": False}
    body.update(fields)
    response = await client.post("/goals/stories", json=body, headers=author.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _publish(client: Any, story_id: str, moderator: User) -> dict[str, Any]:
    response = await client.post(f"/goals/stories/{story_id}/publish", headers=moderator.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _published(client: Any, **headers: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/goals/stories", params=params, headers=headers)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def test_a_story_is_public_only_once_published(
    goals_client: Any, student: User, instructor: User, db: Any
) -> None:
    story = await _create(goals_client, student, earnings_amount="3250.5")
    assert story["status"] == "pending"
    assert story["published_at"] is None
    assert story["earnings_amount"] == "3250.50"
    assert story["author_name"] == student.name
    assert story["author_id"] == str(student.id)
    assert story["anonymous"] is False
    assert story["id"] not in [s["id"] for s in await _published(goals_client)]

    queue = await goals_client.get(
        "/goals/stories", params={"status": "pending", "limit": 100}, headers=instructor.headers
    )
    assert queue.status_code == 200
    assert story["id"] in [s["id"] for s in queue.json()["items"]]

    published = await _publish(goals_client, story["id"], instructor)
    assert published["status"] == "published"
    assert published["published_at"] is not None
    public = next(s for s in await _published(goals_client) if s["id"] == story["id"])
    assert public == {
        "id": story["id"],
        "title": "From zero to 3k",
        "story": "Cold emails, every day.",
        "earnings_amount": "3250.50",
        "author_name": student.name,
        "author_id": str(student.id),
        "published_at": published["published_at"],
    }
    again = await goals_client.post(
        f"/goals/stories/{story['id']}/publish", headers=instructor.headers
    )
    assert again.status_code == 409

    rows = await db.fetch(
        "SELECT payload FROM goals.outbox WHERE aggregate = $1 ORDER BY seq", f"story:{story['id']}"
    )
    events = [msgspec.json.decode(bytes(r["payload"])) for r in rows]
    assert [e["type"] for e in events] == ["goals.story.created", "goals.story.published"]
    assert events[1]["data"] == {
        "story_id": story["id"],
        "author_id": str(student.id),
        "title": "From zero to 3k",
        "published_at": published["published_at"],
        "anonymous": False,
    }
    assert events[1]["actor_id"] == str(instructor.id)


async def test_anonymous_authors_get_stable_pseudonyms_and_nothing_leaks(
    goals_client: Any, instructor: User
) -> None:
    ada = make_user("student", name="Ada Lovelace-Unique")
    bob = make_user("student", name="Bob Identifiable")
    first = await _create(goals_client, ada, anonymous=True, title="Story one")
    second = await _create(goals_client, ada, anonymous=True, title="Story two")
    other = await _create(goals_client, bob, anonymous=True, title="Story three")
    assert first["author_name"] == second["author_name"]
    assert first["author_name"].startswith("Member ")
    assert other["author_name"] != first["author_name"]
    assert first["author_id"] is None
    for story in (first, second, other):
        await _publish(goals_client, story["id"], instructor)

    # Ada changes her display name; her pseudonym stays.
    renamed = User(
        id=ada.id,
        role="student",
        name="Ada Renamed-Unique",
        token=_token_for(ada.id, "Ada Renamed-Unique"),
    )
    third = await _create(goals_client, renamed, anonymous=True, title="Story four")
    await _publish(goals_client, third["id"], instructor)

    public = {s["id"]: s for s in await _published(goals_client)}
    names = {public[s["id"]]["author_name"] for s in (first, second, third)}
    assert names == {first["author_name"]}
    assert public[other["id"]]["author_name"] == other["author_name"]
    for story in (first, second, third, other):
        item = public[story["id"]]
        assert item["author_id"] is None
        assert set(item) == {
            "id",
            "title",
            "story",
            "earnings_amount",
            "author_name",
            "author_id",
            "published_at",
        }
        text = msgspec.json.encode(item).decode()
        for secret in (
            str(ada.id),
            str(bob.id),
            ada.id.hex,
            bob.id.hex,
            "Ada",
            "Bob",
            "Lovelace",
            "Identifiable",
        ):
            assert secret not in text, secret

    # A signed-in student sees the same public view.
    as_student = {s["id"]: s for s in await _published(goals_client, **bob.headers)}
    assert as_student[first["id"]]["author_id"] is None


def _token_for(user_id: Any, name: str) -> str:
    from community_shared.auth import issue_token

    return issue_token(sub=user_id, role="student", name=name, secret=JWT_SECRET)


async def test_a_named_story_by_an_author_with_a_pseudonym_shows_the_name(
    goals_client: Any, instructor: User
) -> None:
    author = make_user("student")
    hidden = await _create(goals_client, author, anonymous=True)
    named = await _create(goals_client, author, anonymous=False)
    await _publish(goals_client, hidden["id"], instructor)
    await _publish(goals_client, named["id"], instructor)
    public = {s["id"]: s for s in await _published(goals_client)}
    assert public[named["id"]]["author_name"] == author.name
    assert public[hidden["id"]]["author_name"].startswith("Member ")


async def test_publishing_needs_an_existing_story(goals_client: Any, admin: User) -> None:
    missing = make_user().id  # any unknown UUID
    response = await goals_client.post(f"/goals/stories/{missing}/publish", headers=admin.headers)
    assert response.status_code == 404


async def test_published_stories_are_paged_newest_first(
    goals_client: Any, student: User, instructor: User
) -> None:
    ids = []
    for i in range(3):
        story = await _create(goals_client, student, title=f"Part {i}")
        await _publish(goals_client, story["id"], instructor)
        ids.append(story["id"])
    first = await goals_client.get("/goals/stories", params={"limit": 2})
    page = first.json()
    assert [s["id"] for s in page["items"]] == ids[::-1][:2]
    assert page["next_cursor"]
    second = await goals_client.get(
        "/goals/stories", params={"limit": 2, "cursor": page["next_cursor"]}
    )
    assert second.json()["items"][0]["id"] == ids[0]
