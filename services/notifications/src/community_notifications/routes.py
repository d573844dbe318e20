"""HTTP controllers of the notifications service (SPEC §12): authorize, parse, call the service."""

from __future__ import annotations

import uuid

from community_shared.auth import Identity
from community_shared.idempotency import IdempotencyKey
from community_shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, parse_limit
from community_shared.web import ANYONE, SIGNED_IN, answers
from litestar import Controller, Response, delete, get, post, put
from litestar.openapi import ResponseSpec

from community_notifications.schemas import (
    PreferencesIn,
    PreferencesOut,
    SubscriptionIn,
    SubscriptionOut,
    VapidPublicKeyOut,
)
from community_notifications.service import NotificationsService

_REGISTER_ANSWERS = answers(SIGNED_IN, 422)
_REGISTER_ANSWERS["responses"][200] = ResponseSpec(
    data_container=SubscriptionOut,
    description="The endpoint was registered before: it is now the caller's, with these keys",
)


class NotificationsController(Controller):
    path = "/notifications"
    tags = ["notifications"]

    @get(
        "/vapid-public-key",
        summary="The application server key for PushManager.subscribe",
        **answers(ANYONE),
    )
    async def vapid_public_key(
        self, identity: Identity, notifications: NotificationsService
    ) -> VapidPublicKeyOut:
        del identity  # anyone; resolved so that a bad token is still a 401
        return notifications.public_key()

    @post(
        "/push-subscriptions",
        summary="Register this browser's push subscription (the same endpoint again: 200)",
        **_REGISTER_ANSWERS,
    )
    async def register_subscription(
        self,
        identity: Identity,
        notifications: NotificationsService,
        idempotency: IdempotencyKey | None,
        data: SubscriptionIn,
    ) -> Response[SubscriptionOut]:
        out, created = await notifications.register_subscription(identity, data, idempotency)
        return Response(out, status_code=201 if created else 200)

    @get("/push-subscriptions", summary="The caller's push subscriptions", **answers(SIGNED_IN))
    async def my_subscriptions(
        self,
        identity: Identity,
        notifications: NotificationsService,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[SubscriptionOut]:
        return await notifications.my_subscriptions(
            identity, cursor=cursor, limit=parse_limit(limit)
        )

    @delete(
        "/push-subscriptions/{subscription_id:uuid}",
        summary="Remove one of the caller's push subscriptions",
        **answers(SIGNED_IN, 404),
    )
    async def delete_subscription(
        self, identity: Identity, notifications: NotificationsService, subscription_id: uuid.UUID
    ) -> None:
        await notifications.delete_subscription(identity, subscription_id)

    @get("/preferences", summary="The caller's push preferences", **answers(SIGNED_IN))
    async def my_preferences(
        self, identity: Identity, notifications: NotificationsService
    ) -> PreferencesOut:
        return await notifications.my_preferences(identity)

    @put(
        "/preferences",
        status_code=200,
        summary="Change push preferences (types left out keep their setting)",
        **answers(SIGNED_IN),
    )
    async def set_preferences(
        self, identity: Identity, notifications: NotificationsService, data: PreferencesIn
    ) -> PreferencesOut:
        return await notifications.set_preferences(identity, data.push)
