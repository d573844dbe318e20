"""The library listing: filters, sorts and keyset pages (SPEC §3, §6)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.conftest import User, make_user
from tests.integration.resources.conftest import CreateResource, download_as


def raw_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


async def list_ids(client: Any, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    response = await client.get("/resources", params=params, headers=headers or {})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def all_pages(client: Any, **params: Any) -> list[dict[str, Any]]:
    """Walk every page; fail on a repeated item."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await client.get("/resources", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "a page repeated an item"
    return items


async def test_filters(resources_client: Any, new_resource: CreateResource, tag: str) -> None:
    a = await new_resource(
        tags=[tag, "cold email"],
        type="template",
        category="marketing",
        access="free",
        difficulty="beginner",
        title="Cold email swipe file",
    )
    b = await new_resource(
        tags=[tag],
        type="spreadsheet",
        category="business",
        access="members",
        difficulty="advanced",
        title="Pricing calculator",
        description="Work out your retainer",
    )
    c = await new_resource(
        tags=[tag, "cold email"],
        type="video",
        category="marketing",
        access="members",
        difficulty=None,
        title="Follow-up sequences",
        is_featured=True,
    )
    get = resources_client
    assert set(await list_ids(get, tag=tag)) == {a["id"], b["id"], c["id"]}
    assert set(await list_ids(get, tag=tag, category="marketing")) == {a["id"], c["id"]}
    assert await list_ids(get, tag=tag, type="spreadsheet") == [b["id"]]
    assert await list_ids(get, tag=tag, access="free") == [a["id"]]
    assert await list_ids(get, tag=tag, difficulty="advanced") == [b["id"]]
    assert await list_ids(get, tag=tag, featured="true") == [c["id"]]
    # Several tags: resources carrying all of them; tags match case-insensitively.
    assert set(await list_ids(get, tag=[tag, "Cold Email"])) == {a["id"], c["id"]}
    # Full-text search over title, tags and description (stemmed).
    assert await list_ids(get, tag=tag, q="calculators") == [b["id"]]
    assert await list_ids(get, tag=tag, q="retainer") == [b["id"]]
    assert set(await list_ids(get, tag=tag, q="cold email")) == {a["id"], c["id"]}
    assert await list_ids(get, tag=tag, q='"swipe file" -video') == [a["id"]]
    assert await list_ids(get, tag=tag, q="the") == []  # only a stop word: matches nothing
    assert set(await list_ids(get, tag=tag, q="   ")) == {a["id"], b["id"], c["id"]}
    # Guests see members-only resources in listings (only downloading is restricted).
    assert b["id"] in await list_ids(get, tag=tag, access="members")


@pytest.mark.parametrize(
    "params",
    [
        {"category": "sales"},
        {"type": "ebook"},
        {"access": "premium"},
        {"difficulty": "expert"},
        {"sort": "random"},
        {"sort": ""},
        {"status": "deleted"},
        {"featured": "maybe"},
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"cursor": "!!!"},
        {"cursor": "bm90IGpzb24"},
        {"cursor": base64.urlsafe_b64encode(b'["newest", "yesterday", "x"]').decode()},
        {"cursor": raw_cursor("downloads", -1, str(uuid.uuid4()))},
        {"cursor": raw_cursor("rating", "NaN", 0, str(uuid.uuid4()))},
        {"cursor": raw_cursor("rating", "9", 0, str(uuid.uuid4()))},
        {"cursor": raw_cursor("rating", "4", 2**31, str(uuid.uuid4()))},
        {"cursor": raw_cursor("rating", None, 2**40, str(uuid.uuid4()))},
        {"cursor": raw_cursor("popular", 2**63, 0, str(uuid.uuid4()))},
        {"cursor": raw_cursor("newest", "2024-01-01T00:00:00", str(uuid.uuid4()))},
        {"tag": "x" * 41},
        {"q": "x" * 201},
        {"q": "nul\x00"},
    ],
)
async def test_bad_filters_are_400(resources_client: Any, params: dict[str, Any]) -> None:
    response = await resources_client.get("/resources", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


async def test_a_cursor_belongs_to_its_sort(
    resources_client: Any, new_resource: CreateResource, tag: str
) -> None:
    for _ in range(3):
        await new_resource(tags=[tag])
    page = (await resources_client.get("/resources", params={"tag": tag, "limit": 1})).json()
    assert page["next_cursor"]
    response = await resources_client.get(
        "/resources", params={"tag": tag, "sort": "downloads", "cursor": page["next_cursor"]}
    )
    assert response.status_code == 400


async def rate_as(client: Any, resource_id: str, user: User, rating: int) -> None:
    assert (await download_as(client, resource_id, user)).status_code == 200
    response = await client.put(
        f"/resources/{resource_id}/rating", json={"rating": rating}, headers=user.headers
    )
    assert response.status_code == 200, response.text


async def test_sorts_page_through_every_item_once(
    resources_client: Any, new_resource: CreateResource, tag: str
) -> None:
    created = [await new_resource(tags=[tag], title=f"Item {i}") for i in range(7)]
    ids = [c["id"] for c in created]
    downloads = [3, 0, 5, 1, 5, 3, 2]
    ratings: list[list[int]] = [[4], [], [5, 4], [2], [], [4, 5, 3], [5]]
    for resource_id, count, stars in zip(ids, downloads, ratings, strict=True):
        raters = [make_user("student") for _ in stars]
        for user, rating in zip(raters, stars, strict=True):
            await rate_as(resources_client, resource_id, user, rating)
        for _ in range(count - len(stars)):
            await download_as(resources_client, resource_id, make_user("student"))

    newest = await all_pages(resources_client, tag=tag, limit=2)
    assert [i["id"] for i in newest] == ids[::-1]

    by_downloads = await all_pages(resources_client, tag=tag, sort="downloads", limit=2)
    counts = [i["download_count"] for i in by_downloads]
    assert counts == [5, 5, 3, 3, 2, 1, 0]
    # Ties are broken the same way on every page: by id, descending.
    assert by_downloads[0]["id"] > by_downloads[1]["id"]

    by_rating = await all_pages(resources_client, tag=tag, sort="rating", limit=2)
    averages = [i["rating_average"] for i in by_rating]
    assert averages == [5.0, 4.5, 4.0, 4.0, 2.0, None, None]
    # Same average: more ratings first.
    assert [i["rating_count"] for i in by_rating[2:4]] == [3, 1]

    popular = await all_pages(resources_client, tag=tag, sort="popular", limit=3)
    assert [i["download_count"] for i in popular] == [5, 5, 3, 3, 2, 1, 0]
    assert {i["id"] for i in popular} == set(ids)


async def test_new_items_do_not_shift_a_page(
    resources_client: Any, new_resource: CreateResource, tag: str
) -> None:
    first = [await new_resource(tags=[tag]) for _ in range(4)]
    page = (await resources_client.get("/resources", params={"tag": tag, "limit": 2})).json()
    await new_resource(tags=[tag])  # arrives meanwhile, at the top
    rest = (
        await resources_client.get(
            "/resources", params={"tag": tag, "limit": 2, "cursor": page["next_cursor"]}
        )
    ).json()
    seen = [i["id"] for i in page["items"] + rest["items"]]
    assert seen == [c["id"] for c in first][::-1]
    assert rest["next_cursor"] is None


async def test_my_rating_and_no_file_url_in_lists(
    resources_client: Any, new_resource: CreateResource, tag: str
) -> None:
    rated = await new_resource(tags=[tag])
    student = make_user("student")
    await rate_as(resources_client, rated["id"], student, 3)
    mine = (
        await resources_client.get("/resources", params={"tag": tag}, headers=student.headers)
    ).json()["items"][0]
    assert mine["my_rating"] == 3
    assert "file_url" not in mine
    theirs = (await resources_client.get("/resources", params={"tag": tag})).json()["items"][0]
    assert theirs["my_rating"] is None


async def test_list_queries_use_their_indexes(db: asyncpg.Pool) -> None:
    """With sequential scans off, each list shape is answered from an index."""
    queries = {
        "resources_newest": "ORDER BY r.published_at DESC, r.id DESC",
        "resources_downloads": "ORDER BY r.download_count DESC, r.id DESC",
        "resources_popular": "ORDER BY r.recent_downloads DESC, r.download_count DESC, r.id DESC",
        "resources_rating": "ORDER BY r.rating_avg DESC NULLS LAST, r.rating_count DESC, r.id DESC",
    }
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        for index, order in queries.items():
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN SELECT r.id FROM resources.resources r"
                    " WHERE r.deleted_at IS NULL AND r.published_at IS NOT NULL "
                    f"{order} LIMIT 21"
                )
            )
            assert index in plan, plan
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT l.id FROM resources.links l WHERE l.entity_type = 'course'"
                " AND l.entity_id = $1 ORDER BY l.timestamp_seconds ASC NULLS LAST,"
                " l.display_order ASC, l.id ASC",
                uuid.uuid4(),
            )
        )
        assert "links_by_entity" in plan, plan


@pytest.mark.parametrize(
    "cursor",
    [
        raw_cursor("rating", "4", 2**31 - 1, "00000000-0000-0000-0000-000000000000"),
        raw_cursor("rating", None, 2**31 - 1, "ffffffff-ffff-ffff-ffff-ffffffffffff"),
        raw_cursor("popular", 2**63 - 1, 2**63 - 1, "ffffffff-ffff-ffff-ffff-ffffffffffff"),
        raw_cursor("newest", "9999-12-31T23:59:59Z", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
        raw_cursor("newest", "0001-01-01T00:00:00-14:00", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
    ],
)
async def test_extreme_but_well_formed_cursors(resources_client: Any, cursor: str) -> None:
    sort = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))[0]
    response = await resources_client.get("/resources", params={"sort": sort, "cursor": cursor})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_cursor_times_outside_the_calendar_are_400(
    resources_client: Any, moment: str
) -> None:
    cursor = raw_cursor("newest", moment, str(uuid.uuid4()))
    response = await resources_client.get("/resources", params={"cursor": cursor})
    assert response.status_code == 400, response.text
