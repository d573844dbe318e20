"""The resources service application: `create_app(settings)` and nothing that starts on import.

Besides HTTP, the service runs one background job: every
`RESOURCES_POPULARITY_REFRESH_SECONDS` (default 300) it takes the download
days that left the 30-day window out of each resource's recent downloads
(the basis of `is_popular` and `sort=popular`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import Runtime, ServiceDefinition
from litestar import Litestar

from community_resources import events, service
from community_resources.routes import ResourceController

SCHEMA = service.SCHEMA
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
DEFAULT_PORT = 8002
RESOURCES = ServiceDefinition(
    "resources", DEFAULT_PORT, SCHEMA, MIGRATIONS, route_handlers=[ResourceController]
)

log = logging.getLogger(__name__)


def popularity_refresh_seconds() -> float:
    try:
        seconds = float(os.environ.get("RESOURCES_POPULARITY_REFRESH_SECONDS", "300"))
    except ValueError:
        seconds = 300.0
    return max(seconds, 1.0)


async def start_popularity_window(runtime: Runtime) -> None:
    """Keep the 30-day download window moving (at start-up, then periodically)."""
    interval = popularity_refresh_seconds()

    async def loop() -> None:
        while True:
            try:
                expired = await service.expire_download_days(runtime.db)
                if expired:
                    log.info("expired %d download days from the popularity window", expired)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("popularity window refresh failed; retrying later", exc_info=True)
            await asyncio.sleep(interval)

    runtime.tasks.append(asyncio.create_task(loop(), name="resources-popularity-window"))


def resources_service(runtime: Runtime) -> service.ResourcesService:
    """The use cases, once the runtime's connections exist."""
    return service.ResourcesService(db=runtime.database(events.SOURCE))


def create_app(settings: Settings | None = None) -> Litestar:
    return RESOURCES.app(
        settings, use_cases=resources_service, on_startup=[start_popularity_window]
    )


main = RESOURCES.entry_point(create_app)


if __name__ == "__main__":
    main()
