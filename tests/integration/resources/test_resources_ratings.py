"""Ratings: after a download, one per user, exact aggregates (SPEC §6)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import User, make_user
from tests.integration.resources.conftest import (
    CreateResource,
    download_as,
    outbox_events,
    table_counts,
)


async def rate(client: Any, resource_id: str, user: User | None, body: Any) -> Any:
    return await client.put(
        f"/resources/{resource_id}/rating", json=body, headers=user.headers if user else {}
    )


async def test_rate_after_download_and_update(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    resource = await new_resource()
    ada, bob = make_user("student"), make_user("student", member=False)
    await download_as(resources_client, resource["id"], ada)
    await download_as(resources_client, resource["id"], bob)  # free: non-members may download

    first = await rate(resources_client, resource["id"], ada, {"rating": 5, "review": " Great "})
    assert first.status_code == 200, first.text
    assert first.json() == {"rating_average": 5.0, "rating_count": 1}
    second = await rate(resources_client, resource["id"], bob, {"rating": 2})
    assert second.json() == {"rating_average": 3.5, "rating_count": 2}
    # Changing one's mind updates the rating, not the count.
    changed = await rate(resources_client, resource["id"], ada, {"rating": 3})
    assert changed.json() == {"rating_average": 2.5, "rating_count": 2}

    shown = (await resources_client.get(f"/resources/{resource['id']}", headers=ada.headers)).json()
    assert shown["my_rating"] == 3
    assert shown["rating_average"] == 2.5 and shown["rating_count"] == 2

    async with db.acquire() as conn:
        review = await conn.fetchval(
            "SELECT review FROM resources.interactions WHERE resource_id = $1 AND user_id = $2",
            uuid.UUID(resource["id"]),
            ada.id,
        )
    assert review == "Great"  # kept when the update leaves it out

    events = await outbox_events(db, "resources.resource.rated", resource_id=resource["id"])
    assert [(e["data"]["rating"], e["data"]["rating_average"]) for e in events] == [
        (5, 5.0),
        (2, 3.5),
        (3, 2.5),
    ]
    assert events[-1]["data"] == {
        "resource_id": resource["id"],
        "user_id": str(ada.id),
        "rating": 3,
        "download_count": 2,
        "rating_average": 2.5,
        "rating_count": 2,
    }
    assert events[-1]["actor_id"] == str(ada.id)

    # The same rating again: 200, nothing changed, nothing announced.
    same = await rate(resources_client, resource["id"], ada, {"rating": 3})
    assert same.json() == {"rating_average": 2.5, "rating_count": 2}
    assert len(await outbox_events(db, "resources.resource.rated", resource_id=resource["id"])) == 3

    cleared = await rate(resources_client, resource["id"], ada, {"rating": 3, "review": None})
    assert cleared.status_code == 200
    async with db.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT review FROM resources.interactions WHERE resource_id = $1 AND user_id = $2",
                uuid.UUID(resource["id"]),
                ada.id,
            )
            is None
        )


async def test_rating_needs_a_download(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    resource = await new_resource()
    before = await table_counts(db)
    response = await rate(resources_client, resource["id"], make_user("student"), {"rating": 4})
    assert response.status_code == 409
    assert (await rate(resources_client, resource["id"], None, {"rating": 4})).status_code == 401
    # A guest download does not let anyone rate.
    await download_as(resources_client, resource["id"], email="guest@example.com")
    before = await table_counts(db)
    assert (await rate(resources_client, resource["id"], None, {"rating": 4})).status_code == 401
    assert await table_counts(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {"rating": 0},
        {"rating": 6},
        {"rating": -1},
        {"rating": "x"},
        {"rating": "5"},
        {"rating": 2.5},
        {"rating": 4.0},
        {"rating": None},
        {"rating": True},
        {"rating": 10**40},
        {},
        {"rating": 4, "review": 7},
        {"rating": 4, "review": "r" * 2001},
        {"rating": 4, "review": "nul\x00"},
        [4],
        "4",
    ],
)
async def test_bad_ratings_are_400_and_write_nothing(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource, body: Any
) -> None:
    resource = await new_resource()
    student = make_user("student")
    await download_as(resources_client, resource["id"], student)
    before = await table_counts(db)
    response = await rate(resources_client, resource["id"], student, body)
    assert response.status_code == 400, response.text
    assert await table_counts(db) == before
    shown = (await resources_client.get(f"/resources/{resource['id']}")).json()
    assert shown["rating_count"] == 0


async def test_rating_missing_hidden_or_malformed(
    resources_client: Any, new_resource: CreateResource
) -> None:
    student = make_user("student")
    assert (
        await rate(resources_client, str(uuid.uuid4()), student, {"rating": 3})
    ).status_code == 404
    assert (await rate(resources_client, "x", student, {"rating": 3})).status_code == 400
    draft = await new_resource(publish=False)
    assert (await rate(resources_client, draft["id"], student, {"rating": 3})).status_code == 404


async def test_twenty_concurrent_ratings_are_exact(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    resource = await new_resource()
    users = [make_user("student") for _ in range(20)]
    ratings = [(i % 5) + 1 for i in range(20)]
    ratings[-1] = 4  # sum 59 over 20
    for user in users:
        await download_as(resources_client, resource["id"], user)
    responses = await asyncio.gather(
        *(
            rate(resources_client, resource["id"], u, {"rating": r})
            for u, r in zip(users, ratings, strict=True)
        )
    )
    assert {r.status_code for r in responses} == {200}
    shown = (await resources_client.get(f"/resources/{resource['id']}")).json()
    assert shown["rating_count"] == 20
    assert sum(ratings) == 59 and shown["rating_average"] == 2.95
    # And every one of them changing their rating at once, plus a burst of downloads.
    await asyncio.gather(
        *(rate(resources_client, resource["id"], u, {"rating": 5}) for u in users),
        *(download_as(resources_client, resource["id"], u) for u in users),
    )
    shown = (await resources_client.get(f"/resources/{resource['id']}")).json()
    assert (shown["rating_count"], shown["rating_average"]) == (20, 5.0)
    assert shown["download_count"] == 40
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT rating_sum, rating_count FROM resources.resources WHERE id = $1",
            uuid.UUID(resource["id"]),
        )
    assert (row["rating_sum"], row["rating_count"]) == (100, 20)
    last = (await outbox_events(db, resource_id=resource["id"]))[-1]["data"]
    assert last["download_count"] == 40 and last["rating_count"] == 20
