"""Prometheus metrics of the gateway (served at `GET /metrics`).

Process-wide, like every prometheus_client metric: several instances in one
process (tests) add up.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge("gateway_connections", "Open websocket connections")
CONNECTIONS_OPENED = Counter("gateway_connections_opened_total", "Websocket connections accepted")
HANDSHAKES_REFUSED = Counter(
    "gateway_handshakes_refused_total", "Websocket handshakes refused", ["status"]
)
FRAMES_SENT = Counter("gateway_frames_sent_total", "Frames written to clients")
OPS = Counter("gateway_ops_total", "Client ops received", ["op", "outcome"])
DROPS = Counter(
    "gateway_frames_dropped_total",
    "Frames dropped from a slow client's queue (merged counter updates, shed activity)",
    ["reason"],
)
CLOSES = Counter("gateway_closes_total", "Closed websocket connections by close code", ["code"])
ROUTED = Counter("gateway_routed_events_total", "Domain events handled by the router", ["outcome"])
CHANNEL_PUBLISHED = Counter(
    "gateway_channel_events_published_total", "Channel events written to history", ["channel"]
)
FANOUT_EVENTS = Counter("gateway_fanout_events_total", "Channel events received for fan-out")
ROUTING = Gauge("gateway_router_routing", "1 while this instance holds the router lease and routes")
TAKEOVERS = Counter("gateway_router_takeovers_total", "Times this instance started routing")
RECLAIMED = Counter(
    "gateway_router_reclaimed_total",
    "Envelopes a previous router left unacknowledged, redelivered at once on takeover",
)
RECREATED = Counter(
    "gateway_jetstream_recreated_total",
    "JetStream streams and consumers found missing and created again",
    ["what"],
)
