"""A student's board entries agree with the plain definitions they shortcut:
`on_board` for membership, `standing` for the figures, `board_score` for the order."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import msgspec
from community_leaderboard import rules
from community_leaderboard.rules import Tally
from community_leaderboard.standing import board_entries, empty_profile, on_board, standing
from community_leaderboard.store import WindowFigures
from hypothesis import given
from hypothesis import strategies as st

TODAY = dt.date(2026, 11, 21)

counts = st.integers(min_value=0, max_value=500)
money = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)
tallies = st.builds(
    Tally,
    posts=counts,
    replies=counts,
    likes_given=counts,
    submissions=counts,
    approvals=counts,
    videos_watched=counts,
    tasks_assigned=counts,
    tasks_completed=counts,
    completed_goals=counts,
    watched_seconds=st.integers(min_value=0, max_value=10**6),
    session_seconds=st.integers(min_value=0, max_value=10**6),
    days_active=counts,
)
figures = st.builds(WindowFigures, tally=tallies, revenue_growth=money, mrr_growth=money)


@given(
    track=st.sampled_from([None, "agency", "saas", "other"]),
    role=st.sampled_from(["student", "student", "instructor"]),
    visible=st.booleans(),
    last_days_ago=st.one_of(st.none(), st.integers(min_value=0, max_value=60)),
    reached=st.one_of(
        st.none(),
        st.datetimes(
            min_value=dt.datetime(2019, 1, 1),
            max_value=dt.datetime(2030, 1, 1),
            timezones=st.just(dt.UTC),
        ),
    ),
    total=money,
    mrr=money,
    windows=st.tuples(figures, figures, figures),
)
def test_board_entries_agree_with_on_board_and_standing(
    track: str | None,
    role: str,
    visible: bool,
    last_days_ago: int | None,
    reached: dt.datetime | None,
    total: Decimal,
    mrr: Decimal,
    windows: tuple[WindowFigures, WindowFigures, WindowFigures],
) -> None:
    last = TODAY - dt.timedelta(days=last_days_ago) if last_days_ago is not None else None
    profile = msgspec.structs.replace(
        empty_profile(uuid.uuid4(), visible, True),
        role=role,
        track=track,
        total_revenue=total,
        current_mrr=mrr,
        first_event_day=last,
        last_event_day=last,
        reached_at=reached,
        windows=dict(zip(rules.WINDOWS, windows, strict=True)),
    )
    entries = board_entries(profile, TODAY, rules.DEFAULT_WEIGHTS)
    for board in rules.BOARDS:
        window, board_track = board.split(":")
        assert (board in entries) == on_board(profile, window, board_track, TODAY)
        if board in entries:
            s = standing(profile, window, rules.DEFAULT_WEIGHTS)
            e = entries[board]
            assert e.points == s.points
            assert e.earned_cents == int(s.earned * 100)
            assert e.actions == s.actions
            assert e.learn_rate == s.learn_rate
            assert e.score == rules.board_score(s.points, reached or rules.SCORE_EPOCH)
