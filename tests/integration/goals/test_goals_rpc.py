"""`rpc.goals.profile`: what other services learn about a student over NATS."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from tests.conftest import User, make_user
from tests.integration.goals.conftest import GoalsApi


async def _ask(nats_client: Any, settings_for: Any, payload: bytes) -> dict[str, Any]:
    subject = settings_for("goals").subject("rpc.goals.profile")
    reply = await nats_client.request(subject, payload, timeout=2)
    return dict(msgspec.json.decode(reply.data))


async def test_profile_of_a_known_student(
    goals_api: GoalsApi, nats_client: Any, settings_for: Any, student: User, reviewer: User
) -> None:
    await goals_api.assign(student, "saas-1k-mrr", reviewer)
    await goals_api.submit_and_approve(student, "1500", reviewer)
    started = time.perf_counter()
    answer = await _ask(
        nats_client, settings_for, msgspec.json.encode({"user_id": str(student.id)})
    )
    elapsed = time.perf_counter() - started
    assert answer == {
        "user_id": str(student.id),
        "track": "saas",
        "goal_slug": "saas-5k-mrr",
        "goal_name": "SaaS $5k MRR",
        "total_revenue_earned": "0.00",
        "current_mrr": "1500.00",
    }
    assert elapsed < 1.0  # a primary-key lookup; generous for a loaded test machine


async def test_profile_of_a_student_without_a_goal(
    goals_api: GoalsApi, nats_client: Any, settings_for: Any, student: User
) -> None:
    await goals_api.profile(student)
    answer = await _ask(
        nats_client, settings_for, msgspec.json.encode({"user_id": str(student.id)})
    )
    assert answer["track"] is None
    assert answer["goal_slug"] is None
    assert answer["goal_name"] is None
    assert answer["total_revenue_earned"] == "0.00"


async def test_a_pending_request_is_not_the_public_goal(
    goals_api: GoalsApi, nats_client: Any, settings_for: Any, student: User, reviewer: User
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    await goals_api.request_goal(student, "saas-1k-mrr")
    answer = await _ask(
        nats_client, settings_for, msgspec.json.encode({"user_id": str(student.id)})
    )
    assert answer["goal_slug"] == "agency-1k"


async def test_unknown_user_is_not_found(nats_client: Any, settings_for: Any) -> None:
    answer = await _ask(
        nats_client, settings_for, msgspec.json.encode({"user_id": str(make_user().id)})
    )
    assert answer == {"error": "not_found"}


async def test_malformed_requests_are_bad_requests(nats_client: Any, settings_for: Any) -> None:
    for payload in (b"", b"{}", b"[]", b"null", b'{"user_id": "nope"}', b'{"user_id": 5}', b"\xff"):
        assert await _ask(nats_client, settings_for, payload) == {"error": "bad_request"}, payload
