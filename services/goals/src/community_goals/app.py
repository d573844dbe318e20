"""The goals service application: `create_app(settings)` and nothing that starts on import."""

from __future__ import annotations

from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import Runtime, create_service_app, run
from litestar import Litestar

from community_goals import events as ev
from community_goals.consumers import profile_responder
from community_goals.routes import GoalsController
from community_goals.service import SCHEMA, GoalsService

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def goals_service(runtime: Runtime) -> GoalsService:
    """The use cases, once the runtime's connections exist."""
    return GoalsService(db=runtime.database(ev.SOURCE))


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env("goals", 8003)
    return create_service_app(
        settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        route_handlers=[GoalsController],
        title="Community Live — goals",
        services={"goals": goals_service},
        on_nats_ready=[profile_responder],
    )


def main() -> None:
    run(create_app, Settings.from_env("goals", 8003))


if __name__ == "__main__":
    main()
