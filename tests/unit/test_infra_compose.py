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
