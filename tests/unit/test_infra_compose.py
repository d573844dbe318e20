"""Static checks of docker-compose.yml and the Dockerfile (no Docker engine needed).

What a user relies on: `docker compose up` starts every component of SPEC §1 on
its port, healthchecked on `/ready`, after Postgres, Redis and NATS (JetStream)
are healthy, each image running one workspace member as a non-root user.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = {
    "gateway": (8000, "gateway", "community_gateway"),
    "posts": (8001, "services/posts", "community_posts"),
    "resources": (8002, "services/resources", "community_resources"),
    "goals": (8003, "services/goals", "community_goals"),
    "leaderboard": (8004, "services/leaderboard", "community_leaderboard"),
    "notifications": (8005, "services/notifications", "community_notifications"),
}
SPEC_ENV = {"DATABASE_URL", "NATS_URL", "REDIS_URL", "JWT_SECRET", "HOST", "PORT"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "infra/docker/Dockerfile").read_text()


def test_every_component_and_backing_service_is_there(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert {"postgres", "redis", "nats", "seed", "demo", *COMPONENTS} <= services


def test_backing_services_are_the_expected_images_with_healthchecks(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["nats"]["image"].startswith("nats:2.10")
    assert "-js" in services["nats"]["command"]
    assert any(volume.endswith(":/data") for volume in services["nats"]["volumes"])
    for name in ("postgres", "redis", "nats"):
        assert services[name]["healthcheck"]["test"], name


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_port_env_healthcheck_and_ordering(compose: dict[str, Any], name: str) -> None:
    port, _, _ = COMPONENTS[name]
    service = compose["services"][name]
    assert service["ports"] == [f"{port}:{port}"]
    env = service["environment"]
    assert set(env) >= SPEC_ENV
    assert env["PORT"] == str(port)
    assert env["HOST"] == "0.0.0.0"
    assert env["RUN_MIGRATIONS"] == "1"
    assert "/ready" in " ".join(service["healthcheck"]["test"])
    depends = service["depends_on"]
    for backing in ("redis", "nats"):
        assert depends[backing]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_image_installs_its_own_workspace_member(
    compose: dict[str, Any], name: str
) -> None:
    port, member_dir, package_dir = COMPONENTS[name]
    build = compose["services"][name]["build"]
    assert build["dockerfile"] == "infra/docker/Dockerfile"
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    member = tomllib.loads((ROOT / member_dir / "pyproject.toml").read_text())
    assert build["args"]["PACKAGE"] == member["project"]["name"]
    assert build["args"]["MODULE"].split(".")[0] == package_dir
    assert (ROOT / member_dir / "src" / package_dir).is_dir()
    assert build["args"]["PORT"] == str(port)


def test_seed_runs_once_after_every_component_is_healthy(compose: dict[str, Any]) -> None:
    seed = compose["services"]["seed"]
    assert seed["command"][-2:] == ["-m", "infra.seed"]
    assert seed["restart"] == "no"
    assert {n: d["condition"] for n, d in seed["depends_on"].items()} == {
        n: "service_healthy" for n in COMPONENTS
    }
    for name, (port, _, _) in COMPONENTS.items():
        if name not in ("gateway", "notifications"):  # nothing to seed in notifications
            assert seed["environment"][f"{name.upper()}_URL"] == f"http://{name}:{port}"


def test_demo_page_is_served_on_8080(compose: dict[str, Any]) -> None:
    demo = compose["services"]["demo"]
    assert demo["ports"] == ["8080:8080"]
    assert "infra.demo.server" in demo["command"]


def test_every_service_shares_one_jwt_secret_setting(compose: dict[str, Any]) -> None:
    secrets = {
        compose["services"][name]["environment"]["JWT_SECRET"] for name in [*COMPONENTS, "seed"]
    }
    assert len(secrets) == 1
    (secret,) = secrets
    assert secret.startswith("${JWT_SECRET:-")  # overridable from the environment


def test_dockerfile_installs_one_member_frozen_and_runs_unprivileged(dockerfile: str) -> None:
    assert re.search(
        r"uv sync --frozen --no-dev --no-install-workspace --package \"\$PACKAGE\"", dockerfile
    )
    assert re.search(r"uv sync --frozen --no-dev --package \"\$PACKAGE\"", dockerfile)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile
    cmd = re.findall(r"^CMD (.+)$", dockerfile, re.M)
    assert cmd and cmd[-1].startswith("["), "CMD in exec form so signals reach the process"


def test_dockerfile_base_images_are_pinned(dockerfile: str) -> None:
    for image in re.findall(r"^FROM (\S+)", dockerfile, re.M):
        assert ":" in image and not image.endswith(":latest"), image


def test_build_context_leaves_out_the_local_environment() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored)


# --------------------------------------------------------------------------- profile `cluster`

CLUSTER_NATS = ("nats-1", "nats-2", "nats-3")


def cluster_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {
        name: service
        for name, service in compose["services"].items()
        if "cluster" in service.get("profiles", [])
    }


def test_the_cluster_profile_is_the_runners_topology(compose: dict[str, Any]) -> None:
    """`docker compose --profile cluster up` = `./run stack --cluster`: same processes."""
    from infra.local import cluster, runner

    shape = cluster.shape_from({})
    planned = cluster.instances([(c.name, c.module, c.port) for c in runner.COMPONENTS], shape)
    services = cluster_services(compose)
    assert {i.name for i in planned} | set(CLUSTER_NATS) | {"lb", "cluster-db"} == set(services)
    for instance in planned:
        service = services[instance.name]
        assert service["image"] == compose["services"][instance.component]["image"]
        assert service["environment"]["PORT"] == str(COMPONENTS[instance.component][0])
        assert "/ready" in " ".join(service["healthcheck"]["test"])


def test_cluster_components_use_every_nats_server_and_three_copies(
    compose: dict[str, Any],
) -> None:
    services = cluster_services(compose)
    for name, service in services.items():
        if name in (*CLUSTER_NATS, "lb"):
            continue
        env = service["environment"]
        assert env["NATS_URL"].split(",") == [f"nats://{n}:4222" for n in CLUSTER_NATS], name
        assert env["NATS_STREAM_REPLICAS"] == str(len(CLUSTER_NATS))
        # A copy of its own: never the single-instance stack's database or keys.
        assert env["DATABASE_URL"] != compose["services"]["posts"]["environment"]["DATABASE_URL"]
        assert env["REDIS_KEY_PREFIX"]
        if name != "cluster-db":
            depends = service["depends_on"]
            assert all(depends[n]["condition"] == "service_healthy" for n in CLUSTER_NATS)
            assert depends["cluster-db"]["condition"] == "service_completed_successfully"


def test_nats_servers_route_to_each_other_with_jetstream(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in CLUSTER_NATS:
        command = services[name]["command"]
        assert "-js" in command and command[command.index("-n") + 1] == name
        routes = command[command.index("--routes") + 1].split(",")
        assert sorted(routes) == [f"nats://{n}:6222" for n in CLUSTER_NATS if n != name]
        assert command[command.index("--cluster_name") + 1] == "community-live"
        store = [v for v in services[name]["volumes"] if v.endswith(":/data")]
        assert len(store) == 1 and store[0].split(":")[0] in compose["volumes"]
    stores = {services[n]["volumes"][0] for n in CLUSTER_NATS}
    assert len(stores) == len(CLUSTER_NATS)  # each server its own store


def test_the_load_balancer_fronts_both_gateways_with_the_checked_config(
    compose: dict[str, Any],
) -> None:
    lb = compose["services"]["lb"]
    assert lb["image"].startswith("haproxy:")
    (mount,) = lb["volumes"]
    source = mount.split(":")[0]
    assert (ROOT / source).is_file()  # checked with `haproxy -c` in test_infra_cluster.py
    config = (ROOT / source).read_text()
    for gateway in ("gateway-1", "gateway-2"):
        assert f"server {gateway} {gateway}:8000" in config
        assert lb["depends_on"][gateway]["condition"] == "service_healthy"
    assert lb["ports"] == ["8090:8090"] and "bind *:8090" in config


def test_gateways_get_their_drain_window_before_being_killed(compose: dict[str, Any]) -> None:
    """Docker's default 10 s would SIGKILL a gateway in the middle of its 10 s drain."""
    for name in ("gateway", "gateway-1", "gateway-2"):
        grace = compose["services"][name]["stop_grace_period"]
        assert int(grace.rstrip("s")) >= 10 + 5, name  # drain + close timeout


def test_no_two_services_publish_one_port_and_dependencies_exist(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    published = [
        port.split(":")[0] for service in services.values() for port in service.get("ports", [])
    ]
    assert len(published) == len(set(published))
    for name, service in services.items():
        profiles = set(service.get("profiles", []))
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
            # A service every profile starts never waits for one only a profile starts.
            assert set(services[needed].get("profiles", [])) <= profiles, (name, needed)
