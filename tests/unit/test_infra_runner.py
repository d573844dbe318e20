"""The local runner's decisions, without starting anything."""

from __future__ import annotations

import datetime as dt

import pytest
from community_shared.auth import decode_token
from community_shared.settings import Settings

from infra import demo_data
from infra.demo.server import page_config
from infra.local import runner
from infra.seed import ServiceUrls, demo_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def test_defaults_are_the_spec_ports_with_the_seed_on() -> None:
    options = runner.parse_args([])
    assert options == runner.Options()
    assert {c.name: c.port for c in runner.COMPONENTS} == {
        "gateway": 8000,
        "posts": 8001,
        "resources": 8002,
        "goals": 8003,
        "leaderboard": 8004,
        "notifications": 8005,
    }


def test_flags() -> None:
    options = runner.parse_args(["--reseed", "--start-services", "--port-offset", "100"])
    assert options.reseed and options.start_services and options.seed
    assert options.port_offset == 100
    assert not runner.parse_args(["--no-seed"]).seed


def test_a_negative_port_offset_is_refused() -> None:
    with pytest.raises(SystemExit):
        runner.parse_args(["--port-offset", "-1"])


def test_components_not_in_the_workspace_yet_are_skipped() -> None:
    present, skipped = runner.plan_components(lambda module: module.startswith("community_posts"))
    assert [c.name for c in present] == ["posts"]
    assert {c.name for c in skipped} == {
        "gateway",
        "resources",
        "goals",
        "leaderboard",
        "notifications",
    }


def test_module_exists_does_not_raise_for_missing_packages() -> None:
    assert runner.module_exists("community_shared.settings")
    assert not runner.module_exists("community_nothing_here.app")
    assert not runner.module_exists("community_shared.no_such_module")


def test_child_env_passes_everything_on_with_its_own_port() -> None:
    base = {"JWT_SECRET": "s3cret", "HOST": "0.0.0.0", "PORT": "9999", "NATS_SUBJECT_PREFIX": "x."}
    env = runner.child_env(base, 8101)
    assert env["PORT"] == "8101"
    assert env["JWT_SECRET"] == "s3cret" and env["HOST"] == "0.0.0.0"
    assert env["NATS_SUBJECT_PREFIX"] == "x."
    assert base["PORT"] == "9999"  # the runner's own environment is left alone


@pytest.mark.parametrize(
    ("host", "public"),
    [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")],
)
def test_public_host(host: str, public: str) -> None:
    assert runner.public_host(host) == public


def test_dependencies_come_from_the_settings() -> None:
    settings = Settings.from_env(
        "runner",
        0,
        database_url="postgresql://postgres@db.internal:6543/x",
        redis_url="redis://127.0.0.1/0",
        nats_url="nats://localhost:4333",
    )
    deps = {d.name: d for d in runner.dependencies(settings)}
    assert (deps["postgres"].host, deps["postgres"].port) == ("db.internal", 6543)
    assert (deps["redis"].host, deps["redis"].port) == ("127.0.0.1", 6379)
    assert (deps["nats"].host, deps["nats"].port) == ("localhost", 4333)
    assert not deps["postgres"].is_local and deps["nats"].is_local


def test_missing_message_says_how_to_start_each() -> None:
    message = runner.missing_message(
        [
            runner.Dependency("redis", "127.0.0.1", 6379),
            runner.Dependency("nats", "127.0.0.1", 4222),
        ]
    )
    assert "redis-server --daemonize yes --bind 127.0.0.1 --port 6379" in message
    assert "nats-server -a 127.0.0.1 -p 4222 -js" in message
    assert "--start-services" in message
    assert "postgres" not in message


def test_summary_names_every_url_and_token() -> None:
    started = [c for c in runner.COMPONENTS if c.name in ("gateway", "posts")]
    summary = runner.connection_summary("127.0.0.1", started, 100, [("student", "Ada", "tok-1")])
    assert summary.splitlines()[0] == runner.READY_LINE
    assert "ws://127.0.0.1:8100/ws" in summary
    assert "http://127.0.0.1:8101" in summary
    assert "http://127.0.0.1:8180/?token=tok-1" in summary
    assert "resources" not in summary
    assert "?as=" not in summary  # no demo sign-in unless asked for


def test_summary_links_to_the_demo_sign_in_when_it_is_on() -> None:
    started = [c for c in runner.COMPONENTS if c.name == "gateway"]
    summary = runner.connection_summary(
        "127.0.0.1", started, 0, [], [("student", "Ada Lovelace", "ada-lovelace")]
    )
    assert "http://127.0.0.1:8080/?as=ada-lovelace" in summary


def test_demo_page_config_follows_the_port_offset() -> None:
    assert page_config(10)["sign_in"] is False  # the demo sign-in is off by default
    assert page_config(10)["ports"] == {
        "gateway": 8010,
        "posts": 8011,
        "resources": 8012,
        "goals": 8013,
        "leaderboard": 8014,
        "notifications": 8015,
    }


def test_service_urls() -> None:
    assert ServiceUrls.local("127.0.0.1", 5).goals == "http://127.0.0.1:8008"
    urls = ServiceUrls.from_env({"POSTS_URL": "http://posts:8001/"})
    assert urls.posts == "http://posts:8001"
    assert urls.leaderboard == "http://127.0.0.1:8004"


# --------------------------------------------------------------------------- the demo data


def test_demo_people_have_stable_distinct_ids() -> None:
    ids = [person.id for person in demo_data.EVERYONE]
    assert len(set(ids)) == len(ids)
    assert demo_data.user("Ada Lovelace").id == demo_data.demo_id("user", "Ada Lovelace")
    tracks = {s.track for s in demo_data.STUDENTS}
    assert tracks == {"agency", "saas"} and len(demo_data.STUDENTS) >= 12


def test_demo_tokens_carry_the_demo_identity() -> None:
    ada = demo_data.user("Ada Lovelace")
    identity = decode_token(demo_token(ada, SECRET), SECRET)
    assert identity.user_id == ada.id and identity.role == "student" and identity.name == ada.name


def test_demo_data_refers_only_to_demo_people_and_valid_values() -> None:
    names = set(demo_data.BY_NAME)
    for post in demo_data.POSTS:
        assert {post.author, *post.likers, *(r.author for r in post.replies)} <= names
        assert len(post.likers) == len(set(post.likers))  # a like is idempotent anyway
        for index, reply in enumerate(post.replies):
            assert reply.reply_to is None or reply.reply_to < index
    assert sum(p.pinned for p in demo_data.POSTS) == 1
    assert any(p.visibility == "members" for p in demo_data.POSTS)
    for resource in demo_data.RESOURCES:
        assert resource.file_url.startswith("https://")
        assert set(dict(resource.ratings)) <= set(resource.downloaded_by)  # rate after download
    pending = [s for p in demo_data.GOAL_PLANS for s in p.submissions if s.decision == "pending"]
    assert len(pending) == 1
    for plan in demo_data.GOAL_PLANS:
        decisions = [s.decision for s in plan.submissions]
        assert "pending" not in decisions[:-1]  # nothing can follow a pending submission
        assert plan.goal_slug.startswith(plan.student.track or "?")


def test_learning_events_are_stable_and_consistent() -> None:
    now = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
    events = demo_data.learning_events(now)
    again = demo_data.learning_events(now + dt.timedelta(days=3))
    assert [e.event_id for e in events] != []
    assert {e.event_id for e in events} == {e.event_id for e in again}
    assert len({e.event_id for e in events}) == len(events)
    assert all(e.occurred_at <= now for e in events)
    for event in events:
        if event.type == "learning.video.watched":
            assert (
                0
                < int(str(event.data["watched_seconds"]))
                <= int(str(event.data["session_seconds"]))
            )
    per_student: dict[object, dict[str, int]] = {}
    for event in events:
        counts = per_student.setdefault(event.user_id, {})
        counts[event.type] = counts.get(event.type, 0) + 1
    for counts in per_student.values():
        assert counts["learning.task.completed"] <= counts["learning.task.assigned"]
