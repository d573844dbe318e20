"""Links between resources and other platform entities (SPEC §6)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import make_user
from tests.integration.resources.conftest import CreateResource, table_counts


async def link(
    client: Any, resource_id: str, headers: dict[str, str] | None = None, **body: Any
) -> Any:
    return await client.post(
        f"/resources/{resource_id}/links",
        json=body,
        headers=headers if headers is not None else make_user("instructor").headers,
    )


async def test_linked_listing_in_display_order(
    resources_client: Any, new_resource: CreateResource
) -> None:
    video = str(uuid.uuid4())
    r1, r2, r3, r4 = [await new_resource(title=f"R{i}") for i in range(4)]
    created = await link(
        resources_client,
        r1["id"],
        entity_type="course_video",
        entity_id=video,
        timestamp_seconds=300,
        label="Pricing slide",
        display_order=0,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["resource_id"] == r1["id"] and body["entity_id"] == video
    assert body["entity_type"] == "course_video" and body["label"] == "Pricing slide"
    await link(
        resources_client,
        r2["id"],
        entity_type="course_video",
        entity_id=video,
        timestamp_seconds=None,
        display_order=1,
    )
    await link(
        resources_client,
        r3["id"],
        entity_type="course_video",
        entity_id=video,
        timestamp_seconds=60,
        display_order=5,
    )
    await link(
        resources_client,
        r4["id"],
        entity_type="course_video",
        entity_id=video,
        timestamp_seconds=None,
        display_order=0,
        label="  ",
    )
    # Another entity's links stay out of this listing.
    await link(resources_client, r1["id"], entity_type="course", entity_id=video)

    response = await resources_client.get(f"/resources/linked/course_video/{video}")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [i["id"] for i in items] == [r3["id"], r1["id"], r4["id"], r2["id"]]
    first = items[1]
    assert first["link"] == {
        "id": body["id"],
        "timestamp_seconds": 300,
        "label": "Pricing slide",
        "display_order": 0,
    }
    assert items[2]["link"]["label"] is None
    assert first["title"] == "R0" and "file_url" not in first and first["my_rating"] is None
    assert set(response.json()) == {"items"}

    other = await resources_client.get(f"/resources/linked/course/{video}")
    assert [i["id"] for i in other.json()["items"]] == [r1["id"]]


async def test_one_link_per_resource_and_entity(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    resource = await new_resource()
    post = str(uuid.uuid4())
    first = await link(
        resources_client, resource["id"], entity_type="community_post", entity_id=post
    )
    assert first.status_code == 201
    before = await table_counts(db)
    again = await link(
        resources_client,
        resource["id"],
        entity_type="community_post",
        entity_id=post,
        label="again",
    )
    assert again.status_code == 409
    assert await table_counts(db) == before
    # The same entity id under another type is another entity.
    other = await link(resources_client, resource["id"], entity_type="conversation", entity_id=post)
    assert other.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"entity_type": "lesson", "entity_id": str(uuid.uuid4())},
        {"entity_type": None, "entity_id": str(uuid.uuid4())},
        {"entity_id": str(uuid.uuid4())},
        {"entity_type": "course"},
        {"entity_type": "course", "entity_id": "not-a-uuid"},
        {"entity_type": "course", "entity_id": str(uuid.uuid4()), "timestamp_seconds": -1},
        {"entity_type": "course", "entity_id": str(uuid.uuid4()), "timestamp_seconds": 1.5},
        {"entity_type": "course", "entity_id": str(uuid.uuid4()), "timestamp_seconds": "10"},
        {"entity_type": "course", "entity_id": str(uuid.uuid4()), "display_order": 10**12},
        {"entity_type": "course", "entity_id": str(uuid.uuid4()), "label": "x" * 201},
        {"entity_type": "course", "entity_id": str(uuid.uuid4()), "label": 5},
    ],
)
async def test_bad_links_are_400_and_write_nothing(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource, body: dict[str, Any]
) -> None:
    resource = await new_resource()
    before = await table_counts(db)
    response = await link(resources_client, resource["id"], **body)
    assert response.status_code == 400, response.text
    assert await table_counts(db) == before


async def test_link_permissions_and_missing_resources(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    resource = await new_resource()
    body = {"entity_type": "course", "entity_id": str(uuid.uuid4())}
    before = await table_counts(db)
    assert (await link(resources_client, resource["id"], headers={}, **body)).status_code == 401
    student = make_user("student").headers
    assert (
        await link(resources_client, resource["id"], headers=student, **body)
    ).status_code == 403
    assert (await link(resources_client, str(uuid.uuid4()), **body)).status_code == 404
    assert (await link(resources_client, "nope", **body)).status_code == 400
    assert await table_counts(db) == before


async def test_unknown_entity_type_or_id_in_the_listing(resources_client: Any) -> None:
    response = await resources_client.get(f"/resources/linked/lesson/{uuid.uuid4()}")
    assert response.status_code == 400
    assert "entity_type" in response.json()["detail"]
    assert (await resources_client.get("/resources/linked/course/123")).status_code == 400
    empty = await resources_client.get(f"/resources/linked/course/{uuid.uuid4()}")
    assert empty.json() == {"items": []}


async def test_delete_link(resources_client: Any, new_resource: CreateResource) -> None:
    resource = await new_resource()
    course = str(uuid.uuid4())
    created = (
        await link(resources_client, resource["id"], entity_type="course", entity_id=course)
    ).json()
    path = f"/resources/{resource['id']}/links/{created['id']}"
    assert (await resources_client.delete(path)).status_code == 401
    assert (
        await resources_client.delete(path, headers=make_user("student").headers)
    ).status_code == 403
    other_resource = await new_resource()
    wrong_owner = f"/resources/{other_resource['id']}/links/{created['id']}"
    instructor = make_user("instructor").headers
    assert (await resources_client.delete(wrong_owner, headers=instructor)).status_code == 404
    assert (await resources_client.delete(path, headers=instructor)).status_code == 204
    assert (await resources_client.delete(path, headers=instructor)).status_code == 404
    bad = f"/resources/{resource['id']}/links/zzz"
    assert (await resources_client.delete(bad, headers=instructor)).status_code == 400
    listing = await resources_client.get(f"/resources/linked/course/{course}")
    assert listing.json()["items"] == []
    # Once unlinked, the resource may be linked there again.
    again = await link(resources_client, resource["id"], entity_type="course", entity_id=course)
    assert again.status_code == 201


async def test_drafts_and_deleted_resources_in_linked_listings(
    resources_client: Any, new_resource: CreateResource
) -> None:
    conversation = str(uuid.uuid4())
    draft = await new_resource(publish=False)
    gone = await new_resource()
    live = await new_resource()
    for resource in (draft, gone, live):
        response = await link(
            resources_client, resource["id"], entity_type="conversation", entity_id=conversation
        )
        assert response.status_code == 201
    instructor = make_user("instructor").headers
    await resources_client.delete(f"/resources/{gone['id']}", headers=instructor)
    path = f"/resources/linked/conversation/{conversation}"
    public = (await resources_client.get(path)).json()["items"]
    assert [i["id"] for i in public] == [live["id"]]
    for_moderators = (await resources_client.get(path, headers=instructor)).json()["items"]
    assert {i["id"] for i in for_moderators} == {draft["id"], live["id"]}
