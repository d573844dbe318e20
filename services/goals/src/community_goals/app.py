"""The goals service application: `create_app(settings)` and nothing that starts on import."""

from __future__ import annotations

from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import Runtime, ServiceDefinition
from litestar import Litestar

from community_goals import events as ev
from community_goals.consumers import profile_responder
from community_goals.routes import GoalsController
from community_goals.service import SCHEMA, GoalsService

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
GOALS = ServiceDefinition("goals", 8003, SCHEMA, MIGRATIONS, route_handlers=[GoalsController])


def goals_service(runtime: Runtime) -> GoalsService:
    """The use cases, once the runtime's connections exist."""
    return GoalsService(db=runtime.database(ev.SOURCE))


def create_app(settings: Settings | None = None) -> Litestar:
    return GOALS.app(settings, use_cases=goals_service, on_nats_ready=[profile_responder])


main = GOALS.entry_point(create_app)


if __name__ == "__main__":
    main()
