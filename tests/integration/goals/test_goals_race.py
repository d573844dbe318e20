"""Two (or twenty) instructors deciding one review at once: exactly one wins."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import User, make_user
from tests.integration.goals.conftest import GoalsApi, outbox_events


async def _decide_concurrently(goals_client: Any, review_id: str) -> list[tuple[str, Any]]:
    reviewers = [make_user("instructor" if i % 2 else "admin") for i in range(20)]

    async def decide(i: int, reviewer: User) -> tuple[str, Any]:
        if i % 2:
            response = await goals_client.post(
                f"/goals/reviews/{review_id}/approve", headers=reviewer.headers
            )
            return "approve", response
        response = await goals_client.post(
            f"/goals/reviews/{review_id}/reject",
            json={"reason": f"reason {i}"},
            headers=reviewer.headers,
        )
        return "reject", response

    return await asyncio.gather(*(decide(i, r) for i, r in enumerate(reviewers)))


async def test_twenty_concurrent_decisions_on_a_submission(
    goals_api: GoalsApi, goals_client: Any, student: User, reviewer: User, db: Any
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    submission = await goals_api.submit(student, 5000)
    results = await _decide_concurrently(goals_client, submission["id"])

    statuses = sorted(r.status_code for _, r in results)
    assert statuses == [200] + [409] * 19, statuses
    action, winner = next((a, r) for a, r in results if r.status_code == 200)
    decided = winner.json()

    events = [
        e
        for e in await outbox_events(db, student.id)
        if e["data"].get("review_id") == submission["id"]
    ]
    decisions = [e for e in events if e["type"] != "goals.submission.created"]
    profile = await goals_api.profile(student)
    row = await db.fetchrow(
        "SELECT status, reviewed_by FROM goals.reviews WHERE id = $1::uuid", submission["id"]
    )
    assert str(row["reviewed_by"]) == decided["reviewed_by"]
    if action == "approve":
        assert decided["status"] == row["status"] == "approved"
        assert [e["type"] for e in decisions] == ["goals.submission.approved"]
        assert profile["total_revenue_earned"] == "5000.00"
        assert [c["slug"] for c in profile["completed_goals"]] == ["agency-1k", "agency-3k"]
        completions = [
            e for e in await outbox_events(db, student.id) if e["type"] == "goals.goal.completed"
        ]
        assert len(completions) == 2
    else:
        assert decided["status"] == row["status"] == "rejected"
        assert [e["type"] for e in decisions] == ["goals.submission.rejected"]
        assert decisions[0]["data"]["reason"] == decided["rejection_reason"]
        assert profile["total_revenue_earned"] == "0.00"
        assert profile["completed_goals"] == []
    assert decisions[0]["data"]["reviewed_by"] == decided["reviewed_by"]


async def test_twenty_concurrent_decisions_on_a_goal_request(
    goals_api: GoalsApi, goals_client: Any, student: User, db: Any
) -> None:
    profile = await goals_api.request_goal(student, "saas-1k-mrr")
    review_id = profile["goal_request"]["id"]
    results = await _decide_concurrently(goals_client, review_id)
    assert sorted(r.status_code for _, r in results) == [200] + [409] * 19
    action = next(a for a, r in results if r.status_code == 200)
    types = [e["type"] for e in await outbox_events(db, student.id)]
    if action == "approve":
        assert types == ["goals.goal.requested", "goals.goal.assigned"]
        assert (await goals_api.profile(student))["goal_status"] == "active"
    else:
        assert types == ["goals.goal.requested", "goals.goal.rejected"]
        assert (await goals_api.profile(student))["goal_status"] == "none"


async def test_concurrent_submissions_leave_one_pending(
    goals_api: GoalsApi, goals_client: Any, student: User, reviewer: User, db: Any
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    responses = await asyncio.gather(
        *(
            goals_client.post(
                "/goals/me/submissions",
                json={"amount": 100 + i, "proof_url": "https://example.com/p"},
                headers=student.headers,
            )
            for i in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    pending = await db.fetchval(
        "SELECT count(*) FROM goals.reviews WHERE student_id = $1 AND status = 'pending'",
        student.id,
    )
    assert pending == 1
