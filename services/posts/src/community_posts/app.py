"""The posts service application: `create_app(settings)` and nothing that starts on import."""

from __future__ import annotations

from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import create_service_app, run
from litestar import Litestar

SCHEMA = "posts"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env("posts", 8001)
    return create_service_app(
        settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        route_handlers=[],
        title="Community Live — posts",
        uses_redis=True,
    )


def main() -> None:
    run(create_app, Settings.from_env("posts", 8001))


if __name__ == "__main__":
    main()
