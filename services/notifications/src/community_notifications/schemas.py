"""msgspec Structs of the notifications service's HTTP API (SPEC §12)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from community_shared.pagination import Page

MAX_ENDPOINT_LENGTH = 2048
MAX_USER_AGENT_LENGTH = 512

Endpoint = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ENDPOINT_LENGTH)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class SubscriptionKeys(msgspec.Struct, forbid_unknown_fields=False):
    p256dh: Key
    """The browser's P-256 public key, base64url of the uncompressed point (65 bytes)."""
    auth: Key
    """The browser's 16-byte authentication secret, base64url."""


class SubscriptionIn(msgspec.Struct):
    """What `PushSubscription.toJSON()` gives (its `expirationTime` is ignored), and the browser."""

    endpoint: Endpoint
    keys: SubscriptionKeys
    user_agent: Annotated[str, msgspec.Meta(max_length=MAX_USER_AGENT_LENGTH)] | None = None


class SubscriptionOut(msgspec.Struct):
    id: uuid.UUID
    endpoint: str
    user_agent: str | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None


class SubscriptionPage(Page[SubscriptionOut]):
    """A page of the caller's subscriptions, oldest first."""

    items: list[
        SubscriptionOut
    ]  # named again: the OpenAPI document does not resolve a generic base


class PreferencesIn(msgspec.Struct):
    push: dict[str, bool]
    """Event type → whether to push it; types left out keep their current setting."""


class PreferencesOut(msgspec.Struct):
    push: dict[str, bool]
    """Every event type the caller may be pushed, with its setting."""


class VapidPublicKeyOut(msgspec.Struct):
    public_key: str
    """The application server key: base64url of the uncompressed P-256 point."""
