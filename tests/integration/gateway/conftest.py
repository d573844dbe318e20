"""Fixtures for the gateway's integration tests: publish domain events straight into EVENTS."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from community_shared.events import Envelope, encode_envelope, make_event
from community_shared.settings import Settings

Publish = Callable[..., Awaitable[Envelope]]


def own_prefix(tag: str = "rc") -> str:
    """A deployment prefix of a test's own: streams, consumer and lease no other test shares."""
    from tests.conftest import RUN_ID

    return f"{RUN_ID}.{tag}{uuid.uuid4().hex[:6]}."


def stream(prefix: str, name: str) -> str:
    """The name of stream (or durable) `name` under deployment `prefix`."""
    return prefix.replace(".", "_") + name


@dataclass
class OwnDeployment:
    """A deployment prefix of a test's own, the test's JetStream context, and a way to
    start gateways on that prefix (`await deployment.gateway(config)`)."""

    prefix: str
    js: Any
    gateway: Callable[[Any], Awaitable[Any]]

    def stream(self, name: str) -> str:
        return stream(self.prefix, name)


@pytest.fixture
def own_deployment(gateway_factory: Any, nats_client: Any) -> OwnDeployment:
    prefix = own_prefix("rb")

    async def start(config: Any) -> Any:
        return await gateway_factory(config=config, nats_subject_prefix=prefix)

    return OwnDeployment(prefix, nats_client.jetstream(), start)


@pytest.fixture(scope="session")
def publish_event(settings_for: Callable[..., Settings], nats_client: Any, gateway: Any) -> Publish:
    """`await publish_event("posts.post.created", data, actor_id=...)` -> the envelope.

    Publishes the envelope to the session's EVENTS stream exactly as the
    outbox relay does (subject = type, `Nats-Msg-Id` = event id). Depends on
    `gateway` so the router's consumer exists before the first event.
    """
    settings = settings_for("gateway")
    js = nats_client.jetstream()

    async def publish(
        type_: str,
        data: Any,
        *,
        actor_id: uuid.UUID | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope:
        envelope = make_event(
            type_, data, source=type_.split(".", 1)[0], actor_id=actor_id, event_id=event_id
        )
        await js.publish(
            settings.subject(type_),
            encode_envelope(envelope),
            headers={"Nats-Msg-Id": str(envelope.id)},
        )
        return envelope

    return publish


def post_data(
    *,
    author_id: uuid.UUID | None = None,
    visibility: str = "public",
    content: str = "hello",
    likes_count: int = 0,
) -> dict[str, Any]:
    """A `posts.post.*` payload as the posts service publishes it."""
    author_id = author_id or uuid.uuid4()
    return {
        "id": str(uuid.uuid4()),
        "author": {"id": str(author_id), "name": "Ada", "role": "student"},
        "content": content,
        "visibility": visibility,
        "is_pinned": False,
        "likes_count": likes_count,
        "replies_count": 0,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "edited": False,
    }


def is_event(
    channel: str, type_: str | None = None, ids: set[str] | None = None
) -> Callable[[dict[str, Any]], bool]:
    """A `recv_until` predicate: an event of `channel` (and `type_`) about one of `ids`.

    Other tests' events may share the session's channels; `ids` (matched
    against `data.id` or `data.post_id`) keeps a test to its own.
    """

    def matches(frame: dict[str, Any]) -> bool:
        if frame.get("op") != "event" or frame.get("channel") != channel:
            return False
        if type_ is not None and frame.get("type") != type_:
            return False
        if ids is not None:
            data = frame.get("data") or {}
            return data.get("id") in ids or data.get("post_id") in ids
        return True

    return matches
