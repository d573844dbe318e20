"""The goals service as a running process: health, readiness, metrics, OpenAPI."""

from __future__ import annotations

from typing import Any


async def test_health_ready_metrics_and_openapi(goals_client: Any) -> None:
    assert (await goals_client.get("/health")).status_code == 200
    ready = await goals_client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert (await goals_client.get("/metrics")).status_code == 200
    schema = await goals_client.get("/schema/openapi.json")
    assert schema.status_code == 200, schema.text
    paths = schema.json()["paths"]
    for path in (
        "/goals/tracks",
        "/goals/me",
        "/goals/me/goal",
        "/goals/me/submissions",
        "/goals/reviews",
        "/goals/reviews/{review_id}/approve",
        "/goals/reviews/{review_id}/reject",
        "/goals/students/{user_id}",
        "/goals/stories",
        "/goals/stories/{story_id}/publish",
    ):
        assert path in paths, path
