"""Badges are awarded and revoked by rule, and announced."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from community_shared.events import make_event

from tests.conftest import User, eventually, make_user
from tests.integration.leaderboard.leaderboard_support import (
    Events,
    days_ago,
    in_app,
    me,
    parts_of,
)


@pytest.fixture
async def badge_events(nats_client: Any, lb_settings: Any) -> Any:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def collect(msg: Any) -> None:
        envelope = msgspec.json.decode(msg.data)
        seen.append((envelope["type"], envelope["data"]))

    sub = await nats_client.subscribe(lb_settings.subject("leaderboard.badge.*"), cb=collect)
    yield seen
    await sub.unsubscribe()


async def badges_of(client: Any, user: User) -> list[str]:
    badges: list[str] = (await me(client, user))["badges"]
    return badges


async def test_goal_crusher_at_three_goals_not_two(
    leaderboard_client: Any, events: Events, badge_events: list[Any]
) -> None:
    student = make_user("student")
    for _ in range(2):
        await events.goal_completed(student, "agency")
    assert "goal-crusher" not in await badges_of(leaderboard_client, student)
    await events.goal_completed(student, "agency")
    assert "goal-crusher" in await badges_of(leaderboard_client, student)

    async def announced() -> bool:
        return (
            "leaderboard.badge.awarded",
            {"user_id": str(student.id), "name": student.name, "badge": "goal-crusher"},
        ) in badge_events

    await eventually(announced)
    activity = (await leaderboard_client.get("/leaderboard/activity?limit=100")).json()["items"]
    badge_items = [a for a in activity if a["user_id"] == str(student.id)]
    assert any(a["type"] == "badge.awarded" and "Goal Crusher" in a["text"] for a in badge_items)


async def test_fast_learner_at_forty_minutes_per_hour(
    leaderboard_client: Any, events: Events
) -> None:
    quick, almost = make_user("student"), make_user("student")
    await events.video(quick, 1200, 1800, at=days_ago(1))
    await events.video(quick, 1200, 1800)  # 2400 / 3600 -> 40.0
    await events.video(almost, 2399, 3600)
    assert "fast-learner" in await badges_of(leaderboard_client, quick)
    assert "fast-learner" not in await badges_of(leaderboard_client, almost)
    assert (await me(leaderboard_client, quick))["windows"]["7d"]["learn_rate"] == 40.0
    # watching slower this week takes the badge away
    await events.video(quick, 0, 600)
    assert "fast-learner" not in await badges_of(leaderboard_client, quick)


async def test_consistent_after_thirty_days_in_a_row(
    leaderboard_client: Any, events: Events
) -> None:
    steady, short = make_user("student"), make_user("student")
    for day in range(29, -1, -1):
        await events.video(steady, 60, 600, at=days_ago(day))
    for day in range(28, -1, -1):
        await events.video(short, 60, 600, at=days_ago(day))
    assert "consistent" in await badges_of(leaderboard_client, steady)
    assert "consistent" not in await badges_of(leaderboard_client, short)
    assert (await me(leaderboard_client, steady))["days_active"] == 30


async def test_consistent_counts_days_that_arrive_out_of_order(
    leaderboard_client: Any, events: Events
) -> None:
    student = make_user("student")
    for day in [*range(29, 15, -1), *range(0, 15)]:  # day 15 missing, then filled in last
        await events.video(student, 60, 600, at=days_ago(day))
    assert "consistent" not in await badges_of(leaderboard_client, student)
    await events.video(student, 60, 600, at=days_ago(15))
    assert "consistent" in await badges_of(leaderboard_client, student)


async def test_top_performer_goes_to_the_top_ten_earners_of_a_track(
    leaderboard_client: Any, events: Events, badge_events: list[Any]
) -> None:
    earners = [make_user("student") for _ in range(11)]
    for i, student in enumerate(earners):
        await events.assigned(student, "saas")
        amount = str(Decimal(10_000_000 + i * 1000))
        await events.approve(student, "saas", amount=amount, total=amount, mrr=amount)
    holders = [s for s in earners if "top-performer" in await badges_of(leaderboard_client, s)]
    assert earners[0] not in holders
    assert len(holders) == 10

    # The eleventh overtakes everyone: they get the badge, the tenth loses it.
    badge_events.clear()
    top = str(Decimal(20_000_000))
    await events.approve(earners[0], "saas", amount=top, total=top, mrr=top)
    assert "top-performer" in await badges_of(leaderboard_client, earners[0])
    assert "top-performer" not in await badges_of(leaderboard_client, earners[1])

    async def announced() -> bool:
        kinds = {(t, d["user_id"]) for t, d in badge_events if d["badge"] == "top-performer"}
        return {
            ("leaderboard.badge.awarded", str(earners[0].id)),
            ("leaderboard.badge.revoked", str(earners[1].id)),
        } <= kinds

    await eventually(announced)
    await asyncio.sleep(0.3)
    top_changes = [d["user_id"] for t, d in badge_events if d["badge"] == "top-performer"]
    assert sorted(top_changes) == sorted([str(earners[0].id), str(earners[1].id)])


async def test_a_backlog_decides_the_top_performers_once_worked_through(
    leaderboard_client: Any, events: Events, badge_events: list[Any]
) -> None:
    """Approvals replayed from a backlog would pass `top-performer` from one
    student to the next at every step; it is decided once, at the end."""
    service = parts_of(leaderboard_client).service
    earners = [make_user("student") for _ in range(12)]
    amounts = [str(Decimal(50_000_000 + i * 1000)) for i in range(12)]  # each above the last
    approvals = [
        make_event(
            "goals.submission.approved",
            events.approval(student, "saas", amount=amount, total="0.00", mrr=amount),
            source="goals",
            actor_id=None,
        )
        for student, amount in zip(earners, amounts, strict=True)
    ]
    badge_events.clear()
    for approval in approvals:  # batch by batch, as a backlog is applied
        await in_app(leaderboard_client, lambda a=approval: service.apply_events([a], behind=True))

    async def holders() -> list[User]:
        return [s for s in earners if "top-performer" in await badges_of(leaderboard_client, s)]

    assert await holders() == []  # not yet decided
    for approval in approvals:  # in the history too, as if they had come from it
        await events.publish_envelope(approval)
    await events.caught_up()
    await in_app(leaderboard_client, service.announce_pending_moves)
    assert await holders() == earners[2:]

    mine = {str(s.id) for s in earners}

    async def announced() -> bool:
        return len([d for _, d in badge_events if d["user_id"] in mine]) >= 10

    await eventually(announced)
    await asyncio.sleep(0.3)
    changes = [(t, d["user_id"]) for t, d in badge_events if d["user_id"] in mine]
    assert sorted(changes) == sorted(("leaderboard.badge.awarded", str(s.id)) for s in earners[2:])
