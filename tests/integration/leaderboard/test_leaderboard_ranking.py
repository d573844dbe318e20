"""Boards: order, ties, sorts, paging, tracks, windows, and the live rank.changed events."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from tests.conftest import eventually, make_user
from tests.integration.leaderboard.leaderboard_support import (
    Events,
    days_ago,
    in_app,
    me,
    now,
    parts_of,
    whole_board,
)


def moves_of(changes: list[dict[str, Any]], user_id: object, board: str) -> list[dict[str, Any]]:
    return [c for c in changes if c["user_id"] == str(user_id) and c["board"] == board]


async def test_an_approval_moves_the_student_up_with_one_rank_changed_per_board(
    leaderboard_client: Any, events: Events, rank_changes: list[dict[str, Any]]
) -> None:
    low, high = make_user("student"), make_user("student")
    for student in (low, high):
        await events.assigned(student, "agency")
    await events.post(high)
    await events.post(high)
    await events.post(low)
    before_low, before_high = await me(leaderboard_client, low), await me(leaderboard_client, high)
    assert before_low["rank"] > before_high["rank"]
    rank_changes.clear()

    await events.approve(low, "agency", amount="5000.00", total="5000.00")

    after_low, after_high = await me(leaderboard_client, low), await me(leaderboard_client, high)
    assert after_low["rank"] < after_high["rank"]

    async def announced() -> bool:
        return len(moves_of(rank_changes, low.id, "all:all")) >= 1

    await eventually(announced)
    await asyncio.sleep(0.5)  # give any extra (wrong) event time to show up
    mine = moves_of(rank_changes, low.id, "all:all")
    assert len(mine) == 1
    assert mine[0]["old_rank"] == before_low["rank"]
    assert mine[0]["new_rank"] == after_low["rank"]
    assert mine[0]["points"] == after_low["points"]
    # The student passed was shifted by one and is not announced.
    assert after_high["rank"] == before_high["rank"] + 1
    assert not [c for c in rank_changes if c["user_id"] == str(high.id)]
    for board in ("all:agency", "30d:all", "30d:agency", "7d:all", "7d:agency"):
        moves = moves_of(rank_changes, low.id, board)
        assert len(moves) == 1, board
        assert moves[0]["old_rank"] == before_low["ranks"][board]
        assert moves[0]["new_rank"] == after_low["ranks"][board]


async def test_equal_points_go_to_who_reached_them_first(
    leaderboard_client: Any, events: Events
) -> None:
    first, second = make_user("student"), make_user("student")
    start = now() - dt.timedelta(hours=2)
    await events.post(second, at=start + dt.timedelta(seconds=30))
    await events.post(first, at=start)
    mine, theirs = await me(leaderboard_client, first), await me(leaderboard_client, second)
    assert mine["points"] == theirs["points"]
    assert mine["rank"] < theirs["rank"]


async def test_boards_are_ordered_and_paged(leaderboard_client: Any, events: Events) -> None:
    for i in range(3):
        student = make_user("student")
        await events.assigned(student, "saas" if i % 2 else "agency")
        for _ in range(i + 1):
            await events.video(student, 600 * (i + 1), 3600)
    board = await whole_board(leaderboard_client)
    points = [item["points"] for item in board]
    assert points == sorted(points, reverse=True)
    assert [item["rank"] for item in board] == list(range(1, len(board) + 1))

    response = await leaderboard_client.get("/leaderboard", params={"limit": 2, "offset": 1})
    page = response.json()
    assert page["total"] == len(board)
    assert [i["user_id"] for i in page["items"]] == [i["user_id"] for i in board[1:3]]
    assert [i["rank"] for i in page["items"]] == [2, 3]

    default = (await leaderboard_client.get("/leaderboard")).json()
    assert len(default["items"]) == min(20, len(board))
    beyond = await leaderboard_client.get("/leaderboard", params={"offset": 100_000})
    assert beyond.status_code == 200
    assert beyond.json()["items"] == []


async def test_every_sort(leaderboard_client: Any, events: Events) -> None:
    earner = make_user("student")
    await events.assigned(earner, "agency")
    await events.approve(earner, "agency", amount="700.00", total="700.00")
    for key in ("earned", "actions", "learn_rate"):
        items = await whole_board(leaderboard_client, sort=key)
        values = [float(i[key]) for i in items if i[key] is not None]
        assert values == sorted(values, reverse=True), key
        ranks = {i["rank"] for i in items}
        assert None not in ranks and len(ranks) == len(items)
    by_name = await whole_board(leaderboard_client, sort="name")
    names = [i["name"].lower() for i in by_name]
    assert names == sorted(names)
    by_rank = await whole_board(leaderboard_client)
    assert {i["user_id"] for i in by_name} == {i["user_id"] for i in by_rank}


async def test_track_boards_hold_only_their_track(leaderboard_client: Any, events: Events) -> None:
    agency, saas = make_user("student"), make_user("student")
    await events.assigned(agency, "agency")
    await events.assigned(saas, "saas")
    await events.approve(agency, "agency", amount="300.00", total="300.00")
    await events.approve(saas, "saas", amount="150.00", total="150.00", mrr="150.00")
    agency_board = await whole_board(leaderboard_client, track="agency")
    saas_board = await whole_board(leaderboard_client, track="saas")
    assert {i["track"] for i in agency_board} == {"agency"}
    assert {i["track"] for i in saas_board} == {"saas"}
    assert str(agency.id) in {i["user_id"] for i in agency_board}
    assert str(saas.id) in {i["user_id"] for i in saas_board}
    # earned follows the track: revenue for agency, MRR for saas
    entry = next(i for i in saas_board if i["user_id"] == str(saas.id))
    assert entry["earned"] == "150.00"
    assert entry["goal"] == {"slug": "first-1k", "name": "First 1K"}


async def test_windows_slide(leaderboard_client: Any, events: Events) -> None:
    old, recent = make_user("student"), make_user("student")
    await events.post(old, at=days_ago(8))
    await events.post(recent, at=days_ago(6))
    old_me, recent_me = await me(leaderboard_client, old), await me(leaderboard_client, recent)
    assert old_me["ranks"]["all:all"] is not None
    assert old_me["ranks"]["30d:all"] is not None
    assert old_me["ranks"]["7d:all"] is None
    assert old_me["windows"]["7d"]["points"] == 0
    assert old_me["windows"]["30d"]["points"] == 5
    assert recent_me["ranks"]["7d:all"] is not None
    assert recent_me["windows"]["7d"]["actions"] == 1
    seven = {i["user_id"] for i in await whole_board(leaderboard_client, window="7d")}
    assert str(recent.id) in seven and str(old.id) not in seven


async def test_a_new_utc_day_slides_actions_out_of_the_window(
    leaderboard_client: Any, events: Events, rank_changes: list[dict[str, Any]]
) -> None:
    service = parts_of(leaderboard_client).service
    student = make_user("student")
    await events.video(student, 3000, 3600, at=days_ago(6))  # fast learner over the last 7 days
    assert "fast-learner" in (await me(leaderboard_client, student))["badges"]
    assert (await me(leaderboard_client, student))["ranks"]["7d:all"] is not None
    today = service.today()
    try:
        await in_app(leaderboard_client, lambda: service.roll_windows(today))
        moved = await in_app(
            leaderboard_client, lambda: service.roll_windows(today + dt.timedelta(days=1))
        )
        assert moved >= 1
        ranks = await in_app(
            leaderboard_client, lambda: service.boards.ranks_everywhere(student.id)
        )
        assert ranks["7d:all"] is None
        assert ranks["30d:all"] is not None

        async def announced() -> bool:
            return any(c["new_rank"] is None for c in moves_of(rank_changes, student.id, "7d:all"))

        await eventually(announced)
        assert "fast-learner" not in (await me(leaderboard_client, student))["badges"]
    finally:
        await in_app(leaderboard_client, service.resync)


async def test_me_has_ranks_everywhere_and_neighbours(
    leaderboard_client: Any, events: Events
) -> None:
    student = make_user("student")
    await events.assigned(student, "saas")
    await events.post(student)
    mine = await me(leaderboard_client, student)
    assert set(mine["ranks"]) == {f"{w}:{t}" for w in ("all", "30d", "7d")
                                  for t in ("all", "agency", "saas")}  # fmt: skip
    assert mine["ranks"]["all:agency"] is None
    assert mine["ranks"]["all:saas"] is not None
    board = await whole_board(leaderboard_client)
    rank = mine["rank"]
    assert board[rank - 1]["user_id"] == str(student.id)
    above = [i["user_id"] for i in mine["neighbors"]["above"]]
    below = [i["user_id"] for i in mine["neighbors"]["below"]]
    assert above == [i["user_id"] for i in board[max(rank - 3, 0) : rank - 1]]
    assert below == [i["user_id"] for i in board[rank : rank + 2]]
    assert [i["rank"] for i in mine["neighbors"]["above"]] == list(range(max(rank - 2, 1), rank))


async def test_an_empty_page_is_empty(leaderboard_client: Any, events: Events) -> None:
    """The leader's neighbours above are a page of 0: not the rest of the board."""
    student = make_user("student")
    await events.post(student)
    await me(leaderboard_client, student)  # on the board
    boards = parts_of(leaderboard_client).service.boards
    assert await in_app(leaderboard_client, lambda: boards.page("all:all", "rank", 0, 0)) == []
    assert await in_app(leaderboard_client, lambda: boards.page("all:all", "rank", 1, 0)) == []


async def test_me_for_a_student_with_nothing_yet(leaderboard_client: Any) -> None:
    newcomer = make_user("student", name="New Comer")
    mine = await me(leaderboard_client, newcomer)
    assert mine["name"] == "New Comer"
    assert mine["points"] == 0 and mine["rank"] is None
    assert mine["neighbors"] == {"above": [], "below": []}
    assert mine["earned"] == "0.00" and mine["earnings_range"] == "$0-$1k"
