"""Prometheus counters of Web Push delivery (served at `/metrics`, SPEC §12)."""

from __future__ import annotations

from prometheus_client import Counter

SENT = Counter("notifications_pushes_sent_total", "Pushes a push service accepted (2xx)")
FAILED = Counter(
    "notifications_pushes_failed_total",
    "Pushes that will not be delivered: gone (404/410), refused (other 4xx), gave_up "
    "(retried for an hour), unknown (their sender stopped mid-request)",
    ["reason"],
)
RETRIED = Counter(
    "notifications_pushes_retried_total", "Pushes scheduled again after a 429, 5xx or no answer"
)
REMOVED = Counter(
    "notifications_subscriptions_removed_total",
    "Subscriptions deleted because their push service answered 404 or 410",
)
EVENTS = Counter(
    "notifications_events_total",
    "Channel events read: pushed, not_pushed (no push for this type), no_recipient, error",
    ["outcome"],
)
