"""The notifications service application: `create_app(settings)`; nothing starts on import."""

from __future__ import annotations

import asyncio
from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import Runtime, create_service_app, run, runtime_of
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from community_notifications.config import NotificationsConfig
from community_notifications.delivery import Delivery
from community_notifications.routes import NotificationsController
from community_notifications.service import SCHEMA, NotificationsService, load_signer
from community_notifications.webpush import PushSender

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(
    settings: Settings | None = None, config: NotificationsConfig | None = None
) -> Litestar:
    settings = settings or Settings.from_env("notifications", 8005)
    config = config or NotificationsConfig.from_env()
    service = NotificationsService(config)
    delivery: list[Delivery] = []
    # NATS may answer before the start-up hook has loaded the key: intake waits for it.
    sending = asyncio.Event()

    async def provide_notifications(state: State) -> NotificationsService:
        return service.bind(runtime_of(state))

    async def start_sending(runtime: Runtime) -> None:
        service.bind(runtime)
        service.signer = await load_signer(runtime, config)
        sender = PushSender(service.signer, timeout=config.push_timeout_seconds)
        assert runtime.redis is not None
        delivery.append(Delivery(runtime, config, sender, runtime.redis))
        delivery[0].start_sending()
        sending.set()

        async def stop() -> None:
            await delivery[0].stop()

        runtime.closers.append(stop)

    async def start_intake(runtime: Runtime) -> None:
        await sending.wait()
        delivery[0].start_intake()

    return create_service_app(
        settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        route_handlers=[NotificationsController],
        title="Community Live — notifications",
        uses_redis=True,
        on_startup=[start_sending],
        on_nats_ready=[start_intake],
        dependencies={"notifications": Provide(provide_notifications)},
    )


def main() -> None:
    run(create_app, Settings.from_env("notifications", 8005))


if __name__ == "__main__":
    main()
