"""Redis loses the boards while the service runs: they come back whole, without a restart."""

from __future__ import annotations

from typing import Any

from tests.conftest import eventually, make_user
from tests.integration.leaderboard.leaderboard_support import Events, whole_board


async def test_boards_lost_by_redis_are_rebuilt_from_postgres(
    leaderboard_client: Any, events: Events, redis_client: Any, lb_settings: Any
) -> None:
    students = [make_user("student") for _ in range(3)]
    for student in students:
        await events.video(student, 60, 120)
    before = {i["user_id"] for i in await whole_board(leaderboard_client)}
    assert {str(s.id) for s in students} <= before

    # What a Redis restart without persistence does to this service's keys.
    lost = [k async for k in redis_client.scan_iter(match=lb_settings.redis_key("lb:*"))]
    await redis_client.delete(*lost)
    newcomer = make_user("student")
    arrived = await events.video_event(newcomer)  # applied once the boards are back

    response = await leaderboard_client.get("/leaderboard")
    if response.status_code != 200:  # unless the keeper was quicker than this read
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1

    async def whole_again() -> bool:
        ready = await leaderboard_client.get("/ready")
        board = await leaderboard_client.get("/leaderboard", params={"limit": 1})
        return ready.status_code == 200 and board.status_code == 200

    await eventually(whole_again, timeout=15, interval=0.1)
    await events.applied(arrived, within=20)
    after = {i["user_id"] for i in await whole_board(leaderboard_client)}
    assert before | {str(newcomer.id)} <= after
