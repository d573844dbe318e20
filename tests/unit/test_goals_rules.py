"""The approval rules of SPEC §5, driven without any I/O."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from community_goals import rules
from hypothesis import given
from hypothesis import strategies as st

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _track(slug: str, metric: rules.Metric, targets: list[int]) -> rules.Track:
    goals = tuple(
        rules.Goal(
            slug=f"{slug}-{i}", name=f"{slug} {t}", target=Decimal(t), position=i, track=slug
        )
        for i, t in enumerate(targets, start=1)
    )
    return rules.Track(slug=slug, name=slug, metric=metric, goals=goals)


AGENCY = _track("agency", "total_revenue", [1000, 3000, 10000, 25000])
SAAS = _track("saas", "mrr", [1000, 5000, 20000])

amounts = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2, allow_nan=False
)


def _run(
    track: rules.Track, approved: list[Decimal]
) -> tuple[rules.Metrics, rules.GoalState, list[rules.Completion]]:
    """Approve `approved` in order for a student starting on the track's first goal."""
    metrics = rules.Metrics()
    state = rules.GoalState(goal=track.goals[0], status="active", started_at=T0)
    completed: list[rules.Completion] = []
    for day, amount in enumerate(approved, start=1):
        outcome = rules.approve_submission(
            track,
            state,
            metrics,
            amount,
            T0 + dt.timedelta(days=day),
            [c.goal.slug for c in completed],
        )
        metrics, state = outcome.metrics, outcome.advance.state
        completed.extend(outcome.advance.completed)
    return metrics, state, completed


@given(st.lists(amounts, max_size=30))
def test_agency_total_is_the_sum_of_approved_amounts(approved: list[Decimal]) -> None:
    metrics, _, _ = _run(AGENCY, approved)
    assert metrics.total_revenue_earned == sum(approved, Decimal(0))
    assert metrics.current_mrr == 0


@given(st.lists(amounts, max_size=30))
def test_saas_mrr_is_the_running_max_and_never_decreases(approved: list[Decimal]) -> None:
    metrics = rules.Metrics()
    seen: list[Decimal] = []
    for amount in approved:
        before = metrics.current_mrr
        metrics = rules.apply_approved_amount("mrr", metrics, amount)
        seen.append(amount)
        assert metrics.current_mrr >= before
        assert metrics.current_mrr == max(seen)
    assert metrics.total_revenue_earned == 0


@given(st.sampled_from([AGENCY, SAAS]), st.lists(amounts, max_size=20))
def test_completed_goals_are_exactly_those_reached_in_order(
    track: rules.Track, approved: list[Decimal]
) -> None:
    metrics, state, completed = _run(track, approved)
    progress = rules.progress_of(track.metric, metrics)
    reached = [g for g in track.goals if g.target <= progress]
    assert [c.goal for c in completed] == reached
    above = [g for g in track.goals if g.target > progress]
    if above:
        assert state == rules.GoalState(goal=above[0], status="active", started_at=state.started_at)
    else:
        assert state.goal == track.goals[-1]
        assert state.status == "completed"


@given(st.sampled_from([AGENCY, SAAS]), st.lists(amounts, max_size=20))
def test_percent_is_between_0_and_100(track: rules.Track, approved: list[Decimal]) -> None:
    metrics, state, _ = _run(track, approved)
    value = rules.percent(rules.progress_of(track.metric, metrics), state.goal.target)
    assert Decimal(0) <= value <= Decimal(100)
    if state.status == "completed":
        assert value == 100


def test_spec_agency_example_completes_two_goals() -> None:
    metrics, state, completed = _run(AGENCY, [Decimal(1000), Decimal(3500)])
    assert metrics.total_revenue_earned == Decimal(4500)
    assert [c.goal.slug for c in completed] == ["agency-1", "agency-2"]
    assert [c.amount for c in completed] == [Decimal(1000), Decimal(4500)]
    assert state.goal.slug == "agency-3"
    assert state.status == "active"


def test_spec_saas_example_keeps_the_higher_mrr() -> None:
    metrics, state, completed = _run(SAAS, [Decimal(1500), Decimal(800)])
    assert metrics.current_mrr == Decimal(1500)
    assert [c.goal.slug for c in completed] == ["saas-1"]
    assert state.goal.slug == "saas-2"


def test_one_big_submission_completes_every_goal_jumped_over() -> None:
    _, state, completed = _run(AGENCY, [Decimal(12000)])
    assert [c.goal.slug for c in completed] == ["agency-1", "agency-2", "agency-3"]
    assert all(c.amount == Decimal(12000) for c in completed)
    assert all(c.days_to_complete == 1 for c in completed)
    assert state.goal.slug == "agency-4"
    assert state.started_at == T0 + dt.timedelta(days=1)


def test_after_the_last_goal_the_student_stays_on_it_completed() -> None:
    _, state, completed = _run(SAAS, [Decimal(25000)])
    assert [c.goal.slug for c in completed] == ["saas-1", "saas-2", "saas-3"]
    assert state.goal.slug == "saas-3"
    assert state.status == "completed"
    # Nothing more happens on later approvals.
    again = rules.approve_submission(
        SAAS,
        state,
        rules.Metrics(current_mrr=Decimal(25000)),
        Decimal(30000),
        T0 + dt.timedelta(days=9),
    )
    assert again.advance.completed == ()
    assert again.advance.state == state
    assert again.metrics.current_mrr == Decimal(30000)


def test_days_to_complete_count_from_when_the_goal_became_active() -> None:
    state = rules.GoalState(goal=AGENCY.goals[0], status="active", started_at=T0)
    later = T0 + dt.timedelta(days=10, hours=23)
    outcome = rules.approve_submission(AGENCY, state, rules.Metrics(), Decimal(1000), later)
    assert outcome.advance.completed[0].days_to_complete == 10
    assert outcome.advance.state.started_at == later


def test_a_goal_not_reached_keeps_its_start() -> None:
    state = rules.GoalState(goal=AGENCY.goals[0], status="active", started_at=T0)
    outcome = rules.approve_submission(
        AGENCY, state, rules.Metrics(), Decimal("999.99"), T0 + dt.timedelta(days=3)
    )
    assert outcome.advance.completed == ()
    assert outcome.advance.state == state


def test_assigning_a_reached_goal_completes_it_and_advances() -> None:
    metrics = rules.Metrics(total_revenue_earned=Decimal(5000))
    advance = rules.assign_goal(AGENCY, AGENCY.goals[1], metrics, T0)
    assert [c.goal.slug for c in advance.completed] == ["agency-2"]
    assert advance.state.goal.slug == "agency-3"


def test_goals_already_completed_are_not_recorded_twice() -> None:
    metrics = rules.Metrics(total_revenue_earned=Decimal(1500))
    advance = rules.assign_goal(AGENCY, AGENCY.goals[0], metrics, T0, ["agency-1"])
    assert advance.completed == ()
    assert advance.state.goal.slug == "agency-2"


def test_percent_truncates_and_caps() -> None:
    assert rules.percent(Decimal(1), Decimal(3)) == Decimal("33.33")
    assert rules.percent(Decimal(0), Decimal(1000)) == 0
    assert rules.percent(Decimal(5000), Decimal(1000)) == 100


def test_pseudonyms_are_letters_in_bijective_base_26() -> None:
    assert rules.pseudonym(1) == "Member A"
    assert rules.pseudonym(2) == "Member B"
    assert rules.pseudonym(26) == "Member Z"
    assert rules.pseudonym(27) == "Member AA"
    assert rules.pseudonym(28) == "Member AB"
    assert rules.pseudonym(702) == "Member ZZ"
    assert rules.pseudonym(703) == "Member AAA"


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=10**6))
def test_pseudonyms_are_distinct(a: int, b: int) -> None:
    assert (rules.pseudonym(a) == rules.pseudonym(b)) == (a == b)
