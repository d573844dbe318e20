"""Web Push delivery end to end: goals and posts write, the gateway routes, the service
pushes, and the local push service verifies and decrypts (SPEC §12)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from community_shared.presencekeys import foreground_connections

from tests.conftest import User, make_user
from tests.integration.goals.conftest import GoalsApi
from tests.integration.notifications.conftest import (
    consumer_exists,
    publish_inbox_event,
    subscribe_browser,
    wait_pushes,
)
from tests.pushservice import BrowserSubscription, PushService

QUIET_SECONDS = 2.5
"""How long a push that must not come is waited for (the budget for one that must is 2 s)."""


def _with(browser_pushes: list[Any], **data: Any) -> list[Any]:
    return [
        d for d in browser_pushes if all(d.payload["data"].get(k) == v for k, v in data.items())
    ]


async def _pushes_for(
    push_service: PushService, browser: BrowserSubscription, timeout: float, **data: Any
) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = _with(push_service.received(browser), **data)
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


async def _foreground_is(gateway: Any, redis: Any, user: User, count: int) -> None:
    """Until the gateway has written the user's foreground connections to Redis."""
    settings = gateway.settings
    deadline = time.monotonic() + 5
    while (await foreground_connections(redis, settings, [str(user.id)]))[str(user.id)] != count:
        assert time.monotonic() < deadline, "the gateway never wrote the foreground count"
        await asyncio.sleep(0.05)


async def _student_with_goal(goals: GoalsApi, reviewer: User) -> User:
    student = make_user("student")
    await goals.assign(student, "agency-10k", reviewer)
    return student


async def test_an_instructor_without_a_connection_gets_the_proof_within_2s(
    notifications_client: Any, goals_client: Any, push_service: PushService
) -> None:
    goals = GoalsApi(goals_client)
    instructor = make_user("instructor")
    browser, _ = await subscribe_browser(notifications_client, push_service, instructor)
    student = await _student_with_goal(goals, make_user("admin"))

    started = time.time()
    submission = await goals.submit(student, "1500.00")
    [push] = await _pushes_for(push_service, browser, 2.0, review_id=submission["id"])

    assert push.at - started < 2.0
    assert push.payload["type"] == "review.requested"
    assert push.payload["channel"] == "reviews"
    assert isinstance(push.payload["seq"], int) and push.payload["seq"] > 0
    assert push.payload["ts"].endswith("Z")
    assert push.payload["data"]["kind"] == "revenue_submission"
    assert push.payload["data"]["amount"] == "1500.00"
    assert (push.ttl, push.urgency) == (86400, "high")
    assert push_service.refused == []


async def test_a_foreground_connection_holds_the_push_a_background_one_does_not(
    notifications_client: Any,
    goals_client: Any,
    gateway: Any,
    ws_connect: Any,
    redis_client: Any,
    push_service: PushService,
) -> None:
    goals = GoalsApi(goals_client)
    instructor = make_user("instructor")
    browser, _ = await subscribe_browser(notifications_client, push_service, instructor)
    admin = make_user("admin")
    first, second = await _student_with_goal(goals, admin), await _student_with_goal(goals, admin)

    async with ws_connect(gateway, instructor.token) as desk:
        await _foreground_is(gateway, redis_client, instructor, 1)
        seen = await goals.submit(first, "100.00")
        assert await _pushes_for(push_service, browser, QUIET_SECONDS, review_id=seen["id"]) == []

        assert (await desk.request({"op": "mode", "mode": "background"}))["op"] == "ok"
        await _foreground_is(gateway, redis_client, instructor, 0)
        hidden = await goals.submit(second, "200.00")
        assert len(await _pushes_for(push_service, browser, 2.0, review_id=hidden["id"])) == 1

    # The connection closed: nothing holds the pushes any more.
    await _foreground_is(gateway, redis_client, instructor, 0)


async def test_a_student_is_pushed_the_decisions(
    notifications_client: Any, goals_client: Any, push_service: PushService
) -> None:
    goals = GoalsApi(goals_client)
    reviewer = make_user("instructor")
    student = make_user("student")
    browser, _ = await subscribe_browser(notifications_client, push_service, student)
    await goals.assign(student, "agency-10k", reviewer)
    [assigned] = await _pushes_for(push_service, browser, 2.0)
    assert assigned.payload["type"] == "goal.assigned"
    assert assigned.payload["channel"] == f"user:{student.id}"

    approved = await goals.submit(student, "300.00")
    started = time.time()
    await goals.approve(approved["id"], reviewer)
    [push] = await _pushes_for(push_service, browser, 2.0, review_id=approved["id"])
    assert push.at - started < 2.0
    assert push.payload["type"] == "submission.approved" and push.urgency == "high"

    rejected = await goals.submit(student, "400.00")
    started = time.time()
    await goals.reject(rejected["id"], reviewer, "the screenshot is cut off")
    [push] = await _pushes_for(push_service, browser, 2.0, review_id=rejected["id"])
    assert push.at - started < 2.0
    assert push.payload["type"] == "submission.rejected"
    assert push.payload["data"]["reason"] == "the screenshot is cut off"
    assert push_service.count(browser) == 3


async def test_likes_are_pushed_only_once_the_preference_says_so(
    notifications_client: Any, posts_client: Any, push_service: PushService
) -> None:
    author, fan, other_fan = (make_user("student") for _ in range(3))
    browser, _ = await subscribe_browser(notifications_client, push_service, author)
    post = await posts_client.post("/posts", json={"content": "First win!"}, headers=author.headers)
    assert post.status_code == 201
    like = f"/posts/{post.json()['id']}/like"

    assert (await posts_client.put(like, headers=fan.headers)).status_code == 200
    assert await _pushes_for(push_service, browser, QUIET_SECONDS) == []

    turned_on = await notifications_client.put(
        "/notifications/preferences",
        json={"push": {"like.received": True}},
        headers=author.headers,
    )
    assert turned_on.status_code == 200
    assert (await posts_client.put(like, headers=other_fan.headers)).status_code == 200
    [push] = await _pushes_for(push_service, browser, 2.0)
    assert push.payload["type"] == "like.received"
    assert push.urgency == "normal"


async def test_a_turned_off_type_is_not_pushed(
    notifications_client: Any, goals_client: Any, push_service: PushService
) -> None:
    goals = GoalsApi(goals_client)
    student = make_user("student")
    browser, _ = await subscribe_browser(notifications_client, push_service, student)
    off = await notifications_client.put(
        "/notifications/preferences",
        json={"push": {"goal.assigned": False}},
        headers=student.headers,
    )
    assert off.status_code == 200
    await goals.assign(student, "agency-10k", make_user("instructor"))
    assert await _pushes_for(push_service, browser, QUIET_SECONDS) == []


async def test_every_browser_of_the_user_gets_it_once(
    notifications_client: Any, goals_client: Any, push_service: PushService
) -> None:
    goals = GoalsApi(goals_client)
    student = make_user("student")
    laptop, _ = await subscribe_browser(notifications_client, push_service, student)
    phone, _ = await subscribe_browser(notifications_client, push_service, student)
    await goals.assign(student, "agency-10k", make_user("instructor"))
    await wait_pushes(push_service, laptop, 1, timeout=2.0)
    await wait_pushes(push_service, phone, 1, timeout=2.0)
    await asyncio.sleep(1.0)
    assert (push_service.count(laptop), push_service.count(phone)) == (1, 1)


async def test_a_consumer_deleted_with_its_stream_is_made_again(
    notifications_client: Any, push_service: PushService
) -> None:
    """A channel stream recreated (its consumers with it): the intake notices and follows
    the new one, without a restart."""
    runtime = notifications_client.app.state.runtime
    js = runtime.jetstream()
    stream = runtime.settings.stream_name("INBOX")
    durable = runtime.settings.stream_name("notifications_inbox")
    student = make_user("student")
    browser, _ = await subscribe_browser(notifications_client, push_service, student)

    await js.delete_consumer(stream, durable)
    await asyncio.sleep(0.5)
    await consumer_exists(js, stream, durable, timeout=20)
    await publish_inbox_event(js, runtime.settings, student.id, "badge.awarded", {"badge": "x"})
    [push] = await wait_pushes(push_service, browser, 1, timeout=5)
    assert push.payload["data"] == {"badge": "x"}
