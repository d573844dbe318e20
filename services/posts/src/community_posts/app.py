"""The posts service application: `create_app(settings)` and nothing that starts on import."""

from __future__ import annotations

from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import Runtime, create_service_app, run
from litestar import Litestar

from community_posts import events as ev
from community_posts.consumers import tagline_evictions
from community_posts.routes import PostsController, ReportsController
from community_posts.service import PostsService
from community_posts.store import SCHEMA
from community_posts.taglines import TaglineDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def posts_service(runtime: Runtime) -> PostsService:
    """The use cases, once the runtime's connections exist."""
    return PostsService(
        db=runtime.database(ev.SOURCE, rate_limited=True),
        taglines=TaglineDirectory(runtime.settings, lambda: runtime.nats),
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env("posts", 8001)
    return create_service_app(
        settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        route_handlers=[PostsController, ReportsController],
        title="Community Live — posts",
        uses_redis=True,
        services={"posts": posts_service},
        on_nats_ready=[tagline_evictions],
    )


def main() -> None:
    run(create_app, Settings.from_env("posts", 8001))


if __name__ == "__main__":
    main()
