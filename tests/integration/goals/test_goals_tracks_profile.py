"""Tracks, the student's profile, goal requests and the profile's button states."""

from __future__ import annotations

from typing import Any

from tests.conftest import User, make_user
from tests.integration.goals.conftest import GoalsApi, outbox_events


async def test_tracks_are_seeded_for_anyone(goals_client: Any) -> None:
    response = await goals_client.get("/goals/tracks")
    assert response.status_code == 200
    tracks = {t["slug"]: t for t in response.json()["items"]}
    assert list(tracks) == ["agency", "saas"]
    assert tracks["agency"]["metric"] == "total_revenue"
    assert tracks["saas"]["metric"] == "mrr"
    assert [(g["slug"], g["target"], g["position"]) for g in tracks["agency"]["goals"]] == [
        ("agency-1k", "1000.00", 1),
        ("agency-3k", "3000.00", 2),
        ("agency-10k", "10000.00", 3),
        ("agency-25k", "25000.00", 4),
    ]
    assert [(g["slug"], g["target"]) for g in tracks["saas"]["goals"]] == [
        ("saas-1k-mrr", "1000.00"),
        ("saas-5k-mrr", "5000.00"),
        ("saas-20k-mrr", "20000.00"),
    ]
    assert all(g["name"] for t in tracks.values() for g in t["goals"])


async def test_a_new_student_has_an_empty_profile(goals_api: GoalsApi, student: User) -> None:
    profile = await goals_api.profile(student)
    assert profile["user_id"] == str(student.id)
    assert profile["name"] == student.name
    assert profile["track"] is None
    assert profile["current_goal"] is None
    assert profile["goal_status"] == "none"
    assert profile["progress"] == {"amount": "0.00", "target": None, "percent": 0.0}
    assert profile["total_revenue_earned"] == "0.00"
    assert profile["current_mrr"] == "0.00"
    assert profile["completed_goals"] == []
    assert profile["submission_state"] == "none"
    assert profile["last_verified_amount"] is None
    assert profile["rejection_reason"] is None
    assert profile["goal_request"] is None


async def test_me_routes_are_for_students_only(
    goals_client: Any, instructor: User, admin: User
) -> None:
    routes = [
        ("GET", "/goals/me", None),
        ("PUT", "/goals/me/goal", {"goal_slug": "agency-1k"}),
        ("POST", "/goals/me/submissions", {"amount": 10, "proof_url": "https://x.io/p"}),
        ("GET", "/goals/me/submissions", None),
        ("POST", "/goals/stories", {"title": "t", "story": "s", "anonymous": False}),
    ]
    for method, path, body in routes:
        for user in (instructor, admin):
            response = await goals_client.request(method, path, json=body, headers=user.headers)
            assert response.status_code == 403, (method, path, response.text)
        response = await goals_client.request(method, path, json=body)
        assert response.status_code == 401, (method, path, response.text)
        bad = await goals_client.request(
            method, path, json=body, headers={"Authorization": "Bearer not-a-token"}
        )
        assert bad.status_code == 401


async def test_goal_request_is_pending_until_approved(
    goals_api: GoalsApi, student: User, reviewer: User, db: Any
) -> None:
    profile = await goals_api.request_goal(student, "agency-1k")
    assert profile["goal_status"] == "pending_approval"
    assert profile["track"] == "agency"
    assert profile["current_goal"] == {
        "slug": "agency-1k",
        "name": "Agency $1k",
        "target": "1000.00",
    }
    assert profile["goal_request"]["status"] == "pending"
    review_id = profile["goal_request"]["id"]

    review = await goals_api.approve(review_id, reviewer)
    assert review["status"] == "approved"
    assert review["kind"] == "goal_request"
    assert review["reviewed_by"] == str(reviewer.id)
    assert review["student"] == {"id": str(student.id), "name": student.name}

    profile = await goals_api.profile(student)
    assert profile["goal_status"] == "active"
    assert profile["current_goal"]["slug"] == "agency-1k"
    assert profile["progress"] == {"amount": "0.00", "target": "1000.00", "percent": 0.0}
    assert profile["goal_request"]["status"] == "approved"

    events = await outbox_events(db, student.id)
    assert [e["type"] for e in events] == ["goals.goal.requested", "goals.goal.assigned"]
    requested, assigned = (e["data"] for e in events)
    assert requested == {
        "review_id": review_id,
        "student_id": str(student.id),
        "student_name": student.name,
        "track": "agency",
        "goal_slug": "agency-1k",
        "goal_name": "Agency $1k",
        "created_at": requested["created_at"],
    }
    assert assigned == {
        "student_id": str(student.id),
        "student_name": student.name,
        "track": "agency",
        "goal_slug": "agency-1k",
        "goal_name": "Agency $1k",
        "target": "1000.00",
        "review_id": review_id,
        "reviewed_by": str(reviewer.id),
    }
    assert events[1]["actor_id"] == str(reviewer.id)
    assert events[0]["actor_id"] == str(student.id)
    assert events[0]["source"] == "goals"


async def test_a_rejected_goal_request_leaves_the_previous_state(
    goals_api: GoalsApi, student: User, reviewer: User, db: Any
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    pending = await goals_api.request_goal(student, "saas-1k-mrr")
    assert pending["goal_status"] == "pending_approval"
    assert pending["track"] == "saas"
    review = await goals_api.reject(
        pending["goal_request"]["id"], reviewer, "  finish agency first "
    )
    assert review["status"] == "rejected"
    assert review["rejection_reason"] == "finish agency first"

    profile = await goals_api.profile(student)
    assert profile["goal_status"] == "active"
    assert profile["track"] == "agency"
    assert profile["current_goal"]["slug"] == "agency-1k"
    assert profile["goal_request"]["status"] == "rejected"
    assert profile["goal_request"]["rejection_reason"] == "finish agency first"
    events = await outbox_events(db, student.id)
    assert events[-1]["type"] == "goals.goal.rejected"
    assert events[-1]["data"] == {
        "review_id": review["id"],
        "student_id": str(student.id),
        "student_name": student.name,
        "goal_slug": "saas-1k-mrr",
        "reason": "finish agency first",
        "reviewed_by": str(reviewer.id),
    }
    # The student may ask again at once.
    again = await goals_api.request_goal(student, "saas-1k-mrr")
    assert again["goal_status"] == "pending_approval"


async def test_one_pending_goal_request_at_a_time(
    goals_api: GoalsApi, goals_client: Any, student: User, reviewer: User
) -> None:
    await goals_api.request_goal(student, "agency-1k")
    again = await goals_client.put(
        "/goals/me/goal", json={"goal_slug": "saas-1k-mrr"}, headers=student.headers
    )
    assert again.status_code == 409
    await goals_api.approve(await goals_api.pending_goal_request_id(student), reviewer)
    same = await goals_client.put(
        "/goals/me/goal", json={"goal_slug": "agency-1k"}, headers=student.headers
    )
    assert same.status_code == 409, "asking for the goal one already has changes nothing"


async def test_switching_tracks_keeps_the_other_metric(
    goals_api: GoalsApi, student: User, reviewer: User
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    await goals_api.submit_and_approve(student, 500, reviewer)
    profile = await goals_api.assign(student, "saas-1k-mrr", reviewer)
    assert profile["track"] == "saas"
    assert profile["total_revenue_earned"] == "500.00"
    assert profile["current_mrr"] == "0.00"
    assert profile["progress"]["amount"] == "0.00"


async def test_requesting_a_goal_already_reached_advances_past_it(
    goals_api: GoalsApi, student: User, reviewer: User, db: Any
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    await goals_api.submit_and_approve(student, 800, reviewer)
    await goals_api.assign(student, "saas-1k-mrr", reviewer)
    await goals_api.submit_and_approve(student, 2000, reviewer)  # completes saas-1k-mrr
    profile = await goals_api.assign(student, "agency-3k", reviewer)
    assert profile["current_goal"]["slug"] == "agency-3k"  # 800 < 3000: nothing reached
    await goals_api.submit_and_approve(student, 2500, reviewer)  # 3300
    profile = await goals_api.profile(student)
    assert [c["slug"] for c in profile["completed_goals"]] == ["saas-1k-mrr", "agency-3k"]
    assert profile["current_goal"]["slug"] == "agency-10k"
    # Back to agency-1k: 3300 already reached it, so it completes and the student advances.
    profile = await goals_api.assign(student, "agency-1k", reviewer)
    assert [c["slug"] for c in profile["completed_goals"]] == [
        "saas-1k-mrr",
        "agency-3k",
        "agency-1k",
    ]
    assert profile["current_goal"]["slug"] == "agency-10k"
    assert profile["goal_status"] == "active"
    types = [e["type"] for e in await outbox_events(db, student.id)]
    assert types[-4:] == [
        "goals.goal.requested",
        "goals.goal.assigned",
        "goals.goal.completed",
        "goals.goal.assigned",
    ]


async def test_unknown_student_profile_for_instructors_is_404(
    goals_client: Any, instructor: User
) -> None:
    response = await goals_client.get(
        f"/goals/students/{make_user().id}", headers=instructor.headers
    )
    assert response.status_code == 404


async def test_instructors_see_a_student_profile_and_history(
    goals_api: GoalsApi, goals_client: Any, student: User, reviewer: User
) -> None:
    await goals_api.assign(student, "saas-1k-mrr", reviewer)
    submission = await goals_api.submit(student, "1200.50", note="first customers")
    await goals_api.reject(submission["id"], reviewer, "blurry screenshot")
    response = await goals_client.get(f"/goals/students/{student.id}", headers=reviewer.headers)
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["profile"]["user_id"] == str(student.id)
    assert detail["profile"]["current_goal"]["slug"] == "saas-1k-mrr"
    assert detail["profile"]["submission_state"] == "rejected"
    assert detail["profile"]["rejection_reason"] == "blurry screenshot"
    assert [(h["kind"], h["status"]) for h in detail["history"]] == [
        ("revenue_submission", "rejected"),
        ("goal_request", "approved"),
    ]
    assert detail["history"][0]["amount"] == "1200.50"
    assert detail["history"][0]["note"] == "first customers"
