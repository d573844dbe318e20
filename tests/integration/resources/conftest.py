"""Helpers for the resources service tests.

Every test works on resources it creates itself, tagged with a fresh tag when
it needs to list them, so tests never depend on each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
import pytest

from tests.conftest import User, make_user


def resource_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": f"Cold outreach playbook {uuid.uuid4().hex[:6]}",
        "type": "guide",
        "category": "client-acquisition",
        "file_url": "https://files.example.com/playbook.pdf",
        "description": "How to land your first three clients.",
        "access": "free",
        "file_size": 123456,
        "format": "PDF",
        "mime_type": "application/pdf",
        "difficulty": "beginner",
        "tags": ["outreach"],
    }
    body.update(overrides)
    return body


CreateResource = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_resource(resources_client: Any) -> CreateResource:
    """Create a resource as a fresh instructor; returns the 201 body."""

    async def create(by: User | None = None, **overrides: Any) -> dict[str, Any]:
        author = by or make_user("instructor")
        response = await resources_client.post(
            "/resources", json=resource_body(**overrides), headers=author.headers
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return create


@pytest.fixture
def tag() -> str:
    """A tag no other test uses: list exactly this test's resources."""
    return f"t-{uuid.uuid4().hex[:12]}"


async def download_as(
    client: Any, resource_id: str, user: User | None = None, email: str | None = None
) -> Any:
    body = {} if email is None else {"email": email}
    headers = user.headers if user is not None else {}
    return await client.post(f"/resources/{resource_id}/download", json=body, headers=headers)


TABLES = ("resources", "links", "interactions", "download_days", "outbox")


async def table_counts(db: asyncpg.Pool) -> dict[str, int]:
    """Row counts of every table of the schema: compare before/after a refused request."""
    async with db.acquire() as conn:
        return {t: await conn.fetchval(f"SELECT count(*) FROM resources.{t}") for t in TABLES}


async def outbox_events(
    db: asyncpg.Pool, type_: str | None = None, **match: Any
) -> list[dict[str, Any]]:
    """Envelopes written to the outbox, oldest first, optionally of one type whose data matches."""
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT payload FROM resources.outbox ORDER BY seq")
    found = []
    for row in rows:
        envelope = msgspec.json.decode(row["payload"])
        if type_ is not None and envelope["type"] != type_:
            continue
        if all(envelope["data"].get(k) == v for k, v in match.items()):
            found.append(envelope)
    return found


@pytest.fixture
async def empty_library(db: asyncpg.Pool) -> None:
    """Start from an empty library (for rules that rank the whole library)."""
    async with db.acquire() as conn:
        await conn.execute(
            "TRUNCATE resources.links, resources.interactions, resources.download_days,"
            " resources.resources"
        )
