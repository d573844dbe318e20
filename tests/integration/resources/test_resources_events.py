"""Every change reaches NATS through the outbox, in the envelope of SPEC §8."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import nats

from tests.conftest import eventually, make_user
from tests.integration.resources.conftest import CreateResource, download_as


async def test_the_life_of_a_resource_on_nats(
    resources_client: Any,
    nats_client: nats.aio.client.Client,
    settings_for: Callable[..., Any],
    new_resource: CreateResource,
) -> None:
    settings = settings_for("resources")
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    async def on_message(msg: Any) -> None:
        envelope = msgspec.json.decode(msg.data)
        received.append((msg.subject, envelope, dict(msg.headers or {})))

    subscription = await nats_client.subscribe(settings.subject("resources.>"), cb=on_message)
    await nats_client.flush()
    try:
        instructor = make_user("instructor")
        resource = await new_resource(by=instructor)
        rid = resource["id"]
        student = make_user("student")
        await resources_client.patch(
            f"/resources/{rid}", json={"is_featured": True}, headers=instructor.headers
        )
        await download_as(resources_client, rid, student)
        await resources_client.put(
            f"/resources/{rid}/rating", json={"rating": 4}, headers=student.headers
        )
        await resources_client.delete(f"/resources/{rid}", headers=instructor.headers)

        def mine() -> list[tuple[str, dict[str, Any], dict[str, str]]]:
            return [
                r
                for r in received
                if rid in (r[1]["data"].get("id"), r[1]["data"].get("resource_id"))
            ]

        async def all_arrived() -> bool:
            return len(mine()) == 5

        await eventually(all_arrived, timeout=10)
    finally:
        await subscription.unsubscribe()

    types = [envelope["type"] for _, envelope, _ in mine()]
    assert types == [
        "resources.resource.created",
        "resources.resource.updated",
        "resources.resource.downloaded",
        "resources.resource.rated",
        "resources.resource.deleted",
    ]
    for subject, envelope, headers in mine():
        assert subject == settings.subject(envelope["type"])
        assert headers.get("Nats-Msg-Id") == envelope["id"]
        assert envelope["source"] == "resources"
        assert set(envelope) == {"id", "type", "source", "occurred_at", "actor_id", "data"}
    updated = mine()[1][1]["data"]
    assert updated["is_featured"] is True and "file_url" not in updated
    rated = mine()[3][1]["data"]
    assert rated["rating_average"] == 4.0 and rated["download_count"] == 1
