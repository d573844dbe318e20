"""A NATS cluster in the settings: several URLs, replicated streams (SPEC §10)."""

from __future__ import annotations

import pytest
from community_gateway.config import GatewayConfig
from community_gateway.lease import Lease
from community_gateway.store import ChannelStore
from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.history import history_stream_config
from community_shared.settings import Settings
from community_shared.streams import events_stream_config

CLUSTER = "nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://127.0.0.1:4224"


def test_nats_url_lists_the_servers_of_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", CLUSTER)
    settings = Settings.from_env("posts", 8001)
    assert settings.nats_servers == [
        "nats://127.0.0.1:4222",
        "nats://127.0.0.1:4223",
        "nats://127.0.0.1:4224",
    ]
    assert Settings(service="x").nats_servers == ["nats://127.0.0.1:4222"]


def test_replicas_default_to_one_and_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env("posts", 8001).nats_stream_replicas == 1
    monkeypatch.setenv("NATS_STREAM_REPLICAS", "3")
    assert Settings.from_env("posts", 8001).nats_stream_replicas == 3
    monkeypatch.setenv("NATS_STREAM_REPLICAS", "0")
    with pytest.raises(ValueError):
        Settings.from_env("posts", 8001)


def test_every_stream_the_system_creates_has_the_configured_replicas() -> None:
    settings = Settings(service="x", nats_stream_replicas=3)
    configs = [
        events_stream_config(settings),
        *ChannelStore(None, settings, GatewayConfig()).stream_configs(),  # type: ignore[arg-type]
        Lease(None, settings, 1.2, "a").stream_config(),  # type: ignore[arg-type]
        history_stream_config(settings, LeaderboardConfig(), "posts.>"),
    ]
    assert [config.num_replicas for config in configs] == [3] * len(configs)
