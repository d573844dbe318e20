from __future__ import annotations

from typing import Any

from tests.conftest import make_user
from tests.integration.leaderboard.leaderboard_support import Events, me


async def test_a_post_puts_a_student_on_the_board(leaderboard_client: Any, events: Events) -> None:
    student = make_user("student")
    await events.post(student)
    mine = await me(leaderboard_client, student)
    assert mine["points"] == 5
    assert mine["ranks"]["all:all"] is not None
    assert mine["actions"] == 1
