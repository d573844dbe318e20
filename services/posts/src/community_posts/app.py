"""The posts service application: `create_app(settings)` and nothing that starts on import."""

from __future__ import annotations

from pathlib import Path

from community_shared.ratelimit import SlidingWindowLimiter
from community_shared.settings import Settings
from community_shared.web import Runtime, create_service_app, run
from litestar import Litestar
from litestar.di import Provide

from community_posts.consumers import tagline_evictions
from community_posts.routes import PostsController, ReportsController
from community_posts.service import PostsService
from community_posts.store import SCHEMA
from community_posts.taglines import TaglineDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class Wiring:
    """Builds the use cases once the runtime's connections exist."""

    def __init__(self, settings: Settings) -> None:
        self._runtime: Runtime | None = None
        self._service: PostsService | None = None
        self.taglines = TaglineDirectory(
            settings, lambda: self._runtime.nats if self._runtime is not None else None
        )

    async def start(self, runtime: Runtime) -> None:
        assert runtime.redis is not None, "the posts service uses Redis"
        self._runtime = runtime
        self._service = PostsService(
            pool=runtime.db,
            limiter=SlidingWindowLimiter(runtime.redis, runtime.settings),
            taglines=self.taglines,
        )

    def service(self) -> PostsService:
        assert self._service is not None, "the service is not started"
        return self._service


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env("posts", 8001)
    wiring = Wiring(settings)
    return create_service_app(
        settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        route_handlers=[PostsController, ReportsController],
        title="Community Live — posts",
        uses_redis=True,
        on_startup=[wiring.start],
        on_nats_ready=[tagline_evictions(wiring.taglines)],
        dependencies={"posts": Provide(wiring.service, sync_to_thread=False)},
    )


def main() -> None:
    run(create_app, Settings.from_env("posts", 8001))


if __name__ == "__main__":
    main()
