"""What `protocol.ConnectionProtocol` asks the I/O layer to do: its actions and timers.

Plain values, no behaviour. server.py performs each kind; those that read or
write something (JetStream, Redis, presence) say which method of the protocol
to call with the result.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

from community_shared.auth import Identity

from community_gateway.frames import OpId
from community_gateway.sendqueue import Outgoing

# --------------------------------------------------------------------------- timers


@dataclasses.dataclass(frozen=True, slots=True)
class InboxHold:
    """The end of the hold on the automatic inbox subscription's live events."""

    channel: str
    token: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class TokenExpiry:
    """The moment (wall clock, seconds) the session's token expires."""

    at: float


Timer = InboxHold | TokenExpiry


# --------------------------------------------------------------------------- actions


@dataclasses.dataclass(frozen=True, slots=True)
class Send:
    """Queue these frames in order; `paced`: wait for room in the queue before each
    (history replay). Once a connection is closing, later actions are moot."""

    items: Sequence[Outgoing]
    paced: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Listen:
    """Offer this channel's live events to the connection from now on."""

    channel: str


@dataclasses.dataclass(frozen=True, slots=True)
class Unlisten:
    """Stop offering this channel's live events (for `presence`: its frames)."""

    channel: str


@dataclasses.dataclass(frozen=True, slots=True)
class ReadInbox:
    """Read the inbox's latest seq and, from the user's read cursor, the unread count;
    then `greeted` (`unread` 0 when the cursor cannot be read) or `greet_failed`."""

    user_id: uuid.UUID
    channel: str


@dataclasses.dataclass(frozen=True, slots=True)
class ReadHistory:
    """Read the channel's latest seq and, with `since`, its history `(since, latest]`;
    then `history_read` or `history_unavailable`."""

    channel: str
    since: int | None
    op_id: OpId


@dataclasses.dataclass(frozen=True, slots=True)
class OpenPresence:
    """Wait (a bounded time) for this instance's presence view;
    then `presence_opened` and the snapshot, or `presence_unavailable`."""

    op_id: OpId


@dataclasses.dataclass(frozen=True, slots=True)
class GoLive:
    """The frames above are queued: call `go_live(channel)` and perform what it returns."""

    channel: str


@dataclasses.dataclass(frozen=True, slots=True)
class StoreCursor:
    """Move the user's inbox read cursor up to `cursor_to_store(seq, latest)`;
    then send `done`, or `failed` if it cannot be stored."""

    user_id: uuid.UUID
    channel: str
    seq: int
    done: Outgoing
    failed: Outgoing


@dataclasses.dataclass(frozen=True, slots=True)
class StoreVisibility:
    """Store the user's presence visibility; then send `done`, or `failed`."""

    identity: Identity
    visible: bool
    done: Outgoing
    failed: Outgoing


@dataclasses.dataclass(frozen=True, slots=True)
class ModeChanged:
    """The connection went to the foreground or the background (presence counts
    foreground connections: a user with none gets Web Push)."""

    identity: Identity
    foreground: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    """Call `timer_due(timer, …)` after `delay` seconds (0: as soon as the loop is free;
    an `InboxHold` may be pending twice, a `TokenExpiry` replaces the previous one).
    For a `TokenExpiry`, `delay` is computed by the caller from `timer.at`."""

    timer: Timer
    delay: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with this code (queued frames are discarded)."""

    code: int
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class CountOp:
    """Count one client op and its outcome (`ok`, `rate_limited` or an error code)."""

    name: str
    outcome: str


Action = (
    Send
    | ModeChanged
    | Listen
    | Unlisten
    | ReadInbox
    | ReadHistory
    | OpenPresence
    | GoLive
    | StoreCursor
    | StoreVisibility
    | Schedule
    | Close
    | CountOp
)
