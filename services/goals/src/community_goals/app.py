"""The goals service application: `create_app(settings)` and nothing that starts on import."""

from __future__ import annotations

from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import create_service_app, run, runtime_of
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from community_goals.consumers import profile_responder
from community_goals.routes import GoalsController
from community_goals.service import SCHEMA, GoalsService

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env("goals", 8003)
    service = GoalsService()

    async def provide_goals(state: State) -> GoalsService:
        return service.bind(runtime_of(state))

    return create_service_app(
        settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        route_handlers=[GoalsController],
        title="Community Live — goals",
        on_nats_ready=[profile_responder(service)],
        dependencies={"goals": Provide(provide_goals)},
    )


def main() -> None:
    run(create_app, Settings.from_env("goals", 8003))


if __name__ == "__main__":
    main()
