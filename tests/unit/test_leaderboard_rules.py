"""The leaderboard's pure rules: windows, ties, metrics, streaks, badges, privacy."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from community_leaderboard import rules
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.rules import Tally, Weights
from hypothesis import given
from hypothesis import strategies as st

TODAY = dt.date(2025, 6, 15)
D = dt.timedelta


# --------------------------------------------------------------------------- windows


def test_seven_day_window_is_today_and_the_six_days_before() -> None:
    assert rules.window_start("7d", TODAY) == TODAY - D(days=6)
    assert rules.in_window(TODAY, "7d", TODAY)
    assert rules.in_window(TODAY - D(days=6), "7d", TODAY)
    assert not rules.in_window(TODAY - D(days=7), "7d", TODAY)
    assert not rules.in_window(TODAY - D(days=8), "7d", TODAY)


def test_thirty_day_window_edges() -> None:
    assert rules.in_window(TODAY - D(days=29), "30d", TODAY)
    assert not rules.in_window(TODAY - D(days=30), "30d", TODAY)


def test_all_time_window_counts_everything() -> None:
    assert rules.window_start("all", TODAY) is None
    assert rules.in_window(dt.date(2001, 1, 1), "all", TODAY)


def test_boards_of_a_track_and_of_a_student_without_one() -> None:
    assert rules.boards_of("agency") == (
        "all:all", "all:agency", "30d:all", "30d:agency", "7d:all", "7d:agency",
    )  # fmt: skip
    assert rules.boards_of(None) == ("all:all", "30d:all", "7d:all")
    assert rules.boards_of("unknown") == ("all:all", "30d:all", "7d:all")
    assert len(rules.BOARDS) == 9


# --------------------------------------------------------------------------- metrics


def test_actions_are_the_six_kinds() -> None:
    t = Tally(
        posts=1, replies=2, likes_given=3, submissions=4, videos_watched=5, tasks_completed=6,
        approvals=100, completed_goals=100, tasks_assigned=100,
    )  # fmt: skip
    assert rules.actions(t) == 21


def test_learn_rate_is_minutes_watched_per_hour() -> None:
    assert rules.learn_rate(1800, 3600) == 30.0
    assert rules.learn_rate(2400, 3600) == 40.0
    assert rules.learn_rate(0, 3600) == 0.0
    assert rules.learn_rate(100, 0) == 0.0


@given(st.integers(0, 10**7), st.integers(1, 10**7))
def test_learn_rate_never_exceeds_sixty_when_watching_within_the_session(
    watched: int, session: int
) -> None:
    rate = rules.learn_rate(min(watched, session), session)
    assert 0.0 <= rate <= 60.0


def test_execution_rate() -> None:
    assert rules.execution_rate(3, 4) == 75.0
    assert rules.execution_rate(4, 4) == 100.0
    assert rules.execution_rate(0, 4) == 0.0
    assert rules.execution_rate(0, 0) == 0.0
    assert rules.execution_rate(5, 2) == 100.0  # completions without a recorded assignment


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_execution_rate_is_a_percentage(completed: int, assigned: int) -> None:
    assert 0.0 <= rules.execution_rate(completed, assigned) <= 100.0


def test_earned_is_revenue_for_agency_and_mrr_for_saas() -> None:
    revenue, mrr = Decimal("12000.00"), Decimal("800.00")
    assert rules.earned_for_track("agency", revenue, mrr) == revenue
    assert rules.earned_for_track("saas", revenue, mrr) == mrr
    assert rules.earned_for_track(None, revenue, mrr) == 0


def test_window_earned_is_the_growth_of_the_tracks_figure_never_negative() -> None:
    assert rules.window_earned("agency", Decimal("500"), Decimal("-50")) == Decimal("500")
    assert rules.window_earned("saas", Decimal("500"), Decimal("50")) == Decimal("50")
    assert rules.window_earned("saas", Decimal("500"), Decimal("-50")) == 0


# --------------------------------------------------------------------------- points


def test_points_are_the_weighted_sum() -> None:
    w = rules.DEFAULT_WEIGHTS
    t = Tally(posts=2, replies=1, likes_given=3, completed_goals=1)
    assert rules.points(t, Decimal(0)) == 2 * w.post + w.reply + 3 * w.like + w.goal


def test_a_completed_goal_is_worth_far_more_than_a_like() -> None:
    w = rules.DEFAULT_WEIGHTS
    assert w.goal >= 100 * w.like
    assert w.goal > w.approval > w.submission > w.like


def test_earned_adds_a_point_per_whole_hundred() -> None:
    assert rules.points(Tally(), Decimal("99.99")) == 0
    assert rules.points(Tally(), Decimal("100.00")) == 1
    assert rules.points(Tally(), Decimal("1999.99")) == 19


def test_weights_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="like"):
        Weights(like=-1)


def test_weights_come_from_the_environment() -> None:
    config = LeaderboardConfig.from_env(
        {"LEADERBOARD_WEIGHT_LIKE": "2", "LEADERBOARD_WEIGHT_GOAL": ""}
    )
    assert config.weights.like == 2
    assert config.weights.goal == rules.DEFAULT_WEIGHTS.goal
    assert LeaderboardConfig.from_env({}).weights == rules.DEFAULT_WEIGHTS


@given(
    st.builds(
        Tally,
        posts=st.integers(0, 1000),
        likes_given=st.integers(0, 1000),
        completed_goals=st.integers(0, 50),
    ),
    st.integers(0, 1000),
)
def test_more_actions_never_lower_points(t: Tally, more_likes: int) -> None:
    richer = Tally(
        posts=t.posts, likes_given=t.likes_given + more_likes, completed_goals=t.completed_goals
    )
    assert rules.points(richer, Decimal(0)) >= rules.points(t, Decimal(0))


# --------------------------------------------------------------------------- ties

EARLY = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
LATE = EARLY + dt.timedelta(seconds=1)


def test_equal_points_rank_who_reached_them_first_higher() -> None:
    assert rules.board_score(100, EARLY) > rules.board_score(100, LATE)


def test_more_points_always_rank_higher_whatever_the_time() -> None:
    ancient = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert rules.board_score(101, dt.datetime(2150, 1, 1, tzinfo=dt.UTC)) > rules.board_score(
        100, ancient
    )


@given(
    st.integers(0, rules.MAX_POINTS),
    st.integers(0, rules.MAX_POINTS),
    st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2150, 1, 1), timezones=st.just(dt.UTC)),
    st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2150, 1, 1), timezones=st.just(dt.UTC)),
)
def test_score_orders_by_points_then_by_earlier_time(
    p1: int, p2: int, t1: dt.datetime, t2: dt.datetime
) -> None:
    s1, s2 = rules.board_score(p1, t1), rules.board_score(p2, t2)
    s1f, s2f = float(s1), float(s2)
    assert s1 < 2**53 and s2 < 2**53
    assert float(s1f) == s1  # a Redis double holds it exactly
    if p1 != p2:
        assert (s1f > s2f) == (p1 > p2)
    elif int(t1.timestamp()) != int(t2.timestamp()):
        assert (s1f > s2f) == (t1 < t2)


@given(
    st.integers(0, rules.MAX_POINTS),
    st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2150, 1, 1), timezones=st.just(dt.UTC)),
)
def test_score_decodes_back(points: int, at: dt.datetime) -> None:
    got_points, got_at = rules.decode_board_score(float(rules.board_score(points, at)))
    assert got_points == points
    assert got_at == at.replace(microsecond=0)


def test_points_beyond_the_encodable_range_are_clamped() -> None:
    assert rules.board_score(rules.MAX_POINTS + 5, EARLY) == rules.board_score(
        rules.MAX_POINTS, EARLY
    )
    assert rules.board_score(-3, EARLY) == rules.board_score(0, EARLY)


# --------------------------------------------------------------------------- streaks


def test_extend_streak_cases() -> None:
    d = TODAY
    assert rules.extend_streak(None, d) == (d, d)
    run = (d - D(days=3), d)
    assert rules.extend_streak(run, d + D(days=1)) == (d - D(days=3), d + D(days=1))
    assert rules.extend_streak(run, d - D(days=1)) == run  # inside
    assert rules.extend_streak(run, d + D(days=5)) == (d + D(days=5), d + D(days=5))
    assert rules.extend_streak(run, d - D(days=10)) == run  # an older, separate day
    assert rules.extend_streak(run, d - D(days=4)) is None  # may join an older run


@given(st.lists(st.integers(0, 60), min_size=1, max_size=40))
def test_streak_kept_incrementally_equals_the_latest_run(offsets: list[int]) -> None:
    days = [TODAY - D(days=o) for o in offsets]
    run: tuple[dt.date, dt.date] | None = None
    seen: list[dt.date] = []
    for day in days:
        seen.append(day)
        extended = rules.extend_streak(run, day)
        run = extended if extended is not None else rules.latest_run(seen)
    assert run == rules.latest_run(days)


def test_current_streak_survives_until_a_whole_day_is_missed() -> None:
    run = (TODAY - D(days=29), TODAY)
    assert rules.current_streak(run, TODAY) == 30
    yesterday_run = (TODAY - D(days=30), TODAY - D(days=1))
    assert rules.current_streak(yesterday_run, TODAY) == 30
    broken = (TODAY - D(days=31), TODAY - D(days=2))
    assert rules.current_streak(broken, TODAY) == 0
    assert rules.current_streak(None, TODAY) == 0


# --------------------------------------------------------------------------- badges


def test_consistent_at_and_below_threshold() -> None:
    assert rules.earns_consistent(30)
    assert not rules.earns_consistent(29)


def test_fast_learner_at_and_below_threshold() -> None:
    hour = 3600
    assert rules.earns_fast_learner(40 * 60, hour)  # exactly 40 minutes per hour
    assert not rules.earns_fast_learner(40 * 60 - 1, hour)
    assert not rules.earns_fast_learner(0, 0)


def test_goal_crusher_at_and_below_threshold() -> None:
    assert rules.earns_goal_crusher(3)
    assert not rules.earns_goal_crusher(2)


def test_personal_badges_together() -> None:
    assert rules.personal_badges(
        streak_days=30, watched_7d=2400, session_7d=3600, completed_goals=3
    ) == {rules.CONSISTENT, rules.FAST_LEARNER, rules.GOAL_CRUSHER}
    assert rules.personal_badges(streak_days=29, watched_7d=2399, session_7d=3600,
                                 completed_goals=2) == set()  # fmt: skip


def _earner(i: int, earned: str, seconds: int = 0) -> rules.Earner:
    return rules.Earner(f"u{i:02d}", Decimal(earned), EARLY + dt.timedelta(seconds=seconds))


def test_top_performers_are_the_top_ten_by_earned() -> None:
    earners = [_earner(i, str(1000 + i)) for i in range(11)]
    top = rules.top_performers(earners)
    assert len(top) == 10
    assert "u00" not in top  # the eleventh (least earned) is out
    assert top[0] == "u10"


def test_top_performer_ties_go_to_who_earned_it_first() -> None:
    earners = [_earner(i, "5000", seconds=i) for i in range(11)]
    top = rules.top_performers(earners)
    assert "u10" not in top  # reached 5000 last
    assert top[0] == "u00"


def test_nobody_is_a_top_performer_without_earnings() -> None:
    assert rules.top_performers([_earner(1, "0"), _earner(2, "0.01")]) == ["u02"]


# --------------------------------------------------------------------------- privacy


@pytest.mark.parametrize(
    ("amount", "label"),
    [
        ("0", "$0-$1k"),
        ("999.99", "$0-$1k"),
        ("1000.00", "$1k-$5k"),
        ("4999.99", "$1k-$5k"),
        ("5000.00", "$5k-$10k"),
        ("9999.99", "$5k-$10k"),
        ("10000.00", "$10k-$25k"),
        ("24999.99", "$10k-$25k"),
        ("25000.00", "$25k-$50k"),
        ("49999.99", "$25k-$50k"),
        ("50000.00", "$50k+"),
        ("1000000.00", "$50k+"),
    ],
)
def test_earnings_ranges(amount: str, label: str) -> None:
    assert rules.earnings_range(Decimal(amount)) == label


@pytest.mark.parametrize(
    ("amount", "sorts_as"),
    [
        ("0", "0"),
        ("600.00", "0"),
        ("999.99", "0"),
        ("1000.00", "1000"),
        ("4999.99", "1000"),
        ("7500.00", "5000"),
        ("24999.99", "10000"),
        ("30000.00", "25000"),
        ("1000000.00", "50000"),
    ],
)
def test_hidden_earnings_sort_by_the_lower_bound_of_their_range(amount: str, sorts_as: str) -> None:
    assert rules.earned_sort_value(Decimal(amount), show_earnings=False) == Decimal(sorts_as)
    assert rules.earned_sort_value(Decimal(amount), show_earnings=True) == Decimal(amount)


@given(
    st.decimals(min_value=0, max_value=10_000_000, places=2),
    st.decimals(min_value=0, max_value=10_000_000, places=2),
)
def test_the_sort_of_hidden_earnings_reveals_no_more_than_the_range(a: Decimal, b: Decimal) -> None:
    hidden_a = rules.earned_sort_value(a, show_earnings=False)
    hidden_b = rules.earned_sort_value(b, show_earnings=False)
    # Two amounts in one range sort alike; the value stays in the amount's range.
    assert (hidden_a == hidden_b) == (rules.earnings_range(a) == rules.earnings_range(b))
    assert rules.earnings_range(hidden_a) == rules.earnings_range(a)
    assert hidden_a <= a


def test_activity_text_hides_amounts_without_show_earnings() -> None:
    shown = rules.activity_text(
        "submission.approved", "Ana", detail=None, amount=Decimal("1500"), show_earnings=True
    )
    hidden = rules.activity_text(
        "submission.approved", "Ana", detail=None, amount=Decimal("1500"), show_earnings=False
    )
    assert "$1,500.00" in shown
    assert "$" not in hidden
    assert (
        rules.activity_text(
            "badge.awarded", "Ana", detail="goal-crusher", amount=None, show_earnings=True
        )
        == "Ana earned the Goal Crusher badge"
    )
