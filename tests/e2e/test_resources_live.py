"""The library live, through the websocket gateway: the `resources` channel (SPEC §9).

A browser subscribed to `resources` sees new and changed resources and their
stats as they happen; a burst of downloads reaches it as a bounded number of
`resource.stats` frames whose last one has the exact final count.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from tests.conftest import make_user
from tests.integration.resources.conftest import resource_body

pytest.importorskip("community_gateway.server")

COALESCE_SECONDS = 0.3  # the gateway sends at most one stats frame per resource per ~300 ms


def of_resource(resource_id: str) -> Any:
    def match(frame: dict[str, Any]) -> bool:
        data = frame.get("data") or {}
        return frame.get("op") == "event" and resource_id in (
            data.get("id"),
            data.get("resource_id"),
        )

    return match


async def create(client: Any, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/resources", json=resource_body(**overrides), headers=make_user("instructor").headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_new_resource_and_its_stats_arrive_live(
    resources_client: Any, gateway: Any, ws_connect: Any
) -> None:
    async with ws_connect(gateway) as ws:
        subscribed = await ws.subscribe("resources")
        assert subscribed["op"] == "subscribed", subscribed

        resource = await create(resources_client, access="free")
        rid = resource["id"]
        created = await ws.recv_until(of_resource(rid), timeout=10)
        assert created["channel"] == "resources" and created["type"] == "resource.created"
        assert created["data"]["title"] == resource["title"]
        assert "file_url" not in created["data"]

        student = make_user("student")
        download = await resources_client.post(
            f"/resources/{rid}/download", json={}, headers=student.headers
        )
        assert download.status_code == 200
        stats = await ws.recv_until(of_resource(rid), timeout=10)
        assert stats["type"] == "resource.stats"
        assert stats["data"] == {
            "resource_id": rid,
            "download_count": 1,
            "rating_average": None,
            "rating_count": 0,
        }

        rating = await resources_client.put(
            f"/resources/{rid}/rating", json={"rating": 4}, headers=student.headers
        )
        assert rating.status_code == 200
        rated = await ws.recv_until(
            lambda f: of_resource(rid)(f) and f["data"].get("rating_count") == 1, timeout=10
        )
        assert rated["type"] == "resource.stats"
        assert rated["data"]["rating_average"] == 4.0 and rated["data"]["download_count"] == 1

        await resources_client.delete(f"/resources/{rid}", headers=make_user("instructor").headers)
        deleted = await ws.recv_until(
            lambda f: of_resource(rid)(f) and f["type"] == "resource.deleted", timeout=10
        )
        assert deleted["data"] == {"id": rid}


async def test_a_draft_appears_live_only_once_published(
    resources_client: Any, gateway: Any, ws_connect: Any
) -> None:
    async with ws_connect(gateway) as ws:
        await ws.subscribe("resources")
        draft = await create(resources_client, publish=False)
        marker = await create(resources_client)  # published after the draft: its frame comes later
        first = await ws.recv_until(
            lambda f: of_resource(draft["id"])(f) or of_resource(marker["id"])(f), timeout=10
        )
        assert first["data"]["id"] == marker["id"], "a draft reached the public channel"
        quiet = await ws.drain(quiet=0.5)
        assert not [f for f in quiet if of_resource(draft["id"])(f)], "a draft reached the channel"

        published = await resources_client.patch(
            f"/resources/{draft['id']}",
            json={"publish": True},
            headers=make_user("admin").headers,
        )
        assert published.status_code == 200
        frame = await ws.recv_until(of_resource(draft["id"]), timeout=10)
        assert frame["type"] == "resource.updated"
        assert frame["data"]["published_at"] == published.json()["published_at"]


async def test_a_burst_of_downloads_is_coalesced_and_ends_exact(
    resources_client: Any, gateway: Any, ws_connect: Any
) -> None:
    downloads = 100
    resource = await create(resources_client, access="members")
    rid = resource["id"]
    students = [make_user("student") for _ in range(25)]
    async with ws_connect(gateway) as ws:
        await ws.subscribe("resources")
        started = time.monotonic()
        responses = await asyncio.gather(
            *(
                resources_client.post(
                    f"/resources/{rid}/download", json={}, headers=students[i % 25].headers
                )
                for i in range(downloads)
            )
        )
        assert {r.status_code for r in responses} == {200}

        def stats(frame: dict[str, Any]) -> bool:
            return of_resource(rid)(frame) and frame["type"] == "resource.stats"

        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["data"]["download_count"] < downloads:
            frames.append(await ws.recv_until(stats, timeout=10))
        elapsed = time.monotonic() - started
        # Nothing for this resource after the exact final count.
        later = [f for f in await ws.drain(quiet=2 * COALESCE_SECONDS) if stats(f)]

    counts = [f["data"]["download_count"] for f in frames + later]
    assert counts[-1] == downloads
    assert counts == sorted(counts), "stats went backwards"
    assert later == [] or all(c == downloads for c in counts[len(frames) :])
    bound = math.ceil(elapsed / COALESCE_SECONDS) + 2
    assert len(frames) <= bound, (len(frames), bound, counts)
    assert len(frames) < downloads / 4, counts
