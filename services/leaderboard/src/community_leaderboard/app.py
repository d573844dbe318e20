"""The leaderboard service application: `create_app(settings)` and nothing that starts on import.

The use cases are the service named `leaderboard` (routes take it as a
dependency); its outbox relay publishes pipelined (`relay.py`). At start-up
(after migrations) the Redis boards are rebuilt from the statistics in
Postgres and the chores start; once NATS answers, the history streams a
rebuild replays are set up (history.py) and the three durable consumers start.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from community_shared.dependencies import unavailable_dependency
from community_shared.settings import Settings
from community_shared.web import Runtime, ServiceDefinition
from litestar import Litestar

from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.consumers import EventConsumers
from community_leaderboard.history import ensure_history_streams
from community_leaderboard.jobs import Chores
from community_leaderboard.keeper import BoardKeeper
from community_leaderboard.relay import RELAY_BATCH_SIZE
from community_leaderboard.routes import LeaderboardController
from community_leaderboard.service import LeaderboardService
from community_leaderboard.store import SCHEMA

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
LEADERBOARD = ServiceDefinition(
    "leaderboard", 8004, SCHEMA, MIGRATIONS, route_handlers=[LeaderboardController]
)


class LeaderboardParts:
    """What the running app holds beyond the shared runtime (reachable from
    `app.state.leaderboard`, e.g. for operations and tests)."""

    def __init__(self) -> None:
        self.service: LeaderboardService | None = None
        self.consumers: EventConsumers | None = None
        self.chores: Chores | None = None
        self.keeper: BoardKeeper | None = None
        self.started = asyncio.Event()


def create_app(
    settings: Settings | None = None, config: LeaderboardConfig | None = None
) -> Litestar:
    settings = settings or LEADERBOARD.settings()
    config = config or LeaderboardConfig.from_env()
    parts = LeaderboardParts()

    def build(runtime: Runtime) -> LeaderboardService:
        assert runtime.redis is not None
        return LeaderboardService(runtime.db, runtime.redis, settings, config)

    async def start(runtime: Runtime) -> None:
        service: LeaderboardService = runtime.services["leaderboard"]
        parts.service = service
        # Redis is a projection of Postgres: rebuild it so a lost Redis, or a
        # crash between a board move and its commit, leaves nothing behind.
        # Redis down now is no reason not to start: the keeper rebuilds once
        # it answers, and /ready says so meanwhile.
        try:
            await service.resync()
            rebuilt = True
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
            log.warning("cannot rebuild the boards at start-up (%s); retrying", exc)
            rebuilt = False
        parts.keeper = BoardKeeper(
            service, check_seconds=config.boards_check_seconds, rebuild_first=not rebuilt
        )
        parts.keeper.start()
        runtime.closers.append(parts.keeper.stop)
        runtime.readiness["boards"] = lambda: parts.keeper.problem if parts.keeper else None
        parts.chores = Chores(service.jobs, config)
        parts.chores.start()
        runtime.closers.append(parts.chores.stop)
        parts.started.set()

    async def consume(runtime: Runtime) -> None:
        # NATS may answer while start-up is still rebuilding the boards.
        await parts.started.wait()
        assert parts.service is not None and runtime.nats is not None
        try:
            await ensure_history_streams(runtime.jetstream(), settings, config)
        except Exception:
            # The live boards do not depend on it; a rebuild would see less history.
            log.warning("could not set up the leaderboard's history streams", exc_info=True)
        parts.consumers = EventConsumers(
            runtime.nats, runtime.jetstream(), parts.service, settings, config
        )
        await parts.consumers.start()
        runtime.closers.append(parts.consumers.close)

    app = LEADERBOARD.app(
        settings,
        use_cases=build,
        uses_redis=True,
        on_startup=[start],
        on_nats_ready=[consume],
        pipelined_relay=True,
        relay_batch_size=RELAY_BATCH_SIZE,
    )
    app.state.leaderboard = parts
    return app


main = LEADERBOARD.entry_point(create_app)


if __name__ == "__main__":
    main()
