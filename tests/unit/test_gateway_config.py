"""Gateway tunables from the environment."""

from __future__ import annotations

import pytest
from community_gateway.config import GatewayConfig


def test_defaults() -> None:
    config = GatewayConfig.from_env({})
    assert (config.queue_bound, config.op_rate, config.op_burst) == (1000, 20.0, 50)
    assert (config.max_subscriptions, config.coalesce_seconds) == (100, 0.3)
    assert (config.ping_interval, config.ping_timeout) == (20.0, 30.0)
    assert config.channel_max_age_seconds >= 24 * 3600
    assert config.inbox_max_age_seconds == 30 * 24 * 3600
    # A dead router is replaced within lease + one renewal interval: under SPEC's 2 s.
    assert config.router_lease_seconds * 1.2 < 2.0


def test_overrides() -> None:
    config = GatewayConfig.from_env(
        {
            "GATEWAY_QUEUE_BOUND": "16",
            "GATEWAY_OP_RATE": "5.5",
            "GATEWAY_COALESCE_MS": "100",
            "GATEWAY_CHANNEL_MAX_AGE_HOURS": "24",
            "GATEWAY_INBOX_MAX_AGE_DAYS": "7",
            "GATEWAY_PING_TIMEOUT": "",
            "GATEWAY_ROUTER_BATCH": "50",
            "GATEWAY_LISTEN_BACKLOG": "4096",
        }
    )
    assert config.queue_bound == 16
    assert config.op_rate == 5.5
    assert config.coalesce_seconds == pytest.approx(0.1)
    assert config.channel_max_age_seconds == 24 * 3600
    assert config.inbox_max_age_seconds == 7 * 24 * 3600
    assert config.ping_timeout == 30.0
    assert config.router_batch == 50
    assert config.listen_backlog == 4096


@pytest.mark.parametrize(
    "env",
    [
        {"GATEWAY_QUEUE_BOUND": "many"},
        {"GATEWAY_QUEUE_BOUND": "0"},
        {"GATEWAY_OP_RATE": "-1"},
        {"GATEWAY_ROUTER_LEASE_SECONDS": "0"},
        {"GATEWAY_ROUTER_BATCH": "0"},
        {"GATEWAY_LISTEN_BACKLOG": "0"},
    ],
)
def test_invalid_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        GatewayConfig.from_env(env)


def test_drain_window_from_the_environment() -> None:
    assert (GatewayConfig().drain_seconds, GatewayConfig().drain_min_rate) == (10.0, 100.0)
    config = GatewayConfig.from_env({"GATEWAY_DRAIN_SECONDS": "2.5", "GATEWAY_DRAIN_MIN_RATE": "0"})
    assert (config.drain_seconds, config.drain_min_rate) == (2.5, 0.0)
    with pytest.raises(ValueError):
        GatewayConfig(drain_seconds=-1)
