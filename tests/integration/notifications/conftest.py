"""Fixtures of the notifications tests: the local push service and the service itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from community_shared.channelstreams import ChannelEvent, encode_channel_message, format_ts
from community_shared.settings import Settings

from tests.conftest import User
from tests.pushservice import BrowserSubscription, PushService


@pytest.fixture(scope="session")
def push_service() -> Iterator[PushService]:
    service = PushService().start()
    yield service
    service.stop()


@pytest.fixture(autouse=True)
async def consuming(request: pytest.FixtureRequest) -> None:
    """The durable consumers read only what comes after they exist: a test of the
    session's service waits for them."""
    if "notifications_client" in request.fixturenames:
        client = request.getfixturevalue("notifications_client")
        await wait_consuming(client.app.state.runtime)


async def consumer_exists(js: Any, stream: str, durable: str, timeout: float = 15.0) -> None:
    """Until the durable consumer exists (it reads only what comes after it was made)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await js.consumer_info(stream, durable)
            return
        except Exception:
            assert time.monotonic() < deadline, f"consumer {durable} never appeared"
            await asyncio.sleep(0.1)


async def wait_consuming(runtime: Any) -> None:
    """Until both of the service's durable consumers exist."""
    settings = runtime.settings
    for stream, durable in (
        ("CHANNELS", "notifications_reviews"),
        ("INBOX", "notifications_inbox"),
    ):
        await consumer_exists(
            runtime.jetstream(), settings.stream_name(stream), settings.stream_name(durable)
        )


async def subscribe_browser(
    client: Any, push_service: PushService, user: User, **extra: Any
) -> tuple[BrowserSubscription, dict[str, Any]]:
    """What a page does: fetch the server key, subscribe (here: at the local push
    service), register the subscription. Returns the browser side and the answer."""
    key = (await client.get("/notifications/vapid-public-key")).json()["public_key"]
    browser = push_service.new_subscription(key)
    response = await client.post(
        "/notifications/push-subscriptions", json=browser.as_json(**extra), headers=user.headers
    )
    assert response.status_code == 201, response.text
    return browser, dict(response.json())


async def wait_pushes(
    push_service: PushService, browser: BrowserSubscription, count: int, timeout: float = 5.0
) -> list[Any]:
    deadline = time.monotonic() + timeout
    while push_service.count(browser) < count:
        assert time.monotonic() < deadline, (
            f"{push_service.count(browser)} of {count} pushes within {timeout}s;"
            f" refused: {push_service.refused[-3:]}"
        )
        await asyncio.sleep(0.05)
    return push_service.received(browser)


async def publish_inbox_event(
    js: Any, settings: Settings, user_id: uuid.UUID, type_: str, data: dict[str, Any]
) -> str:
    """Append an event to a user's channel history as the gateway's router does; its id."""
    event_id = str(uuid.uuid4())
    channel = f"user:{user_id}"
    payload = encode_channel_message(
        ChannelEvent(channel=channel, type=type_, data=data), format_ts(dt_now())
    )
    await js.publish(
        settings.subject(f"inbox.{user_id}"),
        payload,
        headers={"Nats-Msg-Id": f"{event_id}:{channel}:{type_}"},
    )
    return event_id


def dt_now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


ProofOf = Callable[..., Any]
