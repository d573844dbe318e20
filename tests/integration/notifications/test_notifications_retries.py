"""What a push service's refusals do: 404/410 remove the subscription, 429 and 5xx are
retried with backoff, honouring Retry-After (SPEC §12)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import pytest

from tests.conftest import make_user
from tests.integration.notifications.conftest import (
    publish_inbox_event,
    subscribe_browser,
    wait_pushes,
)
from tests.pushservice import PushService


async def _metric(client: Any, name: str) -> float:
    text = (await client.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _attempts(
    push_service: PushService, browser: Any, count: int, timeout: float
) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(push_service.attempts_of(browser)) < count:
        assert time.monotonic() < deadline, push_service.attempts_of(browser)
        await asyncio.sleep(0.05)
    return push_service.attempts_of(browser)


@pytest.mark.parametrize("gone", [404, 410])
async def test_404_and_410_remove_the_subscription(
    notifications_client: Any, push_service: PushService, gone: int
) -> None:
    student = make_user("student")
    browser, _ = await subscribe_browser(notifications_client, push_service, student)
    push_service.script(browser, gone, forever=True)
    removed_before = await _metric(
        notifications_client, "notifications_subscriptions_removed_total"
    )
    runtime = notifications_client.app.state.runtime
    js = runtime.jetstream()

    await publish_inbox_event(js, runtime.settings, student.id, "badge.awarded", {"badge": "a"})
    await _attempts(push_service, browser, 1, timeout=3)

    deadline = time.monotonic() + 3
    while True:
        listed = await notifications_client.get(
            "/notifications/push-subscriptions", headers=student.headers
        )
        if listed.json()["items"] == []:
            break
        assert time.monotonic() < deadline, "the subscription was not removed"
        await asyncio.sleep(0.05)
    removed_after = await _metric(notifications_client, "notifications_subscriptions_removed_total")
    assert removed_after == removed_before + 1

    # Nothing more is sent to it.
    await publish_inbox_event(js, runtime.settings, student.id, "badge.awarded", {"badge": "b"})
    await asyncio.sleep(1.5)
    assert len(push_service.attempts_of(browser)) == 1


async def test_429_is_retried_after_retry_after_then_delivered(
    notifications_client: Any, push_service: PushService
) -> None:
    student = make_user("student")
    browser, _ = await subscribe_browser(notifications_client, push_service, student)
    push_service.script(browser, 429, retry_after="2")
    runtime = notifications_client.app.state.runtime
    retried_before = await _metric(notifications_client, "notifications_pushes_retried_total")

    await publish_inbox_event(
        runtime.jetstream(), runtime.settings, student.id, "goal.completed", {"goal": "agency-1k"}
    )
    [push] = await wait_pushes(push_service, browser, 1, timeout=6)

    (refused_at, refused), (delivered_at, delivered) = push_service.attempts_of(browser)
    assert (refused, delivered) == (429, 201)
    assert delivered_at - refused_at >= 2.0
    assert push.payload["type"] == "goal.completed"
    retried_after = await _metric(notifications_client, "notifications_pushes_retried_total")
    assert retried_after == retried_before + 1


async def test_500_is_retried_with_backoff(
    notifications_client: Any, push_service: PushService
) -> None:
    student = make_user("student")
    browser, _ = await subscribe_browser(notifications_client, push_service, student)
    push_service.script(browser, 500, times=3)
    runtime = notifications_client.app.state.runtime

    await publish_inbox_event(
        runtime.jetstream(),
        runtime.settings,
        student.id,
        "story.published",
        {"story_id": str(uuid.uuid4())},
    )
    await wait_pushes(push_service, browser, 1, timeout=12)

    attempts = push_service.attempts_of(browser)
    assert [status for _, status in attempts] == [500, 500, 500, 201]
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(attempts)]
    # 1 s, 2 s, 4 s (a poll interval of slack).
    assert gaps[0] >= 1.0 and gaps[1] >= 2.0 and gaps[2] >= 4.0
    assert gaps[0] < gaps[1] < gaps[2]


async def test_two_instances_push_each_event_once(
    notifications_client: Any, settings_for: Any, push_service: PushService
) -> None:
    """A second instance on the same streams and tables shares the work: nothing twice."""
    from community_notifications.app import create_app
    from community_notifications.config import NotificationsConfig

    from tests.harness import nats_hooks_ran, serve_in_this_loop

    student = make_user("student")
    browsers = [
        (await subscribe_browser(notifications_client, push_service, student))[0] for _ in range(2)
    ]
    second = create_app(
        settings_for("notifications"),
        NotificationsConfig(allow_insecure_endpoints=True, poll_seconds=0.2),
    )
    runtime = notifications_client.app.state.runtime
    async with serve_in_this_loop(second):
        await nats_hooks_ran(second)
        for n in range(60):
            await publish_inbox_event(
                runtime.jetstream(), runtime.settings, student.id, "badge.awarded", {"n": n}
            )
        for browser in browsers:
            await wait_pushes(push_service, browser, 60, timeout=15)
        await asyncio.sleep(1.0)
    for browser in browsers:
        numbers = sorted(d.payload["data"]["n"] for d in push_service.received(browser))
        assert numbers == list(range(60))
