"""Creating, reading, changing and deleting resources (SPEC §6), drafts included."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import make_user
from tests.integration.resources.conftest import (
    CreateResource,
    outbox_events,
    resource_body,
    table_counts,
)

PUBLIC_FIELDS = {
    "id",
    "title",
    "description",
    "type",
    "category",
    "access",
    "file_size",
    "format",
    "mime_type",
    "difficulty",
    "tags",
    "source_type",
    "source_id",
    "download_count",
    "rating_average",
    "rating_count",
    "is_new",
    "is_popular",
    "is_featured",
    "created_by",
    "created_at",
    "published_at",
}


async def test_instructor_creates_a_published_resource(
    resources_client: Any, db: asyncpg.Pool
) -> None:
    instructor = make_user("instructor")
    body = resource_body(
        title="  Proposal template  ",
        tags=["Proposals", " proposals ", "Sales  Calls"],
        source_type="community_post",
        source_id="abc",
        is_featured=True,
    )
    response = await resources_client.post("/resources", json=body, headers=instructor.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == PUBLIC_FIELDS | {"my_rating"}
    assert created["title"] == "Proposal template"
    assert created["tags"] == ["proposals", "sales calls"]
    assert created["created_by"] == str(instructor.id)
    assert created["published_at"] is not None
    assert created["is_new"] is True and created["is_featured"] is True
    assert created["download_count"] == 0 and created["rating_count"] == 0
    assert created["rating_average"] is None and created["my_rating"] is None
    assert "file_url" not in created

    events = await outbox_events(db, "resources.resource.created", id=created["id"])
    assert len(events) == 1
    assert events[0]["source"] == "resources"
    assert events[0]["actor_id"] == str(instructor.id)
    assert set(events[0]["data"]) == PUBLIC_FIELDS
    assert events[0]["data"]["published_at"] == created["published_at"]


async def test_defaults_members_only_and_published(resources_client: Any) -> None:
    admin = make_user("admin")
    body = {
        "title": "Minimal",
        "type": "code",
        "category": "development",
        "file_url": "https://cdn.example.com/x.zip",
    }
    response = await resources_client.post("/resources", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["access"] == "members"
    assert created["published_at"] is not None
    assert created["tags"] == [] and created["difficulty"] is None
    assert created["is_featured"] is False


@pytest.mark.parametrize(
    ("role", "member", "status"),
    [(None, None, 401), ("student", None, 403), ("student", False, 403)],
)
async def test_only_instructors_and_admins_create(
    resources_client: Any, db: asyncpg.Pool, role: str | None, member: bool | None, status: int
) -> None:
    headers = make_user(role, member=member).headers if role else {}
    before = await table_counts(db)
    response = await resources_client.post("/resources", json=resource_body(), headers=headers)
    assert response.status_code == status
    assert await table_counts(db) == before


BAD_BODIES: list[dict[str, Any]] = [
    {"title": None},
    {"title": "   "},
    {"title": "x" * 201},
    {"title": "nul\x00byte"},
    {"title": 42},
    {"type": "ebook"},
    {"type": None},
    {"category": "sales"},
    {"access": "premium"},
    {"difficulty": "expert"},
    {"file_url": "http://insecure.example.com/a.pdf"},
    {"file_url": "ftp://example.com/a.pdf"},
    {"file_url": "https://"},
    {"file_url": "https://exa mple.com/a.pdf"},
    {"file_url": "https://example.com:99999999/a"},
    {"file_url": "not a url"},
    {"file_size": -1},
    {"file_size": 1.5},
    {"file_size": "12"},
    {"file_size": 10**30},
    {"mime_type": "pdf"},
    {"tags": "outreach"},
    {"tags": [""]},
    {"tags": [f"tag{i}" for i in range(21)]},
    {"tags": ["x" * 41]},
    {"tags": [1]},
    {"is_featured": "yes"},
    {"publish": 1},
    {"description": "d" * 5001},
]


@pytest.mark.parametrize("override", BAD_BODIES, ids=[str(b)[:40] for b in BAD_BODIES])
async def test_bad_bodies_are_400_and_write_nothing(
    resources_client: Any, db: asyncpg.Pool, override: dict[str, Any]
) -> None:
    instructor = make_user("instructor")
    before = await table_counts(db)
    response = await resources_client.post(
        "/resources", json=resource_body(**override), headers=instructor.headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["status_code"] == 400
    assert await table_counts(db) == before


@pytest.mark.parametrize("missing", ["title", "type", "category", "file_url"])
async def test_required_fields(resources_client: Any, db: asyncpg.Pool, missing: str) -> None:
    body = resource_body()
    del body[missing]
    before = await table_counts(db)
    response = await resources_client.post(
        "/resources", json=body, headers=make_user("instructor").headers
    )
    assert response.status_code == 400
    assert await table_counts(db) == before


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"null", b"{", b'"text"', b'{"title": "\xff"}', b'{"title": "\\ud800"}']
)
async def test_malformed_json_is_400(resources_client: Any, db: asyncpg.Pool, raw: bytes) -> None:
    before = await table_counts(db)
    response = await resources_client.post(
        "/resources",
        content=raw,
        headers={**make_user("instructor").headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert await table_counts(db) == before


async def test_anyone_reads_a_published_resource(
    resources_client: Any, new_resource: CreateResource
) -> None:
    created = await new_resource()
    for headers in ({}, make_user("student").headers, make_user("student", member=False).headers):
        response = await resources_client.get(f"/resources/{created['id']}", headers=headers)
        assert response.status_code == 200
        assert response.json()["id"] == created["id"]
        assert "file_url" not in response.json()


async def test_missing_and_malformed_ids(resources_client: Any) -> None:
    assert (await resources_client.get(f"/resources/{uuid.uuid4()}")).status_code == 404
    response = await resources_client.get("/resources/not-a-uuid")
    assert response.status_code == 400
    assert "UUID" in response.json()["detail"]


async def test_drafts_are_visible_to_moderators_only(
    resources_client: Any, new_resource: CreateResource, tag: str
) -> None:
    draft = await new_resource(publish=False, tags=[tag])
    assert draft["published_at"] is None and draft["is_new"] is False
    path = f"/resources/{draft['id']}"

    for headers in ({}, make_user("student").headers):
        assert (await resources_client.get(path, headers=headers)).status_code == 404
        listed = await resources_client.get("/resources", params={"tag": tag}, headers=headers)
        assert listed.json()["items"] == []
        download = await resources_client.post(
            f"{path}/download", json={"email": "a@example.com"}, headers=headers
        )
        assert download.status_code == 404
    other_instructor = make_user("instructor")
    assert (await resources_client.get(path, headers=other_instructor.headers)).status_code == 200
    # Moderators list drafts explicitly; the public listing never has them.
    drafts = await resources_client.get(
        "/resources", params={"status": "draft", "tag": tag}, headers=other_instructor.headers
    )
    assert [r["id"] for r in drafts.json()["items"]] == [draft["id"]]
    published = await resources_client.get(
        "/resources", params={"tag": tag}, headers=other_instructor.headers
    )
    assert published.json()["items"] == []
    forbidden = await resources_client.get(
        "/resources", params={"status": "draft"}, headers=make_user("student").headers
    )
    assert forbidden.status_code == 403
    assert (await resources_client.get("/resources", params={"status": "draft"})).status_code == 401


async def test_publishing_a_draft(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource, tag: str
) -> None:
    draft = await new_resource(publish=False, tags=[tag])
    created_events = await outbox_events(db, "resources.resource.created", id=draft["id"])
    assert created_events[0]["data"]["published_at"] is None

    editor = make_user("admin")
    response = await resources_client.patch(
        f"/resources/{draft['id']}", json={"publish": True}, headers=editor.headers
    )
    assert response.status_code == 200, response.text
    published = response.json()
    assert published["published_at"] is not None and published["is_new"] is True
    listed = await resources_client.get("/resources", params={"tag": tag})
    assert [r["id"] for r in listed.json()["items"]] == [draft["id"]]
    updates = await outbox_events(db, "resources.resource.updated", id=draft["id"])
    assert len(updates) == 1
    assert updates[0]["data"]["published_at"] == published["published_at"]
    assert updates[0]["actor_id"] == str(editor.id)

    # Publishing again changes nothing; going back to draft is a conflict.
    again = await resources_client.patch(
        f"/resources/{draft['id']}", json={"publish": True}, headers=editor.headers
    )
    assert again.json()["published_at"] == published["published_at"]
    back = await resources_client.patch(
        f"/resources/{draft['id']}", json={"publish": False}, headers=editor.headers
    )
    assert back.status_code == 409
    assert len(await outbox_events(db, "resources.resource.updated", id=draft["id"])) == 1


async def test_patch_changes_only_what_is_given(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    created = await new_resource(difficulty="advanced", description="Old")
    path = f"/resources/{created['id']}"
    instructor = make_user("instructor")
    response = await resources_client.patch(
        path,
        json={"title": " New title ", "is_featured": True, "difficulty": None, "tags": ["A", "b"]},
        headers=instructor.headers,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["title"] == "New title"
    assert updated["is_featured"] is True
    assert updated["difficulty"] is None
    assert updated["tags"] == ["a", "b"]
    assert updated["description"] == "Old"
    assert updated["published_at"] == created["published_at"]
    events = await outbox_events(db, "resources.resource.updated", id=created["id"])
    assert len(events) == 1 and events[0]["data"]["title"] == "New title"
    assert "file_url" not in events[0]["data"]

    # The same values again: 200, nothing to announce.
    same = await resources_client.patch(
        path, json={"title": "New title", "is_featured": True}, headers=instructor.headers
    )
    assert same.status_code == 200
    assert len(await outbox_events(db, "resources.resource.updated", id=created["id"])) == 1

    # A new file URL is what downloads hand out from now on.
    await resources_client.patch(
        path, json={"file_url": "https://files.example.com/v2.pdf"}, headers=instructor.headers
    )
    download = await resources_client.post(
        f"{path}/download", json={}, headers=make_user("student").headers
    )
    assert download.json() == {"url": "https://files.example.com/v2.pdf"}


@pytest.mark.parametrize(
    "body",
    [
        {"title": None},
        {"title": ""},
        {"type": "ebook"},
        {"category": None},
        {"access": "everyone"},
        {"file_url": "http://example.com/a"},
        {"tags": None},
        {"is_featured": None},
        {"publish": "true"},
        {"file_size": -5},
    ],
)
async def test_bad_patches_write_nothing(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource, body: dict[str, Any]
) -> None:
    created = await new_resource()
    before = await table_counts(db)
    response = await resources_client.patch(
        f"/resources/{created['id']}", json=body, headers=make_user("instructor").headers
    )
    assert response.status_code == 400, response.text
    assert await table_counts(db) == before
    unchanged = await resources_client.get(f"/resources/{created['id']}")
    assert unchanged.json() == created | {"is_new": True}


async def test_only_moderators_write(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    created = await new_resource()
    path = f"/resources/{created['id']}"
    before = await table_counts(db)
    for user, status in ((None, 401), (make_user("student"), 403)):
        headers = user.headers if user else {}
        assert (
            await resources_client.patch(path, json={"title": "x"}, headers=headers)
        ).status_code == status
        assert (await resources_client.delete(path, headers=headers)).status_code == status
    assert await table_counts(db) == before
    bad_token = {"Authorization": "Bearer not.a.token"}
    assert (await resources_client.get(path, headers=bad_token)).status_code == 401


async def test_patch_and_delete_of_missing_resources(resources_client: Any) -> None:
    headers = make_user("instructor").headers
    missing = f"/resources/{uuid.uuid4()}"
    assert (
        await resources_client.patch(missing, json={"title": "x"}, headers=headers)
    ).status_code == 404
    assert (await resources_client.delete(missing, headers=headers)).status_code == 404
    assert (
        await resources_client.patch("/resources/nope", json={}, headers=headers)
    ).status_code == 400


async def test_soft_delete(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource, tag: str
) -> None:
    created = await new_resource(tags=[tag])
    path = f"/resources/{created['id']}"
    instructor = make_user("instructor")
    response = await resources_client.delete(path, headers=instructor.headers)
    assert response.status_code == 204
    assert (await resources_client.get(path, headers=instructor.headers)).status_code == 404
    assert (await resources_client.get("/resources", params={"tag": tag})).json()["items"] == []
    assert (await resources_client.delete(path, headers=instructor.headers)).status_code == 404
    assert (
        await resources_client.patch(path, json={"title": "x"}, headers=instructor.headers)
    ).status_code == 404
    download = await resources_client.post(
        f"{path}/download", json={}, headers=make_user("student").headers
    )
    assert download.status_code == 404
    events = await outbox_events(db, "resources.resource.deleted", id=created["id"])
    assert len(events) == 1 and events[0]["data"] == {"id": created["id"]}
    async with db.acquire() as conn:
        assert await conn.fetchval(
            "SELECT deleted_at IS NOT NULL FROM resources.resources WHERE id = $1",
            uuid.UUID(created["id"]),
        )
