"""The clustered topology's decisions (`./run stack --cluster`), without starting anything."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.local import cluster, runner

COMPONENTS = [(c.name, c.module, c.port) for c in runner.COMPONENTS]


def test_defaults_three_servers_three_copies_two_of_everything() -> None:
    shape = cluster.shape_from({})
    assert (shape.nats_servers, shape.gateways, shape.instances, shape.replicas) == (3, 2, 2, 3)
    assert shape.external_nats == ()


def test_the_shape_is_a_setting() -> None:
    env = {"CLUSTER_NATS_SERVERS": "5", "CLUSTER_GATEWAYS": "3", "NATS_STREAM_REPLICAS": "5"}
    shape = cluster.shape_from(env, instances=4)
    assert (shape.nats_servers, shape.gateways, shape.instances, shape.replicas) == (5, 3, 4, 5)
    assert cluster.shape_from({"CLUSTER_NATS_SERVERS": "1"}).replicas == 1
    with pytest.raises(ValueError):
        cluster.shape_from({"CLUSTER_NATS_SERVERS": "1", "NATS_STREAM_REPLICAS": "3"})


def test_a_nats_url_naming_several_servers_is_used_instead_of_starting_one() -> None:
    shape = cluster.shape_from({"NATS_URL": "nats://a:4222,nats://b:4222,nats://c:4222"})
    assert shape.external_nats == ("nats://a:4222", "nats://b:4222", "nats://c:4222")
    env = cluster.cluster_env({"X": "1"}, shape, [])
    assert env["NATS_URL"] == "nats://a:4222,nats://b:4222,nats://c:4222"
    assert env["NATS_STREAM_REPLICAS"] == "3" and env["X"] == "1"
    # One URL is the single server of `./run stack`, not a cluster.
    assert cluster.shape_from({"NATS_URL": "nats://127.0.0.1:4222"}).external_nats == ()


def test_every_instance_has_its_own_port() -> None:
    planned = cluster.instances(COMPONENTS, cluster.shape_from({}))
    assert [(i.name, i.port) for i in planned if i.component in ("gateway", "posts")] == [
        ("gateway-1", 8000),
        ("gateway-2", 8010),
        ("posts-1", 8001),
        ("posts-2", 8011),
    ]
    assert len(planned) == 2 * len(COMPONENTS)
    assert len({i.port for i in planned}) == len(planned)
    shifted = cluster.instances(COMPONENTS, cluster.shape_from({}), port_offset=100)
    assert shifted[0].port == 8100


def test_nats_servers_route_to_each_other_with_jetstream_in_their_own_store() -> None:
    servers = cluster.nats_servers(3)
    assert [s.url for s in servers] == [
        "nats://127.0.0.1:4322",
        "nats://127.0.0.1:4323",
        "nats://127.0.0.1:4324",
    ]
    ports = [p for s in servers for p in (s.client_port, s.route_port, s.monitor_port)]
    assert len(set(ports)) == 9
    argv = cluster.nats_argv("nats-server", servers[0], servers, Path("/state"))
    assert "-js" in argv and argv[argv.index("-sd") + 1] == "/state/nats-1"
    assert argv[argv.index("--routes") + 1] == "nats://127.0.0.1:6323,nats://127.0.0.1:6324"
    assert argv[argv.index("--cluster") + 1] == "nats://127.0.0.1:6322"
    assert argv[argv.index("-n") + 1] == "nats-1"


def test_the_runner_flags() -> None:
    options = runner.parse_args(["--cluster", "--gateways", "3", "--instances", "1"])
    assert options.cluster and (options.gateways, options.instances) == (3, 1)
    assert not runner.parse_args([]).cluster


def test_the_summary_names_every_process() -> None:
    shape = cluster.shape_from({})
    planned = cluster.instances(COMPONENTS, shape)
    text = cluster.cluster_summary("127.0.0.1", cluster.nats_servers(3), shape, planned, 8090)
    for instance in planned:
        assert instance.name in text
    assert "ws://127.0.0.1:8010/ws" in text and "ws://127.0.0.1:8090/ws" in text
    assert "nats://127.0.0.1:4324" in text and "3 (NATS_STREAM_REPLICAS)" in text


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")
@pytest.mark.parametrize("source", ["generated", "compose"])
def test_the_load_balancer_configuration_is_valid(source: str, tmp_path: Path) -> None:
    if source == "generated":
        path = tmp_path / "haproxy.cfg"
        gateways = [("gateway-1", "127.0.0.1:8000"), ("gateway-2", "127.0.0.1:8010")]
        path.write_text(cluster.haproxy_config("127.0.0.1:8090", gateways))
    else:
        path = runner.ROOT / "infra/haproxy/haproxy.cfg"
        expected = cluster.haproxy_config(cluster.COMPOSE_BIND, cluster.COMPOSE_GATEWAYS)
        assert path.read_text() == expected, "rewrite it from infra/local/cluster.py"
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = path.read_text()
    assert "option httpchk GET /ready" in text  # a draining gateway is taken out
    assert "timeout tunnel" in text  # websockets outlive the HTTP timeouts


def test_instances_never_take_the_demo_or_balancer_ports() -> None:
    shape = cluster.ClusterShape(gateways=8, instances=8)
    ports = {i.port for i in cluster.instances(COMPONENTS, shape)}
    assert not ports & {8080, cluster.BALANCER_PORT}
    with pytest.raises(ValueError):
        cluster.ClusterShape(gateways=9)


def test_the_balancer_fits_the_file_limit() -> None:
    """HAProxy refuses to start when maxconn needs more descriptors than it may open."""
    assert cluster.balancer_maxconn(20_000) == 9_950
    assert cluster.balancer_maxconn(1_048_576) == 10_000
    assert "maxconn 9950" in cluster.haproxy_config("127.0.0.1:8090", [], 9_950)


def test_a_shifted_stack_keeps_its_stores_apart() -> None:
    """Two clusters side by side (`--port-offset`) never share a NATS store."""
    root = Path("/checkout")
    assert cluster.state_dir(root, 0) == Path("/checkout/.run")
    assert cluster.state_dir(root, 300) == Path("/checkout/.run/offset-300")
