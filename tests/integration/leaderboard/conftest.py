"""Fixtures of the leaderboard's integration tests (helpers in leaderboard_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import msgspec
import pytest
from community_shared.settings import Settings

from tests.conftest import eventually
from tests.integration.leaderboard.leaderboard_support import Events


@pytest.fixture(scope="session")
def lb_settings(settings_for: Callable[..., Settings]) -> Settings:
    return settings_for("leaderboard")


@pytest.fixture(scope="session")
async def events(
    leaderboard_client: Any,
    nats_client: Any,
    lb_settings: Settings,
    db: asyncpg.Pool,
) -> AsyncIterator[Events]:
    js = nats_client.jetstream()
    await caught_up(js, lb_settings)
    yield Events(js=js, settings=lb_settings, db=db)


async def caught_up(js: Any, settings: Settings, timeout: float = 60.0) -> None:
    """Wait until the leaderboard has applied every event already in the stream
    (other components' tests publish too; the service may start behind)."""
    stream = settings.stream_name("EVENTS")

    async def nothing_waiting() -> bool:
        for source in ("posts", "goals", "learning"):
            try:
                info = await js.consumer_info(stream, settings.stream_name(f"leaderboard_{source}"))
            except Exception:
                return False
            if info.num_pending or info.num_ack_pending:
                return False
        return True

    await eventually(nothing_waiting, timeout=timeout)


@pytest.fixture
async def rank_changes(
    nats_client: Any, lb_settings: Settings
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every leaderboard.rank.changed published while the test runs (data only)."""
    seen: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        seen.append(msgspec.json.decode(msg.data)["data"])

    sub = await nats_client.subscribe(lb_settings.subject("leaderboard.rank.changed"), cb=collect)
    yield seen
    await sub.unsubscribe()
