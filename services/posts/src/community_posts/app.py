"""The posts service application: `create_app(settings)` and nothing that starts on import."""

from __future__ import annotations

from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import Runtime, ServiceDefinition
from litestar import Litestar

from community_posts import events as ev
from community_posts.consumers import tagline_evictions
from community_posts.routes import PostsController, ReportsController
from community_posts.service import PostsService
from community_posts.store import SCHEMA
from community_posts.taglines import TaglineDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
POSTS = ServiceDefinition(
    "posts", 8001, SCHEMA, MIGRATIONS, route_handlers=[PostsController, ReportsController]
)


def posts_service(runtime: Runtime) -> PostsService:
    """The use cases, once the runtime's connections exist."""
    return PostsService(
        db=runtime.database(ev.SOURCE, rate_limited=True),
        taglines=TaglineDirectory(runtime.settings, lambda: runtime.nats),
    )


def create_app(settings: Settings | None = None) -> Litestar:
    return POSTS.app(
        settings,
        use_cases=posts_service,
        uses_redis=True,
        on_nats_ready=[tagline_evictions],
    )


main = POSTS.entry_point(create_app)


if __name__ == "__main__":
    main()
