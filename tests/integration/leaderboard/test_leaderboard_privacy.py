"""Privacy: opting out hides a student everywhere at once; hidden earnings show a range."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from tests.conftest import User, eventually, make_user
from tests.integration.leaderboard.leaderboard_support import Events, me, whole_board

BOARDS = [f"{w}:{t}" for w in ("all", "30d", "7d") for t in ("all", "agency", "saas")]


async def put_privacy(client: Any, user: User, **choice: bool) -> dict[str, Any]:
    response = await client.put("/leaderboard/me/privacy", json=choice, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def on_boards(client: Any, user: User) -> set[str]:
    found = set()
    for board in BOARDS:
        window, track = board.split(":")
        members = {i["user_id"] for i in await whole_board(client, window=window, track=track)}
        if str(user.id) in members:
            found.add(board)
    return found


async def test_opting_out_hides_the_student_from_every_board_at_once(
    leaderboard_client: Any, events: Events, rank_changes: list[dict[str, Any]]
) -> None:
    student = make_user("student")
    await events.assigned(student, "agency")
    await events.post(student)
    await events.approve(student, "agency", amount="1200.00", total="1200.00")
    visible_on = await on_boards(leaderboard_client, student)
    assert visible_on == {b for b in BOARDS if not b.endswith(":saas")}
    stats_before = (await leaderboard_client.get("/leaderboard/stats")).json()

    choice = await put_privacy(
        leaderboard_client, student, show_on_leaderboard=False, show_earnings=True
    )
    assert choice == {"show_on_leaderboard": False, "show_earnings": True}
    # Immediately: no board shows them any more (no waiting for a consumer).
    assert await on_boards(leaderboard_client, student) == set()
    mine = await me(leaderboard_client, student)
    assert all(rank is None for rank in mine["ranks"].values())
    assert mine["privacy"] == {"show_on_leaderboard": False, "show_earnings": True}
    assert mine["points"] > 0  # the student still sees their own figures

    # They still count in the community totals.
    stats_after = (await leaderboard_client.get("/leaderboard/stats")).json()
    assert stats_after["total_students"] == stats_before["total_students"]
    assert stats_after["total_earnings"] == stats_before["total_earnings"]

    # Their activity disappears from the ticker too.
    activity = (await leaderboard_client.get("/leaderboard/activity?limit=100")).json()["items"]
    assert str(student.id) not in {a["user_id"] for a in activity}

    # Each board they left announces it once, with no new rank.
    def departures() -> list[dict[str, Any]]:
        mine = [c for c in rank_changes if c["user_id"] == str(student.id)]
        return [c for c in mine if c["new_rank"] is None]

    async def announced() -> bool:
        return {c["board"] for c in departures()} == visible_on

    await eventually(announced)
    assert len(departures()) == len(visible_on)
    assert all(c["old_rank"] is not None for c in departures())

    # New activity while opted out stays hidden, and they do not come back.
    await events.post(student)
    assert await on_boards(leaderboard_client, student) == set()

    await put_privacy(leaderboard_client, student, show_on_leaderboard=True, show_earnings=True)
    assert await on_boards(leaderboard_client, student) == visible_on


async def test_hidden_earnings_show_only_the_range(leaderboard_client: Any, events: Events) -> None:
    student = make_user("student")
    await events.assigned(student, "agency")
    await events.approve(student, "agency", amount="7500.00", total="7500.00")
    await put_privacy(leaderboard_client, student, show_on_leaderboard=True, show_earnings=False)
    for window in ("all", "30d", "7d"):
        board = await whole_board(leaderboard_client, window=window)
        entry = next(i for i in board if i["user_id"] == str(student.id))
        assert entry["earned"] is None
        assert entry["earnings_range"] == "$5k-$10k"
    mine = await me(leaderboard_client, student)
    assert mine["earned"] == "7500.00"  # their own figure, to themselves
    assert mine["privacy"]["show_earnings"] is False

    await put_privacy(leaderboard_client, student, show_on_leaderboard=True, show_earnings=True)
    board = await whole_board(leaderboard_client)
    assert next(i for i in board if i["user_id"] == str(student.id))["earned"] == "7500.00"


def _sorts_as(item: dict[str, Any]) -> Decimal:
    """What a board item may be sorted by under `sort=earned`: its earnings when
    shown, else the lower bound of its range (SPEC §7)."""
    if item["earned"] is not None:
        return Decimal(item["earned"])
    low = item["earnings_range"].lstrip("$").split("-")[0].rstrip("+")
    return Decimal(low.replace("k", "")) * 1000


async def test_sorting_by_earned_places_hidden_earnings_by_their_range(
    leaderboard_client: Any, events: Events
) -> None:
    high, shy, low = make_user("student"), make_user("student"), make_user("student")
    for student, amount in ((high, "700.00"), (shy, "600.00"), (low, "500.00")):
        await events.assigned(student, "agency")
        await events.approve(student, "agency", amount=amount, total=amount)
    await put_privacy(leaderboard_client, shy, show_on_leaderboard=True, show_earnings=False)
    for window in ("all", "30d"):
        board = await whole_board(leaderboard_client, window=window, track="agency", sort="earned")
        # The order says no more than the ranges: 600.00 hidden sorts as $0.
        order = [
            i["user_id"] for i in board if i["user_id"] in {str(high.id), str(shy.id), str(low.id)}
        ]
        assert order == [str(high.id), str(low.id), str(shy.id)], window
        values = [_sorts_as(i) for i in board]
        assert values == sorted(values, reverse=True), window
    # Showing the earnings again puts the student back by their figure.
    await put_privacy(leaderboard_client, shy, show_on_leaderboard=True, show_earnings=True)
    board = await whole_board(leaderboard_client, track="agency", sort="earned")
    order = [
        i["user_id"] for i in board if i["user_id"] in {str(high.id), str(shy.id), str(low.id)}
    ]
    assert order == [str(high.id), str(shy.id), str(low.id)]


async def test_neighbours_respect_hidden_earnings(leaderboard_client: Any, events: Events) -> None:
    shy, other = make_user("student"), make_user("student")
    await events.assigned(shy, "agency")
    await events.approve(shy, "agency", amount="100000.00", total="100000.00")
    await put_privacy(leaderboard_client, shy, show_on_leaderboard=True, show_earnings=False)
    await events.assigned(other, "agency")
    await events.approve(other, "agency", amount="99000.00", total="99000.00")
    near = (await me(leaderboard_client, other))["neighbors"]
    entry = next(i for i in near["above"] + near["below"] if i["user_id"] == str(shy.id))
    assert entry["earned"] is None and entry["earnings_range"] == "$50k+"


async def test_an_opted_out_student_is_not_announced(
    leaderboard_client: Any, events: Events, nats_client: Any, lb_settings: Any
) -> None:
    import msgspec

    seen: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        seen.append(msgspec.json.decode(msg.data)["data"])

    sub = await nats_client.subscribe(lb_settings.subject("leaderboard.>"), cb=collect)
    try:
        student = make_user("student")
        await put_privacy(
            leaderboard_client, student, show_on_leaderboard=False, show_earnings=True
        )
        await events.post(student)
        for _ in range(3):
            await events.goal_completed(student, "agency")
        assert "goal-crusher" in (await me(leaderboard_client, student))["badges"]
        await asyncio.sleep(0.8)
        assert not [d for d in seen if d.get("user_id") == str(student.id)]
    finally:
        await sub.unsubscribe()


async def test_privacy_needs_a_student_and_a_valid_body(leaderboard_client: Any) -> None:
    student = make_user("student")
    url = "/leaderboard/me/privacy"
    good = {"show_on_leaderboard": True, "show_earnings": False}
    assert (await leaderboard_client.put(url, json=good)).status_code == 401
    instructor = make_user("instructor")
    assert (
        await leaderboard_client.put(url, json=good, headers=instructor.headers)
    ).status_code == 403
    admin = make_user("admin")
    assert (await leaderboard_client.put(url, json=good, headers=admin.headers)).status_code == 403
    forged = {"Authorization": "Bearer not.a.token"}
    assert (await leaderboard_client.put(url, json=good, headers=forged)).status_code == 401
    for body in (
        {},
        {"show_on_leaderboard": True},
        {"show_on_leaderboard": "yes", "show_earnings": True},
        {"show_on_leaderboard": 1, "show_earnings": 0},
        {"show_on_leaderboard": None, "show_earnings": True},
        [],
        "true",
    ):
        response = await leaderboard_client.put(url, json=body, headers=student.headers)
        assert response.status_code == 400, (body, response.text)
    raw = await leaderboard_client.put(
        url, content=b"{not json", headers={**student.headers, "Content-Type": "application/json"}
    )
    assert raw.status_code == 400
    # nothing was stored by the bad requests
    assert (await me(leaderboard_client, student))["privacy"] == {
        "show_on_leaderboard": True,
        "show_earnings": True,
    }


async def test_a_student_no_event_names_shows_under_their_token_name(
    leaderboard_client: Any, events: Events
) -> None:
    learner = make_user("student", name="Quiet Learner")
    await events.video(learner, 60, 120)  # learning events carry no name
    board = await whole_board(leaderboard_client)
    assert next(i for i in board if i["user_id"] == str(learner.id))["name"] == "Student"
    await put_privacy(leaderboard_client, learner, show_on_leaderboard=True, show_earnings=True)
    board = await whole_board(leaderboard_client)
    assert next(i for i in board if i["user_id"] == str(learner.id))["name"] == "Quiet Learner"


async def test_a_guest_is_refused_before_the_body_is_read(leaderboard_client: Any) -> None:
    response = await leaderboard_client.put(
        "/leaderboard/me/privacy",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    instructor = make_user("instructor")
    response = await leaderboard_client.put(
        "/leaderboard/me/privacy", json={"bogus": 1}, headers=instructor.headers
    )
    assert response.status_code == 403
