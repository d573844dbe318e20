"""Consuming events: idempotency, catch-up, what counts and what does not."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from community_leaderboard import store
from community_leaderboard.schemas import Privacy
from community_shared.auth import Identity
from community_shared.events import make_event

from tests.conftest import eventually, make_user
from tests.integration.leaderboard.leaderboard_support import (
    Events,
    days_ago,
    in_app,
    me,
    parts_of,
    whole_board,
)


async def test_the_same_event_delivered_twice_counts_once(
    leaderboard_client: Any, events: Events
) -> None:
    student = make_user("student")
    first = await events.post(student)
    # The same envelope again, under another Nats-Msg-Id so the stream keeps both copies.
    await events.publish_envelope(first, msg_id=f"again-{first.id}")
    # A later event of the same source is applied after the duplicate (one consumer, in order).
    await events.post(student)
    mine = await me(leaderboard_client, student)
    assert mine["actions"] == 2
    assert mine["points"] == 10


async def test_a_stopped_consumer_catches_up(leaderboard_client: Any, events: Events) -> None:
    consumers = parts_of(leaderboard_client).consumers
    student = make_user("student")
    await in_app(leaderboard_client, consumers.stop)
    try:
        published = [
            await events.publish(
                "learning.video.watched",
                {"user_id": str(student.id), "video_id": f"v{i}", "watched_seconds": 60,
                 "session_seconds": 120},
            )
            for i in range(5)
        ]  # fmt: skip
        posted = await events.publish(
            "posts.post.created",
            {"id": str(uuid.uuid4()), "author": {"id": str(student.id), "name": student.name,
             "role": "student"}, "visibility": "public"},
        )  # fmt: skip
        await asyncio.sleep(0.3)
        count = await events.db.fetchval(
            "SELECT count(*) FROM leaderboard.applied_events WHERE id = ANY($1::uuid[])",
            [e.id for e in [*published, posted]],
        )
        assert count == 0
    finally:
        await in_app(leaderboard_client, consumers.start)
    await events.applied(*published, posted)
    mine = await me(leaderboard_client, student)
    assert mine["actions"] == 6
    assert mine["learn_rate"] == 30.0


async def test_a_student_changed_while_a_batch_is_applied_keeps_both_changes(
    leaderboard_client: Any, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest reads students without locking them and writes each back only
    at the version it read: a change committed in between (here the privacy
    route, naming a student from their token) makes the batch apply again from
    fresh rows instead of being overwritten."""
    service = parts_of(leaderboard_client).service
    student = make_user("student")
    await events.send("learning.task.assigned", {"user_id": str(student.id), "task_id": "t1"})
    raced: list[uuid.UUID] = []
    read = store.read_students

    async def read_then_race(conn: Any, user_ids: Any, *, lock: bool = False) -> Any:
        found = await read(conn, user_ids, lock=lock)
        if student.id in found and not raced:
            raced.append(student.id)
            token = Identity(user_id=student.id, role="student", name="Named By Token", member=True)
            await service.set_privacy(token, Privacy(show_on_leaderboard=True, show_earnings=False))
        return found

    monkeypatch.setattr(store, "read_students", read_then_race)
    watched = await events.video_event(student, watched=60, session=120)
    await events.applied(watched)
    assert raced == [student.id]
    row = await events.db.fetchrow(
        "SELECT name, videos_watched, tasks_assigned FROM leaderboard.students WHERE user_id = $1",
        student.id,
    )
    assert tuple(row) == ("Named By Token", 1, 1)


async def test_a_stale_student_row_is_refused(events: Events) -> None:
    student = make_user("student")
    async with events.db.acquire() as conn:
        async with conn.transaction():
            state = (await store.read_students(conn, [student.id]))[student.id]  # created
        await events.db.execute(  # another transaction changes the row
            "UPDATE leaderboard.students SET name = 'Someone' WHERE user_id = $1", student.id
        )
        state.counters.posts += 1
        with pytest.raises(store.StaleStudents):
            async with conn.transaction():
                await store.write_students(conn, [state])
        async with conn.transaction():  # read again, it goes through
            fresh = (await store.read_students(conn, [student.id]))[student.id]
            fresh.counters.posts += 1
            await store.write_students(conn, [fresh])
    row = await events.db.fetchrow(
        "SELECT name, posts FROM leaderboard.students WHERE user_id = $1", student.id
    )
    assert (row["name"], row["posts"]) == ("Someone", 1)
    # No event made this student: the rebuild test would not find them again.
    await events.db.execute("DELETE FROM leaderboard.students WHERE user_id = $1", student.id)


async def test_a_malformed_event_is_skipped_and_does_not_block_the_stream(
    leaderboard_client: Any, events: Events
) -> None:
    student = make_user("student")
    bad = await events.publish(
        "learning.video.watched", {"user_id": "not-a-uuid", "watched_seconds": "lots"}
    )
    await events.js.publish(events.settings.subject("learning.video.watched"), b"not json")
    good = await events.video(student, 60, 60)
    await events.applied(bad, good)
    assert (await me(leaderboard_client, student))["actions"] == 1


async def test_undoing_a_like_or_a_post_takes_its_points_back(
    leaderboard_client: Any, events: Events
) -> None:
    author, fan = make_user("student"), make_user("student")
    post_id = uuid.uuid4()
    await events.post(author, post_id=post_id)
    await events.like(fan, post_id, author.id, at=days_ago(2))
    assert (await me(leaderboard_client, fan))["points"] == 1
    await events.like(fan, post_id, author.id, unlike=True)
    fan_now = await me(leaderboard_client, fan)
    assert fan_now["points"] == 0
    assert fan_now["days_active"] == 1  # the day of the like stays an active day

    deleted = {
        "id": str(post_id),
        "author_id": str(author.id),
        "visibility": "public",
        "removed_by": str(author.id),
        "reason": "author",
    }
    await events.send("posts.post.deleted", deleted)
    assert (await me(leaderboard_client, author))["points"] == 0


async def test_self_likes_and_repeated_likes_do_not_count(
    leaderboard_client: Any, events: Events
) -> None:
    author, fan = make_user("student"), make_user("student")
    post_id = uuid.uuid4()
    await events.post(author, post_id=post_id)
    await events.like(author, post_id, author.id)
    await events.like(fan, post_id, author.id)
    await events.like(fan, post_id, author.id)
    assert (await me(leaderboard_client, author))["actions"] == 1
    assert (await me(leaderboard_client, fan))["actions"] == 1


async def test_instructors_and_admins_are_never_ranked(
    leaderboard_client: Any, events: Events
) -> None:
    instructor, admin = make_user("instructor"), make_user("admin")
    await events.post(instructor)
    await events.post(admin)
    members = {item["user_id"] for item in await whole_board(leaderboard_client)}
    assert str(instructor.id) not in members
    assert str(admin.id) not in members
    activity = (await leaderboard_client.get("/leaderboard/activity?limit=100")).json()["items"]
    assert not {a["user_id"] for a in activity} & {str(instructor.id), str(admin.id)}


async def test_a_student_later_seen_as_an_instructor_leaves_the_boards(
    leaderboard_client: Any, events: Events
) -> None:
    user = make_user("student")
    post_id = uuid.uuid4()
    helper = make_user("student")
    await events.post(helper, post_id=post_id)
    await events.like(user, post_id, helper.id)  # a like carries no role: counted as a student
    assert (await me(leaderboard_client, user))["ranks"]["all:all"] is not None
    await events.post(user, role="instructor")

    async def gone() -> bool:
        members = {item["user_id"] for item in await whole_board(leaderboard_client)}
        return str(user.id) not in members

    await eventually(gone)


async def test_names_come_from_the_events(leaderboard_client: Any, events: Events) -> None:
    student = make_user("student", name="Original Name")
    await events.post(student)
    renamed = make_user("student", name="New Name")
    envelope = make_event(
        "posts.post.updated",
        {"id": str(uuid.uuid4()), "author": {"id": str(student.id), "name": renamed.name,
         "role": "student"}, "visibility": "public"},
        source="posts", actor_id=student.id,
    )  # fmt: skip
    await events.publish_envelope(envelope)
    await events.applied(envelope)
    board = await whole_board(leaderboard_client)
    assert next(i for i in board if i["user_id"] == str(student.id))["name"] == "New Name"


async def test_a_backlog_announces_each_students_net_move_once(
    leaderboard_client: Any, events: Events, rank_changes: list[dict[str, Any]]
) -> None:
    consumers = parts_of(leaderboard_client).consumers
    climber = make_user("student")
    crowd = [make_user("student") for _ in range(40)]
    for student in crowd:
        await events.publish(
            "learning.video.watched",
            {"user_id": str(student.id), "video_id": "intro", "watched_seconds": 30,
             "session_seconds": 60},
        )  # fmt: skip
        await events.publish(
            "learning.video.watched",
            {"user_id": str(student.id), "video_id": "intro-2", "watched_seconds": 30,
             "session_seconds": 60},
        )  # fmt: skip
    await events.video(climber, 60, 600)  # below the whole crowd
    before = await me(leaderboard_client, climber)
    await in_app(leaderboard_client, consumers.stop)
    try:
        # The stopped consumer's last long pull may still take one event: let it be
        # one that moves nobody, so that all the moves are in the backlog.
        backlog = [
            await events.publish(
                "learning.task.assigned", {"user_id": str(uuid.uuid4()), "task_id": "t"}
            )
        ]
        for i in range(1300):  # more than the catch-up threshold is waiting
            student = climber if i % 10 == 0 else crowd[i % len(crowd)]
            backlog.append(
                await events.publish(
                    "learning.video.watched",
                    {"user_id": str(student.id), "video_id": f"v{i}", "watched_seconds": 30,
                     "session_seconds": 60},
                )
            )  # fmt: skip
        rank_changes.clear()
    finally:
        await in_app(leaderboard_client, consumers.start)
    await events.applied(*backlog, within=30)
    after = await me(leaderboard_client, climber)
    assert after["rank"] < before["rank"]

    async def announced() -> bool:
        return any(
            c["user_id"] == str(climber.id) and c["board"] == "all:all" for c in rank_changes
        )

    await eventually(announced, timeout=10)
    await asyncio.sleep(0.5)
    mine = [c for c in rank_changes if c["user_id"] == str(climber.id) and c["board"] == "all:all"]
    assert len(mine) == 1  # 131 moves in the backlog, one announcement
    assert mine[0]["old_rank"] == before["rank"]
    assert mine[0]["new_rank"] == after["rank"]
    assert mine[0]["points"] == after["points"]
    service = parts_of(leaderboard_client).service
    assert await in_app(leaderboard_client, service.boards.pending_count) == 0


async def test_ingest_transactions_plan_for_cached_tables(events: Events) -> None:
    """Batch lookups by id (`user_id = ANY($1)`) must use the index: the ingest
    lock sets `random_page_cost` for its transaction only."""
    async with events.db.acquire() as conn:
        default = await conn.fetchval("SHOW random_page_cost")
        async with conn.transaction():
            await store.lock_ingest_shared(conn)
            assert await conn.fetchval("SHOW random_page_cost") == "1.1"
        assert await conn.fetchval("SHOW random_page_cost") == default
