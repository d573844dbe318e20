"""The leaderboard's decisions after figures change, without Postgres or Redis:
which boards a student is put on or taken off, the badge diff, the days a
roll-over takes out of the windows, the moves of a backlog worth announcing,
and who the announcements leave out."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import msgspec
from community_leaderboard import announcements, planner, rules
from community_leaderboard import events as ev
from community_leaderboard.rows import ActivityRow, PrivacyRow, Profile, WindowFigures
from community_leaderboard.rules import Tally
from community_leaderboard.standing import empty_profile
from hypothesis import given
from hypothesis import strategies as st

TODAY = dt.date(2026, 11, 21)
W = rules.DEFAULT_WEIGHTS


def student(
    *,
    track: str | None = "agency",
    posts: int = 1,
    visible: bool = True,
    last_day: dt.date | None = TODAY,
    badges: frozenset[str] = frozenset(),
    goals: int = 0,
    streak_days: int = 0,
    name: str | None = "Ada",
) -> Profile:
    tally = Tally(posts=posts, completed_goals=goals, days_active=1)
    figures = WindowFigures(tally, Decimal(0), Decimal(0))
    return msgspec.structs.replace(
        empty_profile(uuid.uuid4(), visible, True),
        name=name,
        track=track,
        first_event_day=last_day,
        last_event_day=last_day,
        reached_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        streak_start=TODAY - dt.timedelta(days=streak_days - 1) if streak_days else None,
        streak_end=TODAY if streak_days else None,
        badges=badges,
        windows=dict.fromkeys(rules.WINDOWS, figures),
    )


# --------------------------------------------------------------------------- board moves


def test_a_student_is_placed_on_the_boards_of_their_track_only() -> None:
    p = student(track="agency")
    ops = planner.board_ops([p.user_id], {p.user_id: p}, TODAY, W)
    assert [op.board for op in ops] == [
        "all:all",
        "all:agency",
        "30d:all",
        "30d:agency",
        "7d:all",
        "7d:agency",
    ]
    assert all(op.entry is not None and op.entry.points == W.post for op in ops)
    assert all(op.changed == planner.ALL_CHANGED for op in ops)


def test_a_student_who_changed_track_leaves_the_boards_of_the_old_one() -> None:
    p = student(track="saas")
    ops = planner.board_ops(
        [p.user_id], {p.user_id: p}, TODAY, W, previous_tracks={p.user_id: "agency"}
    )
    on = {op.board for op in ops if op.entry is not None}
    off = {op.board for op in ops if op.entry is None}
    assert on == {"all:all", "all:saas", "30d:all", "30d:saas", "7d:all", "7d:saas"}
    assert off == {"all:agency", "30d:agency", "7d:agency"}


def test_a_hidden_student_comes_off_every_board_touched() -> None:
    p = student(visible=False)
    ops = planner.board_ops([p.user_id], {p.user_id: p}, TODAY, W, everywhere=True)
    assert [op.board for op in ops] == list(rules.BOARDS)
    assert all(op.entry is None for op in ops)


def test_a_student_without_a_profile_comes_off_every_board() -> None:
    nobody = uuid.uuid4()
    ops = planner.board_ops([nobody], {}, TODAY, W)
    assert [op.board for op in ops] == list(rules.BOARDS)
    assert all(op.entry is None for op in ops)


def test_a_student_idle_this_week_is_only_on_the_longer_windows() -> None:
    p = student(last_day=TODAY - dt.timedelta(days=10))
    ops = planner.board_ops([p.user_id], {p.user_id: p}, TODAY, W)
    on = {op.board for op in ops if op.entry is not None}
    assert on == {"all:all", "all:agency", "30d:all", "30d:agency"}


def test_the_sort_changes_are_passed_on() -> None:
    p = student()
    ops = planner.board_ops(
        [p.user_id], {p.user_id: p}, TODAY, W, sort_changes=lambda _: planner.LEARN_CHANGED
    )
    assert {op.changed for op in ops} == {planner.LEARN_CHANGED}


def test_a_move_announces_the_points_of_its_board() -> None:
    p = student(posts=3)
    [op] = planner.board_ops([p.user_id], {p.user_id: p}, TODAY, W)[:1]
    assert planner.announced_points(planner.Move(op, 4, 2), p, W) == 3 * W.post
    off = planner.BoardOp("all:all", p.user_id, None)
    assert planner.announced_points(planner.Move(off, 2, None), p, W) == 3 * W.post
    assert planner.announced_points(planner.Move(off, 2, None), None, W) == 0


def test_a_backlog_announces_only_the_students_who_ended_elsewhere() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    score = rules.board_score(42, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    kept = [
        ("all:all", a, 5, 2, float(score)),
        ("all:all", b, 3, 3, float(score)),  # back where they started
        ("7d:all", c, 1, None, None),  # left the board
    ]
    assert planner.net_moves(kept) == [("all:all", a, 5, 2, 42), ("7d:all", c, 1, None, 0)]


# --------------------------------------------------------------------------- badges


def test_badges_earned_and_lost_on_ones_own_record() -> None:
    crusher = student(goals=rules.GOAL_CRUSHER_GOALS)
    lapsed = student(badges=frozenset({rules.CONSISTENT, rules.TOP_PERFORMER}))
    steady = student(streak_days=rules.CONSISTENT_DAYS, badges=frozenset({rules.CONSISTENT}))
    profiles = {p.user_id: p for p in (crusher, lapsed, steady)}
    awards, revokes = planner.badge_changes(profiles, TODAY)
    assert awards == [(crusher.user_id, rules.GOAL_CRUSHER)]
    # top-performer is relative: not revoked on one's own record
    assert revokes == [(lapsed.user_id, rules.CONSISTENT)]


def test_top_performer_passes_from_the_holders_to_the_performers() -> None:
    a, b, c = sorted([uuid.uuid4(), uuid.uuid4(), uuid.uuid4()])
    awards, revokes = planner.top_performer_changes({a, b}, {b, c})
    assert awards == [(a, rules.TOP_PERFORMER)]
    assert revokes == [(c, rules.TOP_PERFORMER)]


def test_the_rebuild_awards_every_badge_from_scratch() -> None:
    p = student(goals=rules.GOAL_CRUSHER_GOALS, streak_days=rules.CONSISTENT_DAYS)
    assert planner.all_badges([p], TODAY) == [
        (p.user_id, rules.CONSISTENT),
        (p.user_id, rules.GOAL_CRUSHER),
    ]


# --------------------------------------------------------------------------- roll-over


def test_a_new_day_takes_one_day_out_of_each_window() -> None:
    last = TODAY - dt.timedelta(days=1)
    assert planner.days_leaving_windows(last, TODAY) == {
        TODAY - dt.timedelta(days=30),
        TODAY - dt.timedelta(days=7),
    }
    assert planner.days_leaving_windows(TODAY, TODAY) == set()


@given(gap=st.integers(min_value=-3, max_value=7))
def test_the_days_leaving_are_those_between_the_old_and_the_new_window_start(gap: int) -> None:
    """For a roll-over up to a week late: every day from a window's start on the
    last day rolled to its start today (days counted since the last roll-over
    included), and no other."""
    last = TODAY - dt.timedelta(days=gap)
    expected: set[dt.date] = set()
    for window in rules.WINDOW_DAYS:
        old, new = rules.window_start(window, last), rules.window_start(window, TODAY)
        assert old is not None and new is not None
        expected.update(old + dt.timedelta(days=n) for n in range((new - old).days))
    assert planner.days_leaving_windows(last, TODAY) == expected


# --------------------------------------------------------------------------- announcements


def test_badges_of_a_hidden_student_are_not_announced() -> None:
    shown, hidden = student(name="Shown"), student(visible=False)
    at = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    out, activity = announcements.badges_changed(
        [(shown.user_id, rules.GOAL_CRUSHER), (hidden.user_id, rules.GOAL_CRUSHER)],
        [(shown.user_id, rules.CONSISTENT)],
        {p.user_id: p for p in (shown, hidden)},
        at,
    )
    assert [(e.type, agg) for e, agg in out] == [
        (ev.BADGE_AWARDED, f"student:{shown.user_id}"),
        (ev.BADGE_REVOKED, f"student:{shown.user_id}"),
    ]
    assert [(a.user_id, a.kind, a.detail) for a in activity] == [
        (shown.user_id, "badge.awarded", rules.GOAL_CRUSHER)
    ]


def test_activity_leaves_out_hidden_students_and_hidden_amounts() -> None:
    shown, private, hidden = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    rows = [
        ActivityRow(uuid.uuid4(), "submission.approved", u, at, "r", Decimal("1200.00"), None, {})
        for u in (shown, private, hidden)
    ]
    privacy = {
        shown: PrivacyRow(True, True),
        private: PrivacyRow(True, False),
        hidden: PrivacyRow(False, True),
    }
    out = announcements.activity_recorded(rows, {shown: "Ada"}.get, privacy)
    texts = [msgspec.json.decode(e.data)["text"] for e, _ in out]
    assert texts == [
        "Ada logged $1,200.00 in revenue",
        "Student had a revenue milestone approved",
    ]
