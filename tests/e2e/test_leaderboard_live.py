"""Through the websocket gateway: an approval moves a student up, live.

The approval is published as the goals service publishes it; the leaderboard
consumes it and announces the move; the gateway fans `rank.changed` out on the
`leaderboard` channel.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

pytest.importorskip("community_gateway.server")

from community_shared.events import encode_envelope, make_event

from tests.conftest import eventually, make_user


async def _publish(nats_client: Any, settings: Any, type_: str, data: dict[str, Any]) -> Any:
    envelope = make_event(type_, data, source=type_.split(".", 1)[0], actor_id=None)
    await nats_client.jetstream().publish(
        settings.subject(type_),
        encode_envelope(envelope),
        headers={"Nats-Msg-Id": str(envelope.id)},
    )
    return envelope


async def _applied(db: Any, *envelopes: Any) -> None:
    ids = [e.id for e in envelopes]

    async def done() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM leaderboard.applied_events WHERE id = ANY($1::uuid[])", ids
        )
        return bool(count == len(ids))

    await eventually(done)


async def _me(client: Any, user: Any) -> dict[str, Any]:
    response = await client.get("/leaderboard/me", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_approval_moves_a_student_up_with_one_rank_changed_frame(
    leaderboard_client: Any,
    gateway: Any,
    ws_connect: Any,
    nats_client: Any,
    settings_for: Any,
    db: Any,
) -> None:
    settings = settings_for("leaderboard")
    low, high = make_user("student"), make_user("student")
    setup = []
    for student in (low, high):
        setup.append(
            await _publish(
                nats_client, settings, "goals.goal.assigned",
                {"student_id": str(student.id), "student_name": student.name, "track": "agency",
                 "goal_slug": "first-1k", "goal_name": "First 1K", "target": "1000.00",
                 "review_id": None, "reviewed_by": None},
            )
        )  # fmt: skip
    for author in (high, high, low):
        setup.append(
            await _publish(
                nats_client, settings, "posts.post.created",
                {"id": str(uuid.uuid4()), "visibility": "public",
                 "author": {"id": str(author.id), "name": author.name, "role": "student"}},
            )
        )  # fmt: skip
    await _applied(db, *setup)
    before = await _me(leaderboard_client, low)
    assert before["rank"] > (await _me(leaderboard_client, high))["rank"]

    async def setup_announced() -> bool:
        waiting = await db.fetchval(
            "SELECT count(*) FROM leaderboard.outbox WHERE published_at IS NULL"
        )
        return bool(waiting == 0)

    # The setup's own moves (joining the boards) must not be taken for the
    # approval's: let them be published, and pass before the approval.
    await eventually(setup_announced)
    async with ws_connect(gateway) as ws:
        assert (await ws.subscribe("leaderboard"))["op"] == "subscribed"
        await ws.drain(quiet=0.3)
        approved_at = time.monotonic()
        approval = await _publish(
            nats_client, settings, "goals.submission.approved",
            {"review_id": str(uuid.uuid4()), "student_id": str(low.id),
             "student_name": low.name, "track": "agency", "goal_slug": "first-1k",
             "amount": "5000.00", "total_revenue_earned": "5000.00", "current_mrr": "0.00",
             "reviewed_by": str(uuid.uuid4()), "reviewed_at": "2025-01-01T00:00:00Z"},
        )  # fmt: skip

        def mine_on_all_time(frame: dict[str, Any]) -> bool:
            data = frame.get("data") or {}
            return (
                frame.get("op") == "event"
                and frame.get("type") == "rank.changed"
                and data.get("user_id") == str(low.id)
                and data.get("board") == "all:all"
            )

        frame = await ws.recv_until(mine_on_all_time, timeout=2.0)
        assert time.monotonic() - approved_at < 2.0
        rest = await ws.drain(quiet=0.5)

    await _applied(db, approval)
    after = await _me(leaderboard_client, low)
    assert frame["channel"] == "leaderboard"
    assert frame["data"]["old_rank"] == before["rank"]
    assert frame["data"]["new_rank"] == after["rank"]
    assert after["rank"] < before["rank"]
    frames = [*ws.skipped, frame, *rest]
    assert sum(1 for f in frames if mine_on_all_time(f)) == 1
    assert not [
        f for f in frames
        if f.get("type") == "rank.changed" and (f.get("data") or {}).get("user_id") == str(high.id)
    ]  # fmt: skip


async def test_an_approval_by_an_instructor_through_the_goals_service(
    leaderboard_client: Any, goals_client: Any, gateway: Any, ws_connect: Any
) -> None:
    from tests.integration.goals.conftest import GoalsApi

    goals = GoalsApi(goals_client)
    instructor = make_user("instructor")
    low, high = make_user("student"), make_user("student")
    for student in (low, high):
        await goals.assign(student, "agency-1k", instructor)
    # high: 900 approved and a submission waiting; low: 100 approved and one waiting
    await goals.submit_and_approve(high, "900.00", instructor)
    await goals.submit(high, "50.00")
    await goals.submit_and_approve(low, "100.00", instructor)
    pending = await goals.submit(low, "500.00")

    async def settled() -> bool:
        mine, theirs = await _me(leaderboard_client, low), await _me(leaderboard_client, high)
        return (mine["earned"], mine["actions"], theirs["actions"]) == ("100.00", 2, 2)

    await eventually(settled, timeout=10)
    before = await _me(leaderboard_client, low)
    assert before["rank"] > (await _me(leaderboard_client, high))["rank"]

    async with ws_connect(gateway) as ws:
        assert (await ws.subscribe("leaderboard"))["op"] == "subscribed"
        await goals.approve(pending["id"], instructor)
        approved_at = time.monotonic()

        def mine_on_all_time(frame: dict[str, Any]) -> bool:
            data = frame.get("data") or {}
            return (
                frame.get("type") == "rank.changed"
                and data.get("user_id") == str(low.id)
                and data.get("board") == "all:all"
            )

        frame = await ws.recv_until(mine_on_all_time, timeout=2.0)
        assert time.monotonic() - approved_at < 2.0
        rest = await ws.drain(quiet=0.5)

    after = await _me(leaderboard_client, low)
    assert after["earned"] == "600.00"
    assert frame["data"]["old_rank"] == before["rank"]
    assert frame["data"]["new_rank"] == after["rank"] < before["rank"]
    assert sum(1 for f in [*ws.skipped, frame, *rest] if mine_on_all_time(f)) == 1
