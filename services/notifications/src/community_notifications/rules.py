"""The delivery rules of Web Push (SPEC §12), pure: no I/O, no clock.

- which event types a user may ask to be pushed, and the defaults (`PUSH_DEFAULTS`);
- who receives a channel event (`recipients_of`);
- whether to push at all to a user given their connections (`wants_push`);
- the push message's `Urgency` and `TTL`;
- what to do with a push service's answer (`outcome_of`) and when to try again
  (`retry_delay`): exponential backoff, honouring `Retry-After`, for up to an hour.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import uuid
from collections.abc import Iterable, Mapping
from typing import Final, Literal
from urllib.parse import urlsplit

from community_shared.channelstreams import REVIEWS, channel_user_id, parse_user_channel

Role = Literal["student", "instructor", "admin"]

REVIEW_REQUESTED: Final = "review.requested"
USER_EVENT_TYPES: Final = (
    "submission.approved",
    "submission.rejected",
    "goal.assigned",
    "goal.completed",
    "badge.awarded",
    "reply.received",
    "like.received",
    "story.published",
)
"""The events of a `user:<id>` channel (SPEC §9)."""
PUSH_EVENT_TYPES: Final = (*USER_EVENT_TYPES, REVIEW_REQUESTED)
OFF_BY_DEFAULT: Final = frozenset({"like.received"})
PUSH_DEFAULTS: Final[Mapping[str, bool]] = {t: t not in OFF_BY_DEFAULT for t in PUSH_EVENT_TYPES}
"""Everything on by default except `like.received` (a like is not worth waking a phone)."""

TTL_SECONDS: Final = 24 * 3600
"""How long the push service keeps a message for a browser that is offline (one day)."""
HIGH_URGENCY: Final = frozenset({REVIEW_REQUESTED, "submission.approved", "submission.rejected"})

RETRY_WINDOW_SECONDS: Final = 3600.0
"""A push that keeps failing with 429/5xx is given up this long after the first attempt."""
FIRST_RETRY_SECONDS: Final = 1.0
MAX_RETRY_SECONDS: Final = 600.0


class UnknownEventType(ValueError):
    """A preference names an event type that is never pushed."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(names)
        super().__init__(f"unknown event types: {', '.join(self.names)}")


def is_moderator(role: str) -> bool:
    return role in ("instructor", "admin")


def push_types_for(role: str) -> tuple[str, ...]:
    """The event types a user of `role` may be pushed (`review.requested`: moderators only)."""
    return PUSH_EVENT_TYPES if is_moderator(role) else USER_EVENT_TYPES


def effective_preferences(role: str, stored: Mapping[str, bool]) -> dict[str, bool]:
    """The defaults of `role` overlaid with what the user chose."""
    return {t: stored.get(t, PUSH_DEFAULTS[t]) for t in push_types_for(role)}


def check_preferences(role: str, requested: Mapping[str, bool]) -> dict[str, bool]:
    """The requested changes, or `UnknownEventType` naming every type `role` cannot have."""
    allowed = set(push_types_for(role))
    unknown = [name for name in requested if name not in allowed]
    if unknown:
        raise UnknownEventType(unknown)
    return dict(requested)


def wants_event(event_type: str, stored: Mapping[str, bool]) -> bool:
    """Whether a user whose stored choices are `stored` wants `event_type` pushed."""
    return stored.get(event_type, PUSH_DEFAULTS.get(event_type, False))


@dataclasses.dataclass(frozen=True, slots=True)
class Audience:
    """Who a channel event is for: one user, or every instructor and admin."""

    user_id: uuid.UUID | None = None
    moderators: bool = False


def recipients_of(channel: str, event_type: str) -> Audience | None:
    """The audience of a channel event worth a push, or None for one that is never pushed.

    Only `review.requested` of the `reviews` channel is pushed (`review.resolved` tells the
    other instructors what they no longer need to do: nobody is woken for it); every event of
    a `user:<id>` channel is pushed to that user.
    """
    if channel == REVIEWS:
        return Audience(moderators=True) if event_type == REVIEW_REQUESTED else None
    user = parse_user_channel(channel)
    if user is not None and event_type in USER_EVENT_TYPES:
        return Audience(user_id=channel_user_id(user))
    return None


def wants_push(foreground_connections: int) -> bool:
    """Push only to a user with no foreground connection on any gateway instance.

    A user with no connection, or only connections in `background` mode (a hidden
    tab), is not looking at the page: the push is what reaches them. A user with a
    visible page sees the event there already.
    """
    return foreground_connections <= 0


def urgency_of(event_type: str) -> Literal["high", "normal"]:
    return "high" if event_type in HIGH_URGENCY else "normal"


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # 404/410: the subscription expired or was unsubscribed
    RETRY = "retry"  # 429, 5xx, or no answer
    REJECTED = "rejected"  # any other 4xx: our request is wrong, retrying will not help


def outcome_of(status: int | None) -> Outcome:
    """What a push service's answer means (`None`: no answer, e.g. a connection error)."""
    if status is None or status == 429 or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (404, 410):
        return Outcome.GONE
    return Outcome.REJECTED


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header in delta-seconds form; None when absent or not that.

    (The HTTP-date form is ignored: push services answer with seconds, and a date would
    make us trust a clock we do not share.)
    """
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    return float(min(int(text), int(RETRY_WINDOW_SECONDS)))


def retry_delay(attempts: int, retry_after: float | None, elapsed: float) -> float | None:
    """Seconds to wait before the next attempt, or None to give up.

    `attempts` counts the attempts made so far (≥ 1), `elapsed` the seconds since the
    first. The delay doubles from `FIRST_RETRY_SECONDS` up to `MAX_RETRY_SECONDS`, and is
    never shorter than the push service's `Retry-After`. An attempt that would fall after
    `RETRY_WINDOW_SECONDS` from the first is not made.
    """
    backoff = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2.0 ** max(0, attempts - 1))
    delay = max(backoff, retry_after or 0.0)
    if elapsed + delay > RETRY_WINDOW_SECONDS:
        return None
    return delay


class BadEndpoint(ValueError):
    """A subscription endpoint that is not a push service's URL."""


_LOOPBACK_HOSTS: Final = frozenset({"localhost", "::1"})


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str, *, allow_insecure: bool) -> str:
    """The endpoint if a push may be POSTed to it, else `BadEndpoint` saying why.

    An absolute `https` URL with a host and no credentials; plain `http` only to a loopback
    host and only when `allow_insecure` (a local push service in tests).
    """
    if endpoint != endpoint.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in endpoint):
        raise BadEndpoint("endpoint must be a URL without spaces or control characters")
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise BadEndpoint("endpoint is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise BadEndpoint("endpoint must be an absolute https URL")
    if parts.username is not None or parts.password is not None:
        raise BadEndpoint("endpoint must not carry credentials")
    if parts.fragment:
        raise BadEndpoint("endpoint must not have a fragment")
    if parts.scheme == "http" and not (allow_insecure and _is_loopback(host)):
        raise BadEndpoint("endpoint must be an https URL")
    return endpoint
