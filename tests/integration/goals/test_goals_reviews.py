"""Revenue submissions and the review queue: the SPEC's approval rules through HTTP."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import User, make_user
from tests.integration.goals.conftest import GoalsApi, outbox_events, outbox_types


async def test_agency_amounts_add_up_and_complete_every_goal_reached(
    goals_api: GoalsApi, student: User, reviewer: User, db: Any
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    profile = await goals_api.submit_and_approve(student, 1000, reviewer)
    assert profile["total_revenue_earned"] == "1000.00"
    assert [c["slug"] for c in profile["completed_goals"]] == ["agency-1k"]
    assert profile["current_goal"]["slug"] == "agency-3k"

    profile = await goals_api.submit_and_approve(student, "3500", reviewer)
    assert profile["total_revenue_earned"] == "4500.00"
    assert [c["slug"] for c in profile["completed_goals"]] == ["agency-1k", "agency-3k"]
    assert profile["current_goal"] == {
        "slug": "agency-10k",
        "name": "Agency $10k",
        "target": "10000.00",
    }
    assert profile["goal_status"] == "active"
    assert profile["progress"] == {"amount": "4500.00", "target": "10000.00", "percent": 45.0}
    assert profile["submission_state"] == "approved"
    assert profile["last_verified_amount"] == "3500.00"
    first, second = profile["completed_goals"]
    assert first["amount"] == "1000.00"
    assert second["amount"] == "4500.00"
    assert first["days_to_complete"] == 0 and second["days_to_complete"] == 0
    assert first["completed_at"] <= second["completed_at"]

    events = await outbox_events(db, student.id)
    assert [e["type"] for e in events] == [
        "goals.goal.requested",
        "goals.goal.assigned",
        "goals.submission.created",
        "goals.submission.approved",
        "goals.goal.completed",
        "goals.goal.assigned",
        "goals.submission.created",
        "goals.submission.approved",
        "goals.goal.completed",
        "goals.goal.assigned",
    ]
    approved = events[-3]["data"]
    assert approved["amount"] == "3500.00"
    assert approved["total_revenue_earned"] == "4500.00"
    assert approved["current_mrr"] == "0.00"
    assert approved["goal_slug"] == "agency-3k"
    assert approved["track"] == "agency"
    assert approved["reviewed_by"] == str(reviewer.id)
    assert approved["student_name"] == student.name
    completed = events[-2]["data"]
    assert completed["goal_slug"] == "agency-3k"
    assert completed["amount"] == "4500.00"
    assert completed["target"] == "3000.00"
    assert completed["days_to_complete"] == 0
    advanced = events[-1]["data"]
    assert advanced["goal_slug"] == "agency-10k"
    assert advanced["review_id"] is None and advanced["reviewed_by"] is None


async def test_one_submission_can_jump_several_goals(
    goals_api: GoalsApi, student: User, reviewer: User
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    profile = await goals_api.submit_and_approve(student, 12000, reviewer)
    assert [c["slug"] for c in profile["completed_goals"]] == [
        "agency-1k",
        "agency-3k",
        "agency-10k",
    ]
    assert profile["current_goal"]["slug"] == "agency-25k"
    profile = await goals_api.submit_and_approve(student, "20000.00", reviewer)
    assert profile["goal_status"] == "completed"
    assert profile["current_goal"]["slug"] == "agency-25k"
    assert profile["progress"]["percent"] == 100.0
    assert len(profile["completed_goals"]) == 4


async def test_saas_mrr_never_decreases(
    goals_api: GoalsApi, student: User, reviewer: User, db: Any
) -> None:
    await goals_api.assign(student, "saas-1k-mrr", reviewer)
    profile = await goals_api.submit_and_approve(student, 1500, reviewer)
    assert profile["current_mrr"] == "1500.00"
    assert profile["current_goal"]["slug"] == "saas-5k-mrr"
    profile = await goals_api.submit_and_approve(student, 800, reviewer)
    assert profile["current_mrr"] == "1500.00"
    assert profile["total_revenue_earned"] == "0.00"
    assert profile["last_verified_amount"] == "800.00"
    assert [c["slug"] for c in profile["completed_goals"]] == ["saas-1k-mrr"]
    assert profile["progress"] == {"amount": "1500.00", "target": "5000.00", "percent": 30.0}
    last = (await outbox_events(db, student.id))[-1]
    assert last["type"] == "goals.submission.approved"
    assert last["data"]["current_mrr"] == "1500.00"
    assert last["data"]["amount"] == "800.00"


async def test_reject_then_resubmit(
    goals_api: GoalsApi, goals_client: Any, student: User, reviewer: User, db: Any
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    submission = await goals_api.submit(student, 1200, note="  invoice #12  ")
    assert submission["status"] == "pending"
    assert submission["amount"] == "1200.00"
    assert submission["note"] == "invoice #12"
    assert submission["goal_slug"] == "agency-1k"
    assert submission["reviewed_at"] is None and submission["rejection_reason"] is None
    assert (await goals_api.profile(student))["submission_state"] == "pending"

    busy = await goals_client.post(
        "/goals/me/submissions",
        json={"amount": 5, "proof_url": "https://x.io/a"},
        headers=student.headers,
    )
    assert busy.status_code == 409
    change = await goals_client.put(
        "/goals/me/goal", json={"goal_slug": "saas-1k-mrr"}, headers=student.headers
    )
    assert change.status_code == 409, "no goal change while a submission waits for review"

    rejected = await goals_api.reject(
        submission["id"], reviewer, "the proof does not show the amount"
    )
    assert rejected["status"] == "rejected"
    assert rejected["reviewed_at"] is not None
    profile = await goals_api.profile(student)
    assert profile["submission_state"] == "rejected"
    assert profile["rejection_reason"] == "the proof does not show the amount"
    assert profile["total_revenue_earned"] == "0.00"
    assert profile["last_verified_amount"] is None
    event = (await outbox_events(db, student.id))[-1]
    assert event["type"] == "goals.submission.rejected"
    assert event["data"]["reason"] == "the proof does not show the amount"
    assert event["data"]["amount"] == "1200.00"
    assert event["data"]["student_name"] == student.name

    again = await goals_api.submit(student, 1200)
    profile = await goals_api.profile(student)
    assert profile["submission_state"] == "pending"
    assert profile["rejection_reason"] is None
    await goals_api.approve(again["id"], reviewer)
    profile = await goals_api.profile(student)
    assert profile["submission_state"] == "approved"
    assert profile["total_revenue_earned"] == "1200.00"

    mine = await goals_client.get("/goals/me/submissions", headers=student.headers)
    assert mine.status_code == 200
    items = mine.json()["items"]
    assert [(s["id"], s["status"]) for s in items] == [
        (again["id"], "approved"),
        (submission["id"], "rejected"),
    ]
    assert items[1]["rejection_reason"] == "the proof does not show the amount"
    assert mine.json()["next_cursor"] is None


async def test_submissions_need_an_active_goal(
    goals_api: GoalsApi, goals_client: Any, student: User, reviewer: User, db: Any
) -> None:
    body = {"amount": 100, "proof_url": "https://x.io/proof"}
    no_goal = await goals_client.post("/goals/me/submissions", json=body, headers=student.headers)
    assert no_goal.status_code == 409
    await goals_api.request_goal(student, "saas-1k-mrr")
    pending = await goals_client.post("/goals/me/submissions", json=body, headers=student.headers)
    assert pending.status_code == 409
    await goals_api.approve(await goals_api.pending_goal_request_id(student), reviewer)
    await goals_api.submit_and_approve(student, 30000, reviewer)
    profile = await goals_api.profile(student)
    assert profile["goal_status"] == "completed"
    done = await goals_client.post("/goals/me/submissions", json=body, headers=student.headers)
    assert done.status_code == 409
    assert "goals.submission.created" in await outbox_types(db, student.id)


async def test_my_submissions_are_paged_newest_first(
    goals_api: GoalsApi, goals_client: Any, student: User, reviewer: User
) -> None:
    await goals_api.assign(student, "agency-1k", reviewer)
    ids = []
    for amount in (10, 20, 30):
        submission = await goals_api.submit(student, amount)
        ids.append(submission["id"])
        await goals_api.reject(submission["id"], reviewer, "no")
    ids.reverse()
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await goals_client.get(
            "/goals/me/submissions", params=params, headers=student.headers
        )
        assert page.status_code == 200, page.text
        seen += [s["id"] for s in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_the_queue_is_oldest_first_and_paged(
    goals_api: GoalsApi, goals_client: Any, reviewer: User
) -> None:
    students = [make_user("student") for _ in range(3)]
    ours: list[str] = []
    for s in students:
        profile = await goals_api.request_goal(s, "agency-1k")
        ours.append(profile["goal_request"]["id"])
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"status": "pending", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await goals_client.get("/goals/reviews", params=params, headers=reviewer.headers)
        assert page.status_code == 200, page.text
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    ids = [r["id"] for r in seen]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i in ours] == ours
    stamps = [r["created_at"] for r in seen]
    assert stamps == sorted(stamps)
    assert all(r["status"] == "pending" for r in seen)
    mine = next(r for r in seen if r["id"] == ours[0])
    assert mine == {
        "id": ours[0],
        "kind": "goal_request",
        "status": "pending",
        "student": {"id": str(students[0].id), "name": students[0].name},
        "track": "agency",
        "goal_slug": "agency-1k",
        "amount": None,
        "proof_url": None,
        "note": None,
        "created_at": mine["created_at"],
        "reviewed_by": None,
        "reviewed_at": None,
        "rejection_reason": None,
    }
    # Default status is pending; decided reviews are listed by status.
    default = await goals_client.get(
        "/goals/reviews", params={"limit": 100}, headers=reviewer.headers
    )
    assert all(r["status"] == "pending" for r in default.json()["items"])
    await goals_api.reject(ours[1], reviewer, "pick one you can reach")
    rejected = await goals_client.get(
        "/goals/reviews", params={"status": "rejected", "limit": 100}, headers=reviewer.headers
    )
    assert ours[1] in [r["id"] for r in rejected.json()["items"]]


async def test_submission_in_the_queue_carries_its_proof(
    goals_api: GoalsApi, goals_client: Any, student: User, admin: User
) -> None:
    await goals_api.assign(student, "saas-1k-mrr", admin)  # admins review too
    submission = await goals_api.submit(
        student, 999.99, proof_url="https://stripe.example.com/mrr?month=11", note="Stripe MRR"
    )
    page = await goals_client.get("/goals/reviews", params={"limit": 100}, headers=admin.headers)
    cursor = page.json()["next_cursor"]
    items = page.json()["items"]
    while cursor:
        page = await goals_client.get(
            "/goals/reviews", params={"limit": 100, "cursor": cursor}, headers=admin.headers
        )
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
    review = next(r for r in items if r["id"] == submission["id"])
    assert review["kind"] == "revenue_submission"
    assert review["amount"] == "999.99"
    assert review["proof_url"] == "https://stripe.example.com/mrr?month=11"
    assert review["note"] == "Stripe MRR"
    assert review["track"] == "saas"
    assert review["goal_slug"] == "saas-1k-mrr"


async def test_deciding_twice_is_a_conflict_and_unknown_is_404(
    goals_api: GoalsApi, goals_client: Any, student: User, reviewer: User, db: Any
) -> None:
    profile = await goals_api.request_goal(student, "agency-1k")
    review_id = profile["goal_request"]["id"]
    await goals_api.approve(review_id, reviewer)
    before = await outbox_types(db, student.id)
    again = await goals_client.post(f"/goals/reviews/{review_id}/approve", headers=reviewer.headers)
    assert again.status_code == 409
    reject = await goals_client.post(
        f"/goals/reviews/{review_id}/reject", json={"reason": "late"}, headers=reviewer.headers
    )
    assert reject.status_code == 409
    assert await outbox_types(db, student.id) == before
    unknown = uuid.uuid4()
    for action, body in (("approve", None), ("reject", {"reason": "x"})):
        response = await goals_client.post(
            f"/goals/reviews/{unknown}/{action}", json=body, headers=reviewer.headers
        )
        assert response.status_code == 404


async def test_events_reach_nats(
    goals_api: GoalsApi, nats_client: Any, settings_for: Any, student: User, reviewer: User
) -> None:
    from tests.conftest import eventually, json_of

    settings = settings_for("goals")
    received: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        event = json_of(msg.data)
        if event["data"].get("student_id") == str(student.id):
            received.append(event)

    subscription = await nats_client.subscribe(settings.subject("goals.>"), cb=collect)
    await nats_client.flush()
    try:
        await goals_api.request_goal(student, "agency-1k")

        async def arrived() -> bool:
            return [e["type"] for e in received] == ["goals.goal.requested"]

        await eventually(arrived)
    finally:
        await subscription.unsubscribe()
