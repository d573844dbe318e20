"""Community stats, the activity ticker, permissions and bad input (never a 500)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from tests.conftest import eventually, make_user
from tests.integration.leaderboard.leaderboard_support import Events, me


async def test_stats_count_students_earnings_and_tracks(
    leaderboard_client: Any, events: Events
) -> None:
    await events.caught_up()
    before = (await leaderboard_client.get("/leaderboard/stats")).json()
    agency, saas = make_user("student"), make_user("student")
    await events.assigned(agency, "agency")
    await events.assigned(saas, "saas")
    await events.approve(agency, "agency", amount="250.00", total="250.00")
    await events.approve(saas, "saas", amount="80.00", total="80.00", mrr="80.00")
    await events.video(saas, 1800, 3600)
    await events.post(make_user("instructor"))  # never counted
    after = (await leaderboard_client.get("/leaderboard/stats")).json()
    # (other components' tests may add students meanwhile: at least ours count)
    assert after["total_students"] >= before["total_students"] + 2
    assert after["active_this_week"] >= before["active_this_week"] + 1  # only the watcher acted
    assert Decimal(after["total_earnings"]) >= Decimal(before["total_earnings"]) + Decimal("330")
    assert after["students_by_track"]["agency"] >= before["students_by_track"]["agency"] + 1
    assert after["students_by_track"]["saas"] >= before["students_by_track"]["saas"] + 1
    assert isinstance(after["average_learn_rate"], float)


async def test_stats_updates_are_coalesced_to_one_per_second(
    leaderboard_client: Any, events: Events, nats_client: Any, lb_settings: Any
) -> None:
    arrivals: list[tuple[float, dict[str, Any]]] = []

    async def collect(msg: Any) -> None:
        # When the service made each update (not when it arrived here: delivery
        # jitter on a busy machine may bring two updates closer together).
        envelope = msgspec.json.decode(msg.data)
        made = dt.datetime.fromisoformat(envelope["occurred_at"]).timestamp()
        arrivals.append((made, envelope["data"]))

    sub = await nats_client.subscribe(lb_settings.subject("leaderboard.stats.updated"), cb=collect)
    try:
        await events.caught_up()  # other components' events are applied first
        await asyncio.sleep(1.1)  # let a pending update from earlier tests go out first
        arrivals.clear()
        students = [make_user("student") for _ in range(15)]
        started = time.monotonic()  # elapsed time: measured here
        for student in students:
            await events.publish(
                "learning.video.watched",
                {"user_id": str(student.id), "video_id": "v", "watched_seconds": 60,
                 "session_seconds": 60},
            )  # fmt: skip
        expected = (await leaderboard_client.get("/leaderboard/stats")).json()

        async def caught_up() -> bool:
            current = (await leaderboard_client.get("/leaderboard/stats")).json()
            return bool(arrivals) and arrivals[-1][1] == current

        await eventually(caught_up, timeout=6)
        elapsed = time.monotonic() - started
        assert len(arrivals) <= int(elapsed) + 2
        times = [t for t, _ in arrivals]
        assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))
        assert expected["total_students"] <= arrivals[-1][1]["total_students"]
    finally:
        await sub.unsubscribe()


async def test_activity_is_newest_first_and_paged(leaderboard_client: Any, events: Events) -> None:
    student = make_user("student", name="Ticker Tess")
    await events.assigned(student, "agency")
    await events.post(student)  # before the approval: older on the ticker
    await events.approve(student, "agency", amount="1500.00", total="1500.00")
    await events.post(student, visibility="members")  # not public: not on the public ticker
    items = (await leaderboard_client.get("/leaderboard/activity?limit=100")).json()["items"]
    mine = [a for a in items if a["user_id"] == str(student.id) and a["type"] != "badge.awarded"]
    assert [a["type"] for a in mine] == ["submission.approved", "post.created"]
    assert mine[0]["text"] == "Ticker Tess logged $1,500.00 in revenue"
    assert mine[1]["text"] == "Ticker Tess shared a new post"
    assert set(mine[1]["ref"]) == {"post_id"}
    stamps = [a["occurred_at"] for a in items]
    assert stamps == sorted(stamps, reverse=True)

    first = (await leaderboard_client.get("/leaderboard/activity?limit=2")).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (
        await leaderboard_client.get(
            "/leaderboard/activity", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [a["id"] for a in first["items"] + second["items"]] == [a["id"] for a in items[:4]]


async def test_a_deleted_post_leaves_the_ticker(leaderboard_client: Any, events: Events) -> None:
    student = make_user("student")
    post_id = uuid.uuid4()
    await events.post(student, post_id=post_id)
    await events.send(
        "posts.post.deleted",
        {"id": str(post_id), "author_id": str(student.id), "visibility": "public",
         "removed_by": str(uuid.uuid4()), "reason": "moderator"},
    )  # fmt: skip
    items = (await leaderboard_client.get("/leaderboard/activity?limit=100")).json()["items"]
    assert not [a for a in items if a["ref"].get("post_id") == str(post_id)]


async def test_activity_is_announced(
    leaderboard_client: Any, events: Events, nats_client: Any, lb_settings: Any
) -> None:
    seen: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        seen.append(msgspec.json.decode(msg.data)["data"])

    sub = await nats_client.subscribe(
        lb_settings.subject("leaderboard.activity.recorded"), cb=collect
    )
    try:
        student = make_user("student")
        await events.goal_completed(student, "saas", slug="first-100-mrr")

        async def announced() -> bool:
            return any(a["user_id"] == str(student.id) for a in seen)

        await eventually(announced)
        item = next(a for a in seen if a["user_id"] == str(student.id))
        assert item["type"] == "goal.completed"
        assert item["name"] == student.name
        assert item["ref"] == {"goal_slug": "first-100-mrr"}
    finally:
        await sub.unsubscribe()


@pytest.mark.parametrize(
    "query",
    [
        "window=1d",
        "window=",
        "track=enterprise",
        "sort=points",
        "sort=RANK",
        "limit=0",
        "limit=101",
        "limit=ten",
        "limit=1e3",
        "offset=-1",
        "offset=abc",
        "offset=99999999999999999999999",
        "limit=99999999999999999999999",
    ],
)
async def test_bad_board_queries_are_400(leaderboard_client: Any, query: str) -> None:
    response = await leaderboard_client.get(f"/leaderboard?{query}")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status_code"] == 400 and body["detail"]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=500", "limit=x", "cursor=%%%", "cursor=bm90LWEtdHVwbGU", "cursor=W10"],
)
async def test_bad_activity_queries_are_400(leaderboard_client: Any, query: str) -> None:
    response = await leaderboard_client.get(f"/leaderboard/activity?{query}")
    assert response.status_code == 400, response.text


async def test_good_queries_answer(leaderboard_client: Any) -> None:
    for window in ("all", "30d", "7d"):
        for track in ("all", "agency", "saas"):
            for sort in ("rank", "earned", "actions", "learn_rate", "name"):
                response = await leaderboard_client.get(
                    "/leaderboard",
                    params={"window": window, "track": track, "sort": sort, "limit": 5},
                )
                assert response.status_code == 200, (window, track, sort, response.text)
                assert set(response.json()) == {"items", "total"}


async def test_me_is_for_students_only(leaderboard_client: Any) -> None:
    assert (await leaderboard_client.get("/leaderboard/me")).status_code == 401
    for role in ("instructor", "admin"):
        user = make_user(role)
        response = await leaderboard_client.get("/leaderboard/me", headers=user.headers)
        assert response.status_code == 403
    expired = make_user("student", ttl=-10)
    response = await leaderboard_client.get("/leaderboard/me", headers=expired.headers)
    assert response.status_code == 401
    non_member = make_user("student", member=False)
    assert (await me(leaderboard_client, non_member))["rank"] is None


async def test_reads_are_open_to_guests(leaderboard_client: Any) -> None:
    for path in ("/leaderboard", "/leaderboard/stats", "/leaderboard/activity"):
        assert (await leaderboard_client.get(path)).status_code == 200
    bad = {"Authorization": "Bearer nope"}
    assert (await leaderboard_client.get("/leaderboard", headers=bad)).status_code == 401


async def test_health_ready_and_openapi(leaderboard_client: Any) -> None:
    assert (await leaderboard_client.get("/health")).status_code == 200
    assert (await leaderboard_client.get("/ready")).status_code == 200
    schema = (await leaderboard_client.get("/schema/openapi.json")).json()
    assert "/leaderboard/me/privacy" in schema["paths"]
    metrics = await leaderboard_client.get("/metrics")
    assert "events_consumed_total" in metrics.text


async def test_garbage_never_yields_a_500(leaderboard_client: Any, events: Events) -> None:
    student = make_user("student")
    await events.post(student)
    probes = [
        ("GET", "/leaderboard?window=%00&track=%ff"),
        ("GET", "/leaderboard?sort=name&limit=100&offset=1000000"),
        ("GET", "/leaderboard/activity?cursor=" + "A" * 5000),
        ("GET", "/leaderboard/me/privacy"),
        ("POST", "/leaderboard"),
        ("DELETE", "/leaderboard/me"),
        ("PUT", "/leaderboard/me/privacy"),
    ]
    for method, path in probes:
        response = await leaderboard_client.request(method, path, headers=student.headers)
        assert response.status_code < 500, (method, path, response.text)
    big = {"show_on_leaderboard": True, "show_earnings": True, "pad": "x" * 400_000}
    response = await leaderboard_client.put(
        "/leaderboard/me/privacy", json=big, headers=student.headers
    )
    assert response.status_code == 413
