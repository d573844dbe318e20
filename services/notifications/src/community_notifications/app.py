"""The notifications service application: `create_app(settings)`; nothing starts on import."""

from __future__ import annotations

import asyncio
from pathlib import Path

from community_shared.settings import Settings
from community_shared.web import Runtime, ServiceDefinition
from litestar import Litestar

from community_notifications.config import NotificationsConfig
from community_notifications.delivery import Delivery
from community_notifications.routes import NotificationsController
from community_notifications.service import SCHEMA, SOURCE, NotificationsService, load_signer
from community_notifications.webpush import PushSender

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
NAME = "notifications"
NOTIFICATIONS = ServiceDefinition(
    NAME, 8005, SCHEMA, MIGRATIONS, route_handlers=[NotificationsController]
)


def create_app(
    settings: Settings | None = None, config: NotificationsConfig | None = None
) -> Litestar:
    config = config or NotificationsConfig.from_env()

    # NATS may answer before the start-up hook has loaded the key: intake waits for it.
    sending = asyncio.Event()

    def notifications_service(runtime: Runtime) -> NotificationsService:
        return NotificationsService(runtime.database(SOURCE), config)

    async def start_sending(runtime: Runtime) -> None:
        """The key first (every answer and push needs it), then the sender."""
        service: NotificationsService = runtime.services[NAME]
        service.signer = await load_signer(runtime, config)
        assert runtime.redis is not None
        sender = PushSender(service.signer, timeout=config.push_timeout_seconds)
        delivery = Delivery(runtime, config, sender, runtime.redis)
        runtime.services["delivery"] = delivery
        delivery.start_sending()
        runtime.closers.append(delivery.stop)
        sending.set()

    async def start_intake(runtime: Runtime) -> None:
        await sending.wait()
        delivery: Delivery = runtime.services["delivery"]
        delivery.start_intake()

    return NOTIFICATIONS.app(
        settings,
        use_cases=notifications_service,
        uses_redis=True,
        on_startup=[start_sending],
        on_nats_ready=[start_intake],
    )


main = NOTIFICATIONS.entry_point(create_app)


if __name__ == "__main__":
    main()
