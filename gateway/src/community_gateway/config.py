"""The gateway's tunables, with documented defaults, overridable by environment variables.

Connection settings (NATS, Redis, JWT secret, host, port) come from the shared
`Settings`; everything specific to the websocket gateway lives here so that a
test can start an instance with, say, a tiny outbound queue without touching the
environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

MAX_FRAME_BYTES = 64 * 1024
"""Client frames over this size close the connection with 1009 (SPEC §9); not configurable."""

SOFT_FRAME_BYTES = 16 * 1024
"""No valid op needs more than this; a larger frame (up to `MAX_FRAME_BYTES`) gets `too_large`."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """Tunables of one gateway instance.

    Environment variables (all optional) and defaults:

    | variable | default | meaning |
    |---|---|---|
    | `GATEWAY_QUEUE_BOUND` | 1000 | frames queued per client before merging, shedding, 4008 |
    | `GATEWAY_OP_RATE` | 20 | client ops per second (token bucket refill rate) |
    | `GATEWAY_OP_BURST` | 50 | token bucket capacity |
    | `GATEWAY_MAX_SUBSCRIPTIONS` | 100 | subscriptions per connection |
    | `GATEWAY_COALESCE_MS` | 300 | at most one `resource.stats` per resource per interval |
    | `GATEWAY_PING_INTERVAL` | 20 | seconds between server pings |
    | `GATEWAY_PING_TIMEOUT` | 30 | seconds without a pong before the connection is closed |
    | `GATEWAY_CLOSE_TIMEOUT` | 5 | seconds to wait for a client's closing handshake |
    | `GATEWAY_CHANNEL_MAX_AGE_HOURS` | 48 | history kept per public channel (SPEC: at least 24 h) |
    | `GATEWAY_CHANNEL_MAX_MSGS` | 10000 | history bound per public channel |
    | `GATEWAY_INBOX_MAX_AGE_DAYS` | 30 | notification inbox history (`user:<id>`) |
    | `GATEWAY_INBOX_MAX_MSGS` | 1000 | inbox bound per user |
    | `GATEWAY_ROUTER_LEASE_SECONDS` | 1.2 | router lease (s); takeover within 1.2 times it |
    | `GATEWAY_ROUTER_BATCH` | 500 | envelopes the router pulls and routes at most at once |
    | `GATEWAY_OUTBOUND_BYTES` | 1048576 | a client's outbound backlog (queue, transport and |
    |  |  | kernel socket buffer) before merging, shedding, 4008 |
    | `GATEWAY_STALL_SECONDS` | 10 | a backlog that does not drain at all for this long: 4008 |
    | `GATEWAY_INBOX_HOLD_MS` | 1000 | live inbox events wait, after `hello`, for the client's |
    |  |  | first op to be handled, at most this long |
    | `GATEWAY_PRESENCE_GRACE_SECONDS` | 15 | online this long after the last connection closed |
    | `GATEWAY_PRESENCE_HEARTBEAT_SECONDS` | 6 | heartbeat TTL: a dead instance's users leave |
    | `GATEWAY_PRESENCE_INTERVAL_SECONDS` | 2 | at most one `presence` frame per interval |
    | `GATEWAY_PRESENCE_MAX_MEMBERS` | 1000 | people listed in a snapshot (`online` counts all) |
    | `GATEWAY_DRAIN_SECONDS` | 10 | on stop, clients are closed (1012) spread over this window |
    | `GATEWAY_DRAIN_MIN_RATE` | 100 | ... but never fewer than this many closes per second |
    | `GATEWAY_LISTEN_BACKLOG` | 1024 | connections the kernel queues before the gateway accepts |
    |  |  | them (Linux caps it at `net.core.somaxconn`) |
    """

    queue_bound: int = 1000
    op_rate: float = 20.0
    op_burst: int = 50
    max_subscriptions: int = 100
    coalesce_seconds: float = 0.3
    ping_interval: float = 20.0
    ping_timeout: float = 30.0
    close_timeout: float = 5.0
    channel_max_age_seconds: float = 48 * 3600.0
    channel_max_msgs: int = 10_000
    inbox_max_age_seconds: float = 30 * 24 * 3600.0
    inbox_max_msgs: int = 1000
    router_lease_seconds: float = 1.2
    router_batch: int = 500
    inbox_hold_seconds: float = 1.0
    outbound_bytes: int = 1024 * 1024
    stall_seconds: float = 10.0
    presence_grace_seconds: float = 15.0
    presence_heartbeat_seconds: float = 6.0
    presence_interval_seconds: float = 2.0
    presence_max_members: int = 1000
    drain_seconds: float = 10.0
    drain_min_rate: float = 100.0
    listen_backlog: int = 1024

    def __post_init__(self) -> None:
        if self.queue_bound < 1:
            raise ValueError("queue_bound must be at least 1")
        if self.op_rate <= 0 or self.op_burst < 1:
            raise ValueError("op_rate must be positive and op_burst at least 1")
        if self.max_subscriptions < 1:
            raise ValueError("max_subscriptions must be at least 1")
        if self.coalesce_seconds < 0:
            raise ValueError("coalesce_seconds must not be negative")
        if self.ping_interval <= 0 or self.ping_timeout <= 0:
            raise ValueError("ping_interval and ping_timeout must be positive")
        if self.router_lease_seconds <= 0:
            raise ValueError("router_lease_seconds must be positive")
        if self.router_batch < 1:
            raise ValueError("router_batch must be at least 1")
        if self.outbound_bytes < 1 or self.stall_seconds <= 0:
            raise ValueError("outbound_bytes and stall_seconds must be positive")
        if self.inbox_hold_seconds < 0:
            raise ValueError("inbox_hold_seconds must not be negative")
        if self.presence_grace_seconds < 0 or self.presence_interval_seconds < 0:
            raise ValueError("presence grace and interval must not be negative")
        if self.presence_heartbeat_seconds <= 0 or self.presence_max_members < 0:
            raise ValueError("presence heartbeat must be positive and max members not negative")
        if self.drain_seconds < 0 or self.drain_min_rate < 0:
            raise ValueError("drain_seconds and drain_min_rate must not be negative")
        if self.listen_backlog < 1:
            raise ValueError("listen_backlog must be at least 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        """Defaults overridden by the `GATEWAY_*` variables present in `env` (or os.environ)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}

        def number(
            name: str, field: str, convert: type[int] | type[float], scale: float = 1
        ) -> None:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return
            try:
                value = float(raw) * scale
            except ValueError as exc:
                raise ValueError(f"{name} must be a number, got {raw!r}") from exc
            values[field] = int(value) if convert is int else value

        number("GATEWAY_QUEUE_BOUND", "queue_bound", int)
        number("GATEWAY_OP_RATE", "op_rate", float)
        number("GATEWAY_OP_BURST", "op_burst", int)
        number("GATEWAY_MAX_SUBSCRIPTIONS", "max_subscriptions", int)
        number("GATEWAY_COALESCE_MS", "coalesce_seconds", float, 0.001)
        number("GATEWAY_PING_INTERVAL", "ping_interval", float)
        number("GATEWAY_PING_TIMEOUT", "ping_timeout", float)
        number("GATEWAY_CLOSE_TIMEOUT", "close_timeout", float)
        number("GATEWAY_CHANNEL_MAX_AGE_HOURS", "channel_max_age_seconds", float, 3600)
        number("GATEWAY_CHANNEL_MAX_MSGS", "channel_max_msgs", int)
        number("GATEWAY_INBOX_MAX_AGE_DAYS", "inbox_max_age_seconds", float, 24 * 3600)
        number("GATEWAY_INBOX_MAX_MSGS", "inbox_max_msgs", int)
        number("GATEWAY_ROUTER_LEASE_SECONDS", "router_lease_seconds", float)
        number("GATEWAY_ROUTER_BATCH", "router_batch", int)
        number("GATEWAY_LISTEN_BACKLOG", "listen_backlog", int)
        number("GATEWAY_INBOX_HOLD_MS", "inbox_hold_seconds", float, 0.001)
        number("GATEWAY_OUTBOUND_BYTES", "outbound_bytes", int)
        number("GATEWAY_STALL_SECONDS", "stall_seconds", float)
        number("GATEWAY_PRESENCE_GRACE_SECONDS", "presence_grace_seconds", float)
        number("GATEWAY_PRESENCE_HEARTBEAT_SECONDS", "presence_heartbeat_seconds", float)
        number("GATEWAY_PRESENCE_INTERVAL_SECONDS", "presence_interval_seconds", float)
        number("GATEWAY_PRESENCE_MAX_MEMBERS", "presence_max_members", int)
        number("GATEWAY_DRAIN_SECONDS", "drain_seconds", float)
        number("GATEWAY_DRAIN_MIN_RATE", "drain_min_rate", float)
        return cls(**values)  # type: ignore[arg-type]
