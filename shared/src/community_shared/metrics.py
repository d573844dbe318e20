"""Prometheus metrics shared by every component (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

OUTBOX_PUBLISHED = Counter(
    "outbox_published_total", "Outbox events published to JetStream", ["schema"]
)
OUTBOX_PUBLISH_ERRORS = Counter(
    "outbox_publish_errors_total", "Failed outbox publish attempts", ["schema"]
)
DEPENDENCY_ERRORS = Counter(
    "dependency_errors_total",
    "Operations that failed because a dependency (redis, nats, rpc) was unavailable",
    ["dependency", "operation"],
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total", "Events applied by a durable consumer", ["consumer", "outcome"]
)
