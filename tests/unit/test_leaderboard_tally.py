"""Folding events into statistics (no I/O): what each event does to a student."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from community_leaderboard import tally
from community_leaderboard.tally import Fold, InvalidEvent, ItemKey, ItemState, Parsed
from community_shared.events import make_event

NOW = dt.datetime(2025, 6, 15, 12, 0, tzinfo=dt.UTC)
ANA = uuid.uuid4()
BEN = uuid.uuid4()


def event(type_: str, data: dict[str, Any], at: dt.datetime = NOW) -> Parsed:
    parsed = tally.parse(make_event(type_, data, source="x", actor_id=None, occurred_at=at))
    assert parsed is not None
    return parsed


def author(user: uuid.UUID, name: str = "Ana", role: str = "student") -> dict[str, str]:
    return {"id": str(user), "name": name, "role": role}


def post(user: uuid.UUID, post_id: uuid.UUID, at: dt.datetime = NOW, **extra: Any) -> Parsed:
    data = {"id": str(post_id), "author": author(user), "visibility": "public", **extra}
    return event("posts.post.created", data, at)


def like(user: uuid.UUID, post_id: uuid.UUID, post_author: uuid.UUID, unlike: bool = False,
         at: dt.datetime = NOW) -> Parsed:  # fmt: skip
    data = {"post_id": str(post_id), "user_id": str(user), "user_name": "Ben",
            "post_author_id": str(post_author)}  # fmt: skip
    return event("posts.post.unliked" if unlike else "posts.post.liked", data, at)


def fold(events: list[Parsed], items: dict[ItemKey, ItemState] | None = None) -> Fold:
    f = Fold({}, {}, items or {})
    for e in events:
        f.apply(e)
    return f


def test_a_post_counts_once_and_a_deleted_post_no_longer_counts() -> None:
    p = uuid.uuid4()
    f = fold([post(ANA, p), post(ANA, p)])
    assert f.students[ANA].counters.posts == 1
    assert [a.kind for a in f.activities] == ["post.created"]
    f.apply(event("posts.post.deleted", {"id": str(p), "author_id": str(ANA)}))
    assert f.students[ANA].counters.posts == 0
    assert str(p) in f.removed_subjects


def test_members_only_posts_count_but_make_no_public_activity() -> None:
    f = fold([post(ANA, uuid.uuid4(), visibility="members")])
    assert f.students[ANA].counters.posts == 1
    assert f.activities == []


def test_unlike_takes_the_like_off_the_day_it_was_counted() -> None:
    p = uuid.uuid4()
    yesterday = NOW - dt.timedelta(days=1)
    loaded = {("like", f"{p}:{BEN}"): ItemState(user_id=BEN, day=yesterday.date())}
    f = fold([like(BEN, p, ANA, unlike=True)], items=loaded)
    assert f.days[(BEN, yesterday.date())].counters.likes_given == -1  # a delta on that day
    assert ("like", f"{p}:{BEN}") in f.items_removed
    assert (BEN, NOW.date()) not in f.days


def test_like_unlike_like_in_one_batch_counts_one() -> None:
    p = uuid.uuid4()
    f = fold([like(BEN, p, ANA), like(BEN, p, ANA, unlike=True), like(BEN, p, ANA)])
    assert f.students[BEN].counters.likes_given == 1
    assert ("like", f"{p}:{BEN}") in f.items_added
    assert not f.items_removed


def test_liking_ones_own_post_does_not_count() -> None:
    p = uuid.uuid4()
    f = fold([like(ANA, p, ANA)])
    assert ANA not in f.students or f.students[ANA].counters.likes_given == 0


def test_the_newest_name_wins_whatever_the_arrival_order() -> None:
    f = fold([
        post(ANA, uuid.uuid4(), at=NOW),
        event("posts.post.created", {"id": str(uuid.uuid4()), "author": author(ANA, "Old Ana")},
              NOW - dt.timedelta(hours=1)),
    ])  # fmt: skip
    assert f.students[ANA].name == "Ana"


def test_an_instructor_author_is_marked_and_makes_no_activity() -> None:
    f = fold([
        event("posts.post.created",
              {"id": str(uuid.uuid4()), "author": author(ANA, role="instructor")}),
    ])  # fmt: skip
    assert f.students[ANA].role == "instructor"
    assert f.activities == []


def test_an_approval_records_the_growth_of_revenue_and_mrr() -> None:
    review = str(uuid.uuid4())
    data = {
        "review_id": review,
        "student_id": str(ANA),
        "student_name": "Ana",
        "track": "agency",
        "amount": "500.00",
        "total_revenue_earned": "1500.00",
        "current_mrr": "0.00",
    }
    f = fold([event("goals.submission.approved", data)])
    st = f.students[ANA]
    assert (st.track, st.total_revenue, st.counters.approvals) == ("agency", Decimal("1500.00"), 1)
    day = f.days[(ANA, NOW.date())]
    assert day.revenue_delta == Decimal("1500.00")
    assert not day.active  # an instructor's approval is not the student's action
    assert f.activities[0].amount == Decimal("500.00")


def test_tasks_count_once_each_and_only_completions_are_actions() -> None:
    u = str(ANA)
    f = fold([
        event("learning.task.assigned", {"user_id": u, "task_id": "t1"}),
        event("learning.task.assigned", {"user_id": u, "task_id": "t1"}),
        event("learning.task.assigned", {"user_id": u, "task_id": "t2"}),
        event("learning.task.completed", {"user_id": u, "task_id": "t1"}),
        event("learning.task.completed", {"user_id": u, "task_id": "t1"}),
    ])  # fmt: skip
    c = f.students[ANA].counters
    assert (c.tasks_assigned, c.tasks_completed) == (2, 1)
    assert f.students[ANA].days_active == 1


def test_videos_add_watch_and_session_time_and_make_the_day_active() -> None:
    data = {"user_id": str(ANA), "video_id": "v1", "watched_seconds": 600, "session_seconds": 900}
    f = fold([event("learning.video.watched", data), event("learning.video.watched", data)])
    c = f.students[ANA].counters
    assert (c.videos_watched, c.watched_seconds, c.session_seconds) == (2, 1200, 1800)
    assert f.students[ANA].days_active == 1
    assert f.students[ANA].streak_start == NOW.date()


def test_active_days_out_of_order_ask_for_a_streak_recompute() -> None:
    data = {"user_id": str(ANA), "video_id": "v1", "watched_seconds": 1, "session_seconds": 1}
    f = fold([
        event("learning.video.watched", data, NOW),
        event("learning.video.watched", data, NOW - dt.timedelta(days=2)),
    ])  # fmt: skip
    assert ANA not in f.streak_recompute
    f.apply(event("learning.video.watched", data, NOW - dt.timedelta(days=1)))
    assert ANA in f.streak_recompute


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("learning.video.watched", {"user_id": "nope", "video_id": "v", "watched_seconds": 1,
                                    "session_seconds": 1}),
        ("learning.video.watched", {"user_id": str(ANA), "video_id": "v", "watched_seconds": -1,
                                    "session_seconds": 1}),
        ("goals.submission.approved", {"review_id": str(ANA), "student_id": str(ANA),
                                       "amount": "abc", "total_revenue_earned": "1",
                                       "current_mrr": "0"}),
        ("posts.post.liked", {"post_id": str(ANA)}),
    ],
)  # fmt: skip
def test_malformed_payloads_are_rejected(type_: str, data: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        tally.parse(make_event(type_, data, source="x", actor_id=None))


def test_types_the_leaderboard_does_not_use_are_ignored() -> None:
    envelope = make_event("posts.report.created", {"id": "x"}, source="posts", actor_id=None)
    assert tally.parse(envelope) is None


def test_a_post_created_and_deleted_in_one_batch_leaves_no_activity() -> None:
    p = uuid.uuid4()
    f = fold([post(ANA, p), event("posts.post.deleted", {"id": str(p)})])
    assert f.activities == []
    assert f.students[ANA].counters.posts == 0
