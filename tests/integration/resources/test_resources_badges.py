"""`is_new`, `is_popular` and the moving 30-day window (SPEC §6)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import pytest
from community_resources import service

from tests.conftest import make_user
from tests.integration.resources.conftest import CreateResource, download_as


async def shown(client: Any, resource_id: str) -> dict[str, Any]:
    response = await client.get(f"/resources/{resource_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def downloads(client: Any, resource_id: str, count: int) -> None:
    student = make_user("student")
    for _ in range(count):
        assert (await download_as(client, resource_id, student)).status_code == 200


async def test_is_new_for_fourteen_days(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    fresh = await new_resource()
    old = await new_resource()
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE resources.resources SET published_at = now() - interval '15 days'"
            " WHERE id = $1",
            uuid.UUID(old["id"]),
        )
    assert (await shown(resources_client, fresh["id"]))["is_new"] is True
    assert (await shown(resources_client, old["id"]))["is_new"] is False


@pytest.mark.usefixtures("empty_library")
async def test_popular_is_the_top_tenth_with_at_least_ten_downloads(
    resources_client: Any, new_resource: CreateResource, tag: str
) -> None:
    library = [await new_resource(tags=[tag]) for _ in range(20)]  # top 10% = 2 places
    first, second, third = library[0]["id"], library[1]["id"], library[2]["id"]
    await downloads(resources_client, first, 12)
    await downloads(resources_client, second, 9)
    await downloads(resources_client, third, 3)
    # Second place has only 9 downloads: below the floor of 10.
    assert (await shown(resources_client, first))["is_popular"] is True
    assert (await shown(resources_client, second))["is_popular"] is False

    await downloads(resources_client, second, 1)
    assert (await shown(resources_client, second))["is_popular"] is True
    # A third one tied with second place shares it; fourth place is out.
    await downloads(resources_client, third, 7)
    assert (await shown(resources_client, third))["is_popular"] is True
    await downloads(resources_client, first, 1)
    await downloads(resources_client, second, 2)
    assert (await shown(resources_client, third))["is_popular"] is False

    page = (await resources_client.get("/resources", params={"tag": tag, "sort": "popular"})).json()
    top = page["items"][:3]
    assert [i["id"] for i in top] == [first, second, third]
    assert [i["is_popular"] for i in top] == [True, True, False]


@pytest.mark.usefixtures("empty_library")
async def test_old_downloads_leave_the_window(
    resources_client: Any, db: asyncpg.Pool, new_resource: CreateResource
) -> None:
    resource = await new_resource()
    rid = uuid.UUID(resource["id"])
    await downloads(resources_client, resource["id"], 3)
    today = dt.datetime.now(dt.UTC).date()
    async with db.acquire() as conn:
        # Downloads counted on earlier days: 29 days ago is still inside the window, 30 is not.
        await conn.execute(
            "INSERT INTO resources.download_days (resource_id, day, downloads) VALUES"
            " ($1, $2, 20), ($1, $3, 5)",
            rid,
            today - dt.timedelta(days=30),
            today - dt.timedelta(days=29),
        )
        await conn.execute(
            "UPDATE resources.resources SET recent_downloads = recent_downloads + 25,"
            " download_count = download_count + 25 WHERE id = $1",
            rid,
        )
    assert (await shown(resources_client, resource["id"]))["is_popular"] is True

    await service.expire_download_days(db, today)
    assert await service.expire_download_days(db, today) == 0  # idempotent
    async with db.acquire() as conn:
        recent = await conn.fetchval(
            "SELECT recent_downloads FROM resources.resources WHERE id = $1", rid
        )
    assert recent == 8
    body = await shown(resources_client, resource["id"])
    assert body["download_count"] == 28  # the all-time count never shrinks
    assert body["is_popular"] is False

    # The next day, the 29-day-old bucket leaves too.
    assert await service.expire_download_days(db, today + dt.timedelta(days=1)) == 1
    async with db.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT recent_downloads FROM resources.resources WHERE id = $1", rid
            )
            == 3
        )
