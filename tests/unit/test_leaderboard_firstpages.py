"""When a board's first page is looked at, and when a rendered page is news (pure)."""

from __future__ import annotations

import itertools
import uuid

from community_leaderboard.firstpages import (
    FirstPageWatch,
    boards_of_tracks,
    page_changed,
    page_digest,
)
from community_leaderboard.rules import BOARDS
from community_leaderboard.schemas import BoardItem, Goal
from hypothesis import given, settings
from hypothesis import strategies as st

ALICE = uuid.UUID(int=1)
BOB = uuid.UUID(int=2)


def entry(user: uuid.UUID = ALICE, rank: int = 1, **changes: object) -> BoardItem:
    fields: dict[str, object] = {
        "rank": rank,
        "user_id": user,
        "name": "Alice",
        "track": "agency",
        "goal": Goal(slug="first-1k", name="First 1K"),
        "points": 120,
        "earned": "5000.00",
        "earnings_range": "$5k-$10k",
        "actions": 12,
        "learn_rate": 30.0,
        "execution_rate": 50.0,
        "days_active": 4,
        "completed_goals": 1,
        "badges": ["goal-crusher"],
    }
    fields.update(changes)
    return BoardItem(**fields)  # type: ignore[arg-type]


def test_the_same_page_is_no_news() -> None:
    page = [entry(), entry(BOB, rank=2, name="Bob")]
    again = [entry(), entry(BOB, rank=2, name="Bob")]
    assert not page_changed(page_digest(page), page_digest(again))


def test_a_page_never_announced_is_news() -> None:
    assert page_changed(None, page_digest([]))
    assert page_changed(None, page_digest([entry()]))


def test_every_visible_change_on_the_page_is_news() -> None:
    before = page_digest([entry(), entry(BOB, rank=2, name="Bob")])
    changed_pages = [
        [entry(points=121), entry(BOB, rank=2, name="Bob")],  # points, no rank change
        [entry(earned=None), entry(BOB, rank=2, name="Bob")],  # earnings hidden
        [entry(earnings_range="$10k-$25k"), entry(BOB, rank=2, name="Bob")],
        [entry(badges=[]), entry(BOB, rank=2, name="Bob")],
        [entry(goal=Goal(slug="first-5k", name="First 5K")), entry(BOB, rank=2, name="Bob")],
        [entry(goal=None), entry(BOB, rank=2, name="Bob")],
        [entry(name="Alice B."), entry(BOB, rank=2, name="Bob")],
        [entry(execution_rate=60.0), entry(BOB, rank=2, name="Bob")],
        [entry(BOB, rank=1, name="Bob"), entry(rank=2)],  # swapped
        [entry()],  # Bob left (opted out)
        [entry(), entry(BOB, rank=2, name="Bob"), entry(uuid.UUID(int=3), rank=3)],  # joined
    ]
    for page in changed_pages:
        assert page_changed(before, page_digest(page)), page


def test_boards_of_tracks() -> None:
    assert boards_of_tracks([]) == set()
    assert boards_of_tracks([None]) == {"all:all", "30d:all", "7d:all"}
    assert boards_of_tracks(["agency", "agency"]) == {
        "all:all", "30d:all", "7d:all", "all:agency", "30d:agency", "7d:agency",
    }  # fmt: skip
    assert boards_of_tracks(["agency", "saas", None]) == set(BOARDS)


def test_a_touched_board_is_looked_at_at_once_after_a_quiet_interval() -> None:
    watch = FirstPageWatch(1.0)
    assert watch.due(0.0) == []
    watch.touch(["7d:all", "all:all"])
    assert watch.due(0.05) == ["all:all", "7d:all"]  # board order
    assert watch.due(0.1) == []  # nothing touched since


def test_touches_within_the_interval_make_one_look_when_it_ends() -> None:
    watch = FirstPageWatch(1.0)
    watch.touch(["all:all"])
    assert watch.due(0.0) == ["all:all"]
    for at in (0.1, 0.2, 0.5, 0.9):
        watch.touch(["all:all"])
        assert watch.due(at) == []
    assert watch.next_due() == 1.0
    assert watch.due(0.99) == []
    assert watch.due(1.0) == ["all:all"]
    assert watch.next_due() is None
    # quiet for longer than the interval: at once again
    watch.touch(["all:all"])
    assert watch.due(3.0) == ["all:all"]


def test_a_retry_is_looked_at_at_its_next_turn_or_when_told() -> None:
    watch = FirstPageWatch(1.0)
    watch.touch(["all:all", "7d:saas"])
    assert watch.due(0.0) == ["all:all", "7d:saas"]
    watch.retry(["all:all"])  # the render failed
    watch.retry(["7d:saas"], at=0.3)  # another instance holds the board until 0.3
    assert watch.due(0.3) == ["7d:saas"]
    assert watch.due(1.0) == ["all:all"]


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.floats(0, 0.7), st.lists(st.sampled_from(BOARDS[:3]), max_size=3)),
        max_size=60,
    )
)
def test_looks_are_spaced_and_no_touch_waits_longer_than_the_interval(
    steps: list[tuple[float, list[str]]],
) -> None:
    interval = 1.0
    watch = FirstPageWatch(interval)
    now = 0.0
    looks: dict[str, list[float]] = {}
    waiting: dict[str, float] = {}  # board -> first touch not yet looked at
    last_look: dict[str, float] = {}
    for gap, boards in steps:
        now += gap
        for board in watch.due(now):
            looks.setdefault(board, []).append(now)
            last_look[board] = now
            waiting.pop(board, None)
        for board in boards:
            watch.touch([board])
            waiting.setdefault(board, now)
    # with due() called whenever the next turn comes, each board left waiting is
    # looked at by the later of its touch and its turn
    while (due := watch.next_due()) is not None:
        now = max(now, due)
        for board in watch.due(now):
            looks.setdefault(board, []).append(now)
            since = waiting.pop(board)
            assert now <= max(since, last_look.get(board, since) + interval) + 1e-9
            last_look[board] = now
    assert not waiting
    for times in looks.values():
        assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(times))


def test_the_next_look_waits_an_interval_after_the_last_page_went_out() -> None:
    # a slow render: looked at 0.0, published at 0.4 -> next page not before 1.4
    watch = FirstPageWatch(1.0)
    watch.touch(["all:all"])
    assert watch.due(0.0) == ["all:all"]
    watch.published("all:all", 0.4)
    watch.touch(["all:all"])
    assert watch.due(1.0) == []
    assert watch.due(1.4) == ["all:all"]
