"""Rebuilding from the event history gives what the live consumers built."""

from __future__ import annotations

import uuid
from typing import Any

from community_leaderboard.boards import Boards
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.history import history_stream_name, origin_sequence
from community_leaderboard.rebuild import rebuild

from tests.conftest import eventually, make_user
from tests.integration.leaderboard.leaderboard_support import Events, days_ago, me

STATISTICS = {
    "students": "SELECT * FROM leaderboard.students ORDER BY user_id",
    "daily_stats": "SELECT * FROM leaderboard.daily_stats ORDER BY user_id, day",
    "counted_items": "SELECT * FROM leaderboard.counted_items ORDER BY kind, item_id",
    "applied_events": "SELECT id FROM leaderboard.applied_events ORDER BY id",
    "activity": "SELECT id, kind, user_id, occurred_at, subject_id, amount, detail, ref"
    " FROM leaderboard.activity WHERE kind <> 'badge.awarded' ORDER BY id",
}


async def statistics(db: Any) -> dict[str, list[dict[str, Any]]]:
    async with db.acquire() as conn:
        return {name: [dict(r) for r in await conn.fetch(sql)] for name, sql in STATISTICS.items()}


async def test_rebuild_from_history_gives_the_same_boards(
    leaderboard_client: Any, events: Events, redis_client: Any, lb_settings: Any, db: Any
) -> None:
    # A varied history: both tracks, undone likes, deleted posts, old events, learning.
    students = [make_user("student") for _ in range(6)]
    post_ids = [uuid.uuid4() for _ in students]
    for i, (student, post_id) in enumerate(zip(students, post_ids, strict=True)):
        track = "agency" if i % 2 else "saas"
        await events.assigned(student, track)
        await events.post(student, post_id=post_id, at=days_ago(i * 4))
        await events.video(student, 600 * i, 1800, at=days_ago(i))
        await events.send("learning.task.assigned", {"user_id": str(student.id), "task_id": "t1"})
        if i % 3 == 0:
            await events.send(
                "learning.task.completed", {"user_id": str(student.id), "task_id": "t1"}
            )
        amount = f"{(i + 1) * 900}.00"
        await events.approve(
            student, track, amount=amount, total=amount, mrr=amount, at=days_ago(i * 3)
        )
    await events.like(students[0], post_ids[1], students[1].id)
    await events.like(students[2], post_ids[1], students[1].id)
    await events.like(students[2], post_ids[1], students[1].id, unlike=True)
    await events.send(
        "posts.post.deleted",
        {"id": str(post_ids[3]), "author_id": str(students[3].id), "visibility": "public",
         "removed_by": str(students[3].id), "reason": "author"},
    )  # fmt: skip
    for _ in range(3):
        await events.goal_completed(students[4], "agency")
    badges_before = {str(s.id): (await me(leaderboard_client, s))["badges"] for s in students}

    boards = Boards(redis_client, lb_settings)
    live_boards = await boards.snapshot()
    live_statistics = await statistics(db)
    assert any(live_boards.values())

    report = await rebuild(lb_settings, LeaderboardConfig())

    assert report.students_ranked >= len(students)
    assert report.events >= len(live_statistics["applied_events"])
    assert await boards.snapshot() == live_boards
    rebuilt = await statistics(db)
    for table in STATISTICS:
        assert rebuilt[table] == live_statistics[table], table
    badges_after = {str(s.id): (await me(leaderboard_client, s))["badges"] for s in students}
    assert badges_after == badges_before
    assert "goal-crusher" in badges_after[str(students[4].id)]

    # The live consumers carry on after a rebuild, without counting anything twice.
    await events.post(students[0])
    assert (await me(leaderboard_client, students[0]))["actions"] == 5


async def test_a_rebuild_replays_events_the_events_stream_no_longer_holds(
    leaderboard_client: Any,
    events: Events,
    nats_client: Any,
    redis_client: Any,
    lb_settings: Any,
    db: Any,
) -> None:
    """`EVENTS` keeps eight days; the leaderboard's history streams keep its
    events for good, and a rebuild replays them from there."""
    student = make_user("student")
    published = [
        await events.assigned(student, "agency"),
        await events.post(student, at=days_ago(20)),
        await events.video(student, 1200, 1800, at=days_ago(12)),
        await events.approve(
            student, "agency", amount="4000.00", total="4000.00", mrr="0.00", at=days_ago(15)
        ),
    ]
    standing = await me(leaderboard_client, student)
    assert standing["earned"] == "4000.00"
    boards = Boards(redis_client, lb_settings)
    live_boards = await boards.snapshot()
    live_statistics = await statistics(db)

    # The server copied each event into its source's history stream...
    js = nats_client.jetstream()
    for envelope in published:
        stream = history_stream_name(lb_settings, envelope.type.split(".", 1)[0] + ".>")
        sequence = events.sequences[envelope.id]

        async def copied(stream: str = stream, sequence: int = sequence) -> bool:
            last = (await js.stream_info(stream)).state.last_seq
            if last == 0:
                return False
            origin = origin_sequence(await js.get_msg(stream, last))
            return origin is not None and origin >= sequence

        await eventually(copied, timeout=5)
    # ... and EVENTS forgets them, as it does after eight days.
    for envelope in published:
        assert await js.delete_msg(lb_settings.stream_name("EVENTS"), events.sequences[envelope.id])

    await rebuild(lb_settings, LeaderboardConfig())

    assert await boards.snapshot() == live_boards
    assert await statistics(db) == live_statistics
    assert await me(leaderboard_client, student) == standing
