"""The goals flow live through the websocket gateway: what instructors and students see."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import make_user
from tests.integration.goals.conftest import GoalsApi


def _event(channel: str, type_: str, **data: Any) -> Any:
    def matches(frame: dict[str, Any]) -> bool:
        return (
            frame.get("op") == "event"
            and frame.get("channel") == channel
            and frame.get("type") == type_
            and all(frame["data"].get(k) == v for k, v in data.items())
        )

    return matches


async def _collect(ws: Any, channel: str, types: list[str], timeout: float = 5.0) -> dict[str, Any]:
    """Read `channel` events until one of each of `types` has arrived, in any order."""
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while set(types) - set(found):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"missing {set(types) - set(found)} on {channel}"
        frame = await ws.recv_until(
            lambda f: f.get("op") == "event" and f.get("channel") == channel, remaining
        )
        found.setdefault(frame["type"], frame)
    return found


async def test_review_alerts_and_student_notifications(
    goals_client: Any, gateway: Any, ws_connect: Any
) -> None:
    goals = GoalsApi(goals_client)
    student = make_user("student")
    instructor = make_user("instructor")
    inbox = f"user:{student.id}"
    async with (
        ws_connect(gateway, instructor.token) as desk,
        ws_connect(gateway, student.token) as phone,
    ):
        assert (await desk.subscribe("reviews"))["op"] == "subscribed"
        assert inbox in phone.hello["channels"]

        # A goal request reaches the instructor's review desk at once.
        started = time.monotonic()
        profile = await goals.request_goal(student, "agency-1k")
        review_id = profile["goal_request"]["id"]
        alert = await desk.recv_until(
            _event("reviews", "review.requested", review_id=review_id), timeout=2
        )
        assert time.monotonic() - started < 2
        assert alert["data"]["kind"] == "goal_request"
        assert alert["data"]["student"] == {"id": str(student.id), "name": student.name}
        assert alert["data"]["goal_slug"] == "agency-1k"

        await goals.approve(review_id, instructor)
        assigned = await phone.recv_until(_event(inbox, "goal.assigned", goal_slug="agency-1k"))
        assert assigned["data"]["review_id"] == review_id
        resolved = await desk.recv_until(_event("reviews", "review.resolved", review_id=review_id))
        assert resolved["data"]["status"] == "approved"
        assert resolved["data"]["kind"] == "goal_request"

        # A revenue proof alerts the instructor; approving it notifies the student,
        # and reaching the target completes the goal.
        started = time.monotonic()
        submission = await goals.submit(
            student, "1500.00", proof_url="https://proofs.example.com/1.png", note="retainer"
        )
        alert = await desk.recv_until(
            _event("reviews", "review.requested", review_id=submission["id"]), timeout=2
        )
        assert time.monotonic() - started < 2
        assert alert["data"]["kind"] == "revenue_submission"
        assert alert["data"]["amount"] == "1500.00"
        assert alert["data"]["proof_url"] == "https://proofs.example.com/1.png"

        await goals.approve(submission["id"], instructor)
        news = await _collect(phone, inbox, ["submission.approved", "goal.completed"])
        assert news["submission.approved"]["data"]["review_id"] == submission["id"]
        assert news["submission.approved"]["data"]["total_revenue_earned"] == "1500.00"
        assert news["goal.completed"]["data"]["goal_slug"] == "agency-1k"
        nxt = await phone.recv_until(_event(inbox, "goal.assigned", goal_slug="agency-3k"))
        assert nxt["data"]["review_id"] is None
        resolved = await desk.recv_until(
            _event("reviews", "review.resolved", review_id=submission["id"])
        )
        assert resolved["data"]["status"] == "approved"

        # A rejection reaches the student with its reason.
        second = await goals.submit(student, 100)
        await goals.reject(second["id"], instructor, "please attach the invoice")
        rejected = await phone.recv_until(
            _event(inbox, "submission.rejected", review_id=second["id"])
        )
        assert rejected["data"]["reason"] == "please attach the invoice"


async def test_students_may_not_watch_the_review_desk(gateway: Any, ws_connect: Any) -> None:
    student = make_user("student")
    async with ws_connect(gateway, student.token) as ws:
        answer = await ws.subscribe("reviews")
        assert answer["op"] == "error"
        assert answer["code"] == "forbidden"
    async with ws_connect(gateway) as guest:
        answer = await guest.subscribe("reviews")
        assert answer["op"] == "error"
        assert answer["code"] == "forbidden"
