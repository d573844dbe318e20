"""HTTP controllers of the notifications service (SPEC §12): authorize, parse, call the service.

Guards refuse guests (401) before a body is read; bodies are typed (msgspec, strict),
so a wrong shape is a 400 before any use case runs.
"""

from __future__ import annotations

import uuid

from community_shared.auth import Identity
from community_shared.idempotency import IdempotencyKey
from community_shared.web import ANYONE, SIGNED_IN, PageQuery, answers
from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from community_notifications.schemas import (
    PreferencesIn,
    PreferencesOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
    VapidPublicKeyOut,
)
from community_notifications.service import NotificationsService

Caller = NamedDependency[Identity]
Notifications = NamedDependency[NotificationsService]
Idempotency = NamedDependency[IdempotencyKey | None]
PathId = FromPath[uuid.UUID]

_REGISTER_ANSWERS = answers(SIGNED_IN, 422)
_REGISTER_ANSWERS["responses"][200] = ResponseSpec(
    data_container=SubscriptionOut,
    description="The endpoint was registered before: it is now the caller's, with these keys",
)


class NotificationsController(Controller):
    path = "/notifications"
    tags = ["notifications"]

    @get("/vapid-public-key", **answers(ANYONE))
    async def vapid_public_key(
        self, identity: Caller, notifications: Notifications
    ) -> VapidPublicKeyOut:
        """The application server key for `PushManager.subscribe` (anyone)."""
        del identity  # resolved so that a bad token is still a 401
        return notifications.public_key()

    @post("/push-subscriptions", status_code=201, **_REGISTER_ANSWERS)
    async def register_subscription(
        self,
        identity: Caller,
        notifications: Notifications,
        idempotency: Idempotency,
        data: JSONBody[SubscriptionIn],
    ) -> Response[SubscriptionOut]:
        """Register this browser's push subscription: 201, or 200 for a known endpoint."""
        out, created = await notifications.register_subscription(identity, data, idempotency)
        return Response(out, status_code=201 if created else 200)

    @get("/push-subscriptions", **answers(SIGNED_IN))
    async def my_subscriptions(
        self, identity: Caller, notifications: Notifications, page: PageQuery
    ) -> SubscriptionPage:
        """The caller's push subscriptions, oldest first."""
        return await notifications.my_subscriptions(identity, page)

    @delete("/push-subscriptions/{subscription_id:uuid}", **answers(SIGNED_IN, 404))
    async def delete_subscription(
        self, identity: Caller, notifications: Notifications, subscription_id: PathId
    ) -> None:
        """Remove one of the caller's subscriptions (anyone else's: 404)."""
        await notifications.delete_subscription(identity, subscription_id)

    @get("/preferences", **answers(SIGNED_IN))
    async def my_preferences(
        self, identity: Caller, notifications: Notifications
    ) -> PreferencesOut:
        """Every event type the caller may be pushed, with its setting."""
        return await notifications.my_preferences(identity)

    @put("/preferences", status_code=200, **answers(SIGNED_IN))
    async def set_preferences(
        self, identity: Caller, notifications: Notifications, data: JSONBody[PreferencesIn]
    ) -> PreferencesOut:
        """Change push preferences; types left out keep their setting; unknown types 400."""
        return await notifications.set_preferences(identity, data.push)
