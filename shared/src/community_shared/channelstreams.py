"""The gateway's channel streams: the format its router writes, read by others. No I/O.

The gateway's router turns each domain event into channel events and publishes
them to the channels' histories in JetStream. Two readers follow those streams:
the gateway's own fan-out (every instance, to its websocket clients) and the
notifications service (to push what reaches an inbox or the review queue).
What writer and readers must agree on is here, defined once:

- **Streams and subjects.** `CHANNELS` holds the shared channels, one subject
  each (`ch.feed`, `ch.leaderboard`, `ch.activity`, `ch.resources`,
  `ch.reviews`); `INBOX` holds the notification inboxes, `inbox.<user id>`
  for the channel `user:<user id>`. Subjects are given unprefixed (the
  deployment's `NATS_SUBJECT_PREFIX` goes in front, `Settings.subject`).
- **Messages.** A `ChannelMessage` as JSON; the stream sequence number of a
  message is the event's `seq`.
- **Audiences.** Who may see an event among a channel's subscribers:
  `may_receive`.

Channel names are canonical strings: `feed`, `leaderboard`, `activity`,
`resources`, `reviews` and `user:<uuid>` (lower-case, hyphenated UUID).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec

from community_shared.auth import Identity

CHANNELS_STREAM: Final = "CHANNELS"
INBOX_STREAM: Final = "INBOX"

FEED: Final = "feed"
LEADERBOARD: Final = "leaderboard"
ACTIVITY: Final = "activity"
RESOURCES: Final = "resources"
REVIEWS: Final = "reviews"
SHARED_CHANNELS: Final = frozenset({FEED, LEADERBOARD, ACTIVITY, RESOURCES, REVIEWS})
"""The channels in `CHANNELS`; every other channel is a `user:` inbox."""
USER_PREFIX: Final = "user:"

SHARED_SUBJECT_PREFIX: Final = "ch."
INBOX_SUBJECT_PREFIX: Final = "inbox."

Audience = Literal["public", "members", "moderators"]
AUDIENCES: Final = frozenset({"public", "members", "moderators"})


# --------------------------------------------------------------------------- names


def user_channel(user_id: uuid.UUID) -> str:
    return f"{USER_PREFIX}{user_id}"


def parse_user_channel(name: str) -> str | None:
    """The canonical name of a `user:` channel, or None if `name` names none.

    Accepts any spelling of a UUID and answers the canonical one.
    """
    if not name.startswith(USER_PREFIX):
        return None
    raw = name[len(USER_PREFIX) :]
    if not 32 <= len(raw) <= 36:
        return None
    try:
        return user_channel(uuid.UUID(raw))
    except ValueError:
        return None


def channel_user_id(channel: str) -> uuid.UUID | None:
    """The user whose inbox `channel` is (canonical names only), else None."""
    if channel.startswith(USER_PREFIX):
        return uuid.UUID(channel[len(USER_PREFIX) :])
    return None


def channel_subject(channel: str) -> str:
    """The unprefixed NATS subject holding a channel's history (`ch.feed`, `inbox.<id>`)."""
    user_id = channel_user_id(channel)
    if user_id is not None:
        return f"{INBOX_SUBJECT_PREFIX}{user_id}"
    return f"{SHARED_SUBJECT_PREFIX}{channel}"


def channel_of_subject(subject: str) -> str | None:
    """Inverse of `channel_subject` (unprefixed subject); None for anything else."""
    if subject.startswith(SHARED_SUBJECT_PREFIX):
        name = subject[len(SHARED_SUBJECT_PREFIX) :]
        return name if name in SHARED_CHANNELS else None
    if subject.startswith(INBOX_SUBJECT_PREFIX):
        return parse_user_channel(USER_PREFIX + subject[len(INBOX_SUBJECT_PREFIX) :])
    return None


# --------------------------------------------------------------------------- audiences


def may_receive(identity: Identity, audience: str) -> bool:
    """Whether an event of this audience may be shown to `identity`.

    Guests and students without membership never receive `members` events,
    live, from history or as a push. An unknown audience is treated as the
    strictest one.
    """
    if audience == "public":
        return True
    if audience == "members":
        return identity.is_member
    return identity.is_moderator


# --------------------------------------------------------------------------- stored form


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelEvent:
    """One event on one channel, as the router publishes it to the channel's history."""

    channel: str
    type: str
    data: Mapping[str, Any]
    audience: Audience = "public"
    coalesce_key: str | None = None


class ChannelMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A channel event as kept in the channel's JetStream history.

    The stream sequence number of the message is the event's `seq`; `ts` is
    the domain event's `occurred_at`; `key` is the coalesce key, stored so
    that fan-out never has to decode `data`.
    """

    type: str
    data: msgspec.Raw
    ts: str
    audience: str = "public"
    key: str | None = None


_message_encoder = msgspec.json.Encoder()
_message_decoder = msgspec.json.Decoder(ChannelMessage)


def format_ts(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a `Z` (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def encode_channel_message(event: ChannelEvent, ts: str) -> bytes:
    return _message_encoder.encode(
        ChannelMessage(
            type=event.type,
            data=msgspec.Raw(_message_encoder.encode(event.data)),
            ts=ts,
            audience=event.audience,
            key=event.coalesce_key,
        )
    )


def decode_channel_message(payload: bytes) -> ChannelMessage:
    """Raises `msgspec.DecodeError`/`ValidationError` for anything that is not a channel message."""
    return _message_decoder.decode(payload)
