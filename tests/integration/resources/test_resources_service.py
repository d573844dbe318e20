"""The resources service as a process: health, readiness, metrics and its OpenAPI document."""

from __future__ import annotations

from typing import Any


async def test_health_ready_metrics(resources_client: Any) -> None:
    assert (await resources_client.get("/health")).status_code == 200
    ready = await resources_client.get("/ready")
    assert ready.status_code == 200, ready.text
    metrics = await resources_client.get("/metrics")
    assert metrics.status_code == 200
    assert "resources_downloads_total" in metrics.text


async def test_openapi_documents_every_route(resources_client: Any) -> None:
    response = await resources_client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["info"]["title"] == "Community Live — resources"
    paths = document["paths"]
    assert {
        "/resources",
        "/resources/{resource_id}",
        "/resources/{resource_id}/links",
        "/resources/{resource_id}/links/{link_id}",
        "/resources/linked/{entity_type}/{entity_id}",
        "/resources/{resource_id}/download",
        "/resources/{resource_id}/rating",
    } <= set(paths)
    assert "requestBody" in paths["/resources"]["post"]
    assert "requestBody" in paths["/resources/{resource_id}/rating"]["put"]
