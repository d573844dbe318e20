"""Downloads: who gets the file, email capture, exact counts (SPEC §6)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import make_user
from tests.integration.resources.conftest import (
    CreateResource,
    download_as,
    outbox_events,
    table_counts,
)

URL = "https://files.example.com/playbook.pdf"


async def download_count(client: Any, resource_id: str) -> int:
    count: int = (await client.get(f"/resources/{resource_id}")).json()["download_count"]
    return count


async def test_members_download_any_published_resource(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    free = await new_resource(access="free")
    members = await new_resource(access="members")
    for user in (make_user("student"), make_user("instructor"), make_user("admin")):
        for resource in (free, members):
            response = await download_as(resources_client, resource["id"], user)
            assert response.status_code == 200, response.text
            assert response.json() == {"url": URL}
    assert await download_count(resources_client, members["id"]) == 3

    student = make_user("student")
    await download_as(resources_client, members["id"], student)
    await download_as(resources_client, members["id"], student)
    async with db.acquire() as conn:
        own = await conn.fetchval(
            "SELECT download_count FROM resources.interactions"
            " WHERE resource_id = $1 AND user_id = $2",
            uuid.UUID(members["id"]),
            student.id,
        )
    assert own == 2
    assert await download_count(resources_client, members["id"]) == 5

    events = await outbox_events(db, "resources.resource.downloaded", resource_id=members["id"])
    assert [e["data"]["download_count"] for e in events] == [1, 2, 3, 4, 5]
    assert events[-1]["data"] == {
        "resource_id": members["id"],
        "user_id": str(student.id),
        "download_count": 5,
        "rating_average": None,
        "rating_count": 0,
    }
    assert events[-1]["actor_id"] == str(student.id)


async def test_guests_download_free_resources_with_an_email(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    free = await new_resource(access="free")
    response = await download_as(resources_client, free["id"], email="  Ada@Example.COM ")
    assert response.status_code == 200, response.text
    assert response.json() == {"url": URL}
    await download_as(resources_client, free["id"], email="ada@example.com")
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT guest_email, user_id, download_count FROM resources.interactions"
            " WHERE resource_id = $1",
            uuid.UUID(free["id"]),
        )
    assert [dict(r) for r in rows] == [
        {"guest_email": "ada@example.com", "user_id": None, "download_count": 2}
    ]
    assert await download_count(resources_client, free["id"]) == 2
    # The email is never shown: not in the resource, not in any event.
    events = await outbox_events(db, resource_id=free["id"])
    assert events and all("example.com" not in str(e) for e in events)
    assert events[-1]["data"]["user_id"] is None and events[-1]["actor_id"] is None
    shown = await resources_client.get(
        f"/resources/{free['id']}", headers=make_user("admin").headers
    )
    assert "example.com" not in shown.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"email": None}, 400),
        ({"email": ""}, 400),
        ({"email": "not-an-email"}, 400),
        ({"email": "a@b"}, 400),
        ({"email": "a@@example.com"}, 400),
        ({"email": "a b@example.com"}, 400),
        ({"email": "a@example..com"}, 400),
        ({"email": "x" * 250 + "@example.com"}, 400),
        ({"email": 12}, 400),
        ({"email": ["a@example.com"]}, 400),
    ],
)
async def test_guest_download_needs_a_valid_email(
    resources_client: Any,
    db: asyncpg.Pool,
    new_resource: CreateResource,
    body: dict[str, Any],
    status: int,
) -> None:
    free = await new_resource(access="free")
    before = await table_counts(db)
    response = await resources_client.post(f"/resources/{free['id']}/download", json=body)
    assert response.status_code == status, response.text
    assert await table_counts(db) == before


async def test_members_only_resources(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    members = await new_resource(access="members")
    before = await table_counts(db)
    guest = await download_as(resources_client, members["id"], email="ada@example.com")
    assert guest.status_code == 401
    no_body = await resources_client.post(f"/resources/{members['id']}/download")
    assert no_body.status_code == 401
    non_member = make_user("student", member=False)
    assert (await download_as(resources_client, members["id"], non_member)).status_code == 403
    assert await table_counts(db) == before
    assert await download_count(resources_client, members["id"]) == 0


async def test_non_members_and_signed_in_users_need_no_email_for_free_resources(
    resources_client: Any, new_resource: CreateResource
) -> None:
    free = await new_resource(access="free")
    non_member = make_user("student", member=False)
    response = await resources_client.post(
        f"/resources/{free['id']}/download", headers=non_member.headers
    )
    assert response.status_code == 200
    assert response.json() == {"url": URL}
    assert await download_count(resources_client, free["id"]) == 1


async def test_download_of_missing_or_malformed_ids(resources_client: Any) -> None:
    student = make_user("student")
    assert (await download_as(resources_client, str(uuid.uuid4()), student)).status_code == 404
    assert (await download_as(resources_client, "abc", student)).status_code == 400


async def test_a_moderator_previews_a_draft_without_counting(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    draft = await new_resource(publish=False)
    instructor = make_user("instructor")
    before = await table_counts(db)
    response = await download_as(resources_client, draft["id"], instructor)
    assert response.json() == {"url": URL}
    assert await table_counts(db) == before
    student = make_user("student")
    assert (await download_as(resources_client, draft["id"], student)).status_code == 404


async def test_forty_concurrent_downloads_count_forty(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    resource = await new_resource(access="members")
    students = [make_user("student") for _ in range(20)]
    responses = await asyncio.gather(
        *(download_as(resources_client, resource["id"], students[i % 20]) for i in range(40))
    )
    assert [r.status_code for r in responses] == [200] * 40
    assert await download_count(resources_client, resource["id"]) == 40
    async with db.acquire() as conn:
        per_user = await conn.fetch(
            "SELECT download_count FROM resources.interactions WHERE resource_id = $1",
            uuid.UUID(resource["id"]),
        )
        bucket = await conn.fetchval(
            "SELECT sum(downloads) FROM resources.download_days WHERE resource_id = $1",
            uuid.UUID(resource["id"]),
        )
    assert sorted(r["download_count"] for r in per_user) == [2] * 20
    assert bucket == 40
    events = await outbox_events(db, "resources.resource.downloaded", resource_id=resource["id"])
    # One event per download, each with the count right after it: every value exactly once.
    assert sorted(e["data"]["download_count"] for e in events) == list(range(1, 41))


async def test_concurrent_guest_downloads(
    resources_client: Any, new_resource: CreateResource
) -> None:
    resource = await new_resource(access="free")
    responses = await asyncio.gather(
        *(
            download_as(resources_client, resource["id"], email=f"g{i % 3}@example.com")
            for i in range(15)
        )
    )
    assert {r.status_code for r in responses} == {200}
    assert await download_count(resources_client, resource["id"]) == 15


async def test_edits_during_downloads_keep_the_count(
    resources_client: Any, new_resource: CreateResource
) -> None:
    resource = await new_resource(access="members")
    editor = make_user("instructor")
    student = make_user("student")
    results = await asyncio.gather(
        *(download_as(resources_client, resource["id"], student) for _ in range(20)),
        *(
            resources_client.patch(
                f"/resources/{resource['id']}",
                json={"title": f"Edition {i}", "is_featured": i % 2 == 0},
                headers=editor.headers,
            )
            for i in range(10)
        ),
    )
    assert {r.status_code for r in results} == {200}
    assert await download_count(resources_client, resource["id"]) == 20
