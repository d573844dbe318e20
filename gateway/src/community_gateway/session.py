"""The state of one websocket connection and its recovery bookkeeping. No I/O.

`Session` is the state of one connection: who it is, what it subscribed to,
its mode, its op budget, and the bookkeeping that makes a subscription with
`since` deliver every retained event after `since` exactly once and in order,
even though live events keep arriving while history is being read.
`history_reaches_back` is the rule behind a subscription's `recovered`.

The I/O layer reads history and sequence numbers from JetStream and hands them
to the session (through `protocol.ConnectionProtocol`); it never decides what
a client may see.

Recovery bookkeeping. For each subscribed channel the session remembers
`last_seq`, the highest sequence number already accounted for (delivered or
deliberately skipped). Every frame of a channel is emitted only if its seq is
above `last_seq`, and emitting moves `last_seq` up. A subscription starts in
the *recovering* state, in which live events are buffered rather than sent;
the server then reads `L` (the channel's latest seq) and the history
`(since, L]`, the session emits `subscribed` and the history, sets `last_seq`
to `L`, and finally replays the buffered live events above `L` and turns
live. Since the buffer was opened before `L` was read, every event above `L`
is either buffered or arrives later; since history covers `(since, L]`, none
is missing, and the `last_seq` rule removes the overlap.

On top of that the session remembers, per channel, the highest seq it ever
emitted on this connection (`sent_seq`), across resubscriptions and
unsubscriptions. No event at or below it is emitted again, so the seqs of a
channel strictly increase on a connection (SPEC §9) even when a client
resubscribes with a `since` older than what it has already been sent — the
usual case right after a reconnect, when the automatic `user:` subscription
delivers a live event before the client's own `subscribe … since` is read.
Such a subscription replays only what is after both `since` and `sent_seq`;
if that leaves out an event after `since` the connection never sent, its
answer says `recovered: false` (the server holds the automatic inbox
subscription's live events for a moment after `hello` so that this is rare).
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

from community_shared.auth import Identity
from community_shared.channelstreams import channel_user_id, may_receive

from community_gateway.channels import (
    FORBIDDEN,
    UNKNOWN_CHANNEL,
    can_subscribe,
    is_priority,
    parse_channel,
)
from community_gateway.frames import (
    BAD_REQUEST,
    MAX_CHANNEL_LENGTH,
    RATE_LIMITED,
    Mode,
    OpId,
    StoredEvent,
    control,
    subscribed_frame,
)
from community_gateway.sendqueue import Outgoing

# --------------------------------------------------------------------------- recovery rule


def history_reaches_back(
    *,
    since: int,
    latest: int,
    first_retained: int | None,
    stream_first_seq: int | None = None,
    subject_count: int | None = None,
    max_msgs_per_subject: int | None = None,
) -> bool:
    """Whether no event of a channel after `since` can have left its history.

    Arguments, all about the channel's subject in its stream: `latest` is the
    seq of its last message (0 if none); `first_retained` the seq of its first
    retained message at or after `since` (None if none); optionally the
    stream's first seq, the subject's message count and its per-subject limit.

    The history of a subject only ever loses its *oldest* messages (age and
    count limits; the gateway never deletes messages), so what is retained is
    a suffix of everything ever published on it. Hence it reaches back to
    `since` when: nothing was published after `since` (`since == latest`); or
    the message at `since` itself is still retained (`first_retained ==
    since`); or the first retained one is `since + 1`; or no message at or
    after `since + 1` has aged out of the whole stream (stream first seq
    <= since + 1) while the subject is below its count limit (a count-limit
    removal leaves the subject at its limit until something ages out).
    A `since` above `latest` is a seq this channel never had (a client bug, or
    a history that was reset): not recovered.
    """
    if since == latest:
        return True
    if since > latest:
        return False
    if first_retained is None:
        return False
    if first_retained in (since, since + 1):
        return True
    return (
        stream_first_seq is not None
        and subject_count is not None
        and max_msgs_per_subject is not None
        and stream_first_seq <= since + 1
        and subject_count < max_msgs_per_subject
    )


# --------------------------------------------------------------------------- session


class Refused(NamedTuple):
    """An op the session turns down: the `error` frame's code and message."""

    code: str
    message: str


class RecoveryBufferFull(Exception):
    """Live events piled up beyond the queue bound while history was replayed."""


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one op costs one token."""

    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclasses.dataclass(slots=True)
class _Subscription:
    opened: int
    last_seq: int = 0
    recovering: bool = True
    buffer: list[StoredEvent] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class _Sent:
    """What a connection was sent on one channel, kept across (re)subscriptions.

    `seq`: the highest seq emitted. `covered_from`: every event in
    `(covered_from, seq]` the client may see was emitted or is known to the
    client as missed (`recovered: false`); below it lie events the
    connection never sent, e.g. those before the automatic inbox
    subscription started.
    """

    seq: int = 0
    covered_from: int = 0


class Session:
    """Everything the gateway knows about one connection, and its rules.

    Not thread-safe; meant to be driven by one connection's tasks on one event
    loop. Methods never block and never do I/O.
    """

    __slots__ = (
        "_bucket",
        "_opened",
        "_sent",
        "_subs",
        "buffer_bound",
        "identity",
        "max_subscriptions",
        "mode",
    )

    def __init__(
        self,
        identity: Identity,
        *,
        max_subscriptions: int = 100,
        op_rate: float = 20.0,
        op_burst: int = 50,
        buffer_bound: int = 1000,
        now: float | None = None,
    ) -> None:
        self.identity = identity
        self.mode: Mode = "foreground"
        self.max_subscriptions = max_subscriptions
        self.buffer_bound = buffer_bound
        self._bucket = TokenBucket(op_rate, op_burst, time.monotonic() if now is None else now)
        self._subs: dict[str, _Subscription] = {}
        # Per channel, what this connection was sent; survives resubscribing.
        # At most one entry per channel the identity may read (a handful: the
        # shared channels and its own inbox).
        self._sent: dict[str, _Sent] = {}
        self._opened = 0

    @property
    def channels(self) -> list[str]:
        return list(self._subs)

    def is_subscribed(self, channel: str) -> bool:
        return channel in self._subs

    def last_seq(self, channel: str) -> int | None:
        sub = self._subs.get(channel)
        return None if sub is None else sub.last_seq

    def sent_seq(self, channel: str) -> int:
        """The highest seq of `channel` emitted on this connection (0 if none)."""
        sent = self._sent.get(channel)
        return 0 if sent is None else sent.seq

    def subscription_token(self, channel: str) -> int | None:
        """Identifies the current subscription to `channel`; changes when it is reopened."""
        sub = self._subs.get(channel)
        return None if sub is None else sub.opened

    def is_recovering(self, channel: str) -> bool:
        sub = self._subs.get(channel)
        return sub is not None and sub.recovering

    def allow_op(self, now: float) -> bool:
        """Take one op from the budget; False means answer `rate_limited` and do nothing."""
        return self._bucket.take(now)

    # -- subscribe ----------------------------------------------------------

    def begin_subscribe(self, channel_name: str) -> str | Refused:
        """Authorize and open (or reopen) a subscription in the recovering state.

        Returns the canonical channel name. From now on live events of the
        channel are buffered until `finish_subscribe`. Subscribing again to a
        channel already subscribed restarts its bookkeeping (used to recover
        with a new `since`) and does not count against the limit.
        """
        code = can_subscribe(self.identity, channel_name)
        if code == UNKNOWN_CHANNEL:
            return Refused(code, f"no such channel: {channel_name[:MAX_CHANNEL_LENGTH]}")
        if code is not None:
            return Refused(code, "you may not subscribe to this channel")
        channel = parse_channel(channel_name)
        assert channel is not None
        if channel not in self._subs and len(self._subs) >= self.max_subscriptions:
            return Refused(RATE_LIMITED, f"at most {self.max_subscriptions} subscriptions")
        self._opened += 1
        self._subs[channel] = _Subscription(self._opened)
        return channel

    def replay(
        self,
        channel: str,
        *,
        latest: int,
        since: int | None,
        history: list[StoredEvent],
        recovered: bool,
        op_id: OpId = None,
        announced: int | None = None,
    ) -> list[Outgoing]:
        """The `subscribed` frame, then the history frames this client may see.

        `history` is what the store returned for `(since, latest]`, in seq
        order; events outside that range or already accounted for are
        ignored, so overlapping or duplicated input is harmless. Events this
        connection was already sent (`sent_seq`) are never replayed: the
        history starts after both `since` and `sent_seq`. An event after
        `since` that this connection never sent but that lies below what it
        did send cannot be sent any more without breaking the order: then
        `recovered` is false and the client refetches. Without `since` no
        history is sent. The channel keeps buffering live events: call
        `finish_subscribe` once these frames are queued. `announced` (at most
        `latest`) is the seq the `subscribed` frame names when it is not
        `latest`: the history events above it then read as live ones.
        """
        sub = self._subs[channel]
        sent = self._sent.setdefault(channel, _Sent())
        frames: list[Outgoing] = []
        if since is not None and since < latest:
            unsendable = [
                event.seq
                for event in history
                if event.channel == channel
                and since < event.seq <= min(sent.covered_from, sent.seq, latest)
                and self._deliverable(event)
            ]
            recovered = recovered and not unsendable
            if since > sent.seq:
                sent.covered_from = since
            elif since < sent.covered_from:
                sent.covered_from = max(unsendable, default=since)
            sub.last_seq = max(since, sent.seq)
            for event in history:
                if event.channel != channel or not sub.last_seq < event.seq <= latest:
                    continue
                item = self._account(sub, event)
                if item is not None:
                    frames.append(item)
        elif latest > sent.seq:
            sent.covered_from = latest  # live from `latest`: what lies before was not sent
        sub.last_seq = max(latest, sent.seq)
        seq = latest if announced is None else min(announced, latest)
        frames.insert(0, control(subscribed_frame(channel, seq, recovered, op_id)))
        return frames

    def finish_subscribe(self, channel: str) -> list[Outgoing]:
        """Turn the channel live; returns the buffered live events still due, in order."""
        sub = self._subs.get(channel)
        if sub is None:
            return []
        frames: list[Outgoing] = []
        for event in sub.buffer:
            item = self._account(sub, event)
            if item is not None:
                frames.append(item)
        sub.buffer.clear()
        sub.recovering = False
        return frames

    def abort_subscribe(self, channel: str) -> None:
        """Forget a subscription whose history could not be read (the client was told)."""
        self._subs.pop(channel, None)

    # -- other ops ----------------------------------------------------------

    def unsubscribe(self, channel_name: str) -> str | Refused:
        """Drop a subscription (idempotent); the canonical name to answer with."""
        channel = parse_channel(channel_name)
        if channel is None:
            return Refused(UNKNOWN_CHANNEL, f"no such channel: {channel_name[:MAX_CHANNEL_LENGTH]}")
        self._subs.pop(channel, None)
        return channel

    def check_read(self, channel_name: str) -> str | Refused:
        """The caller's own inbox channel named by a `read` op, or why not."""
        channel = parse_channel(channel_name)
        if channel is None:
            return Refused(UNKNOWN_CHANNEL, f"no such channel: {channel_name[:MAX_CHANNEL_LENGTH]}")
        owner = channel_user_id(channel)
        if owner is None:
            return Refused(BAD_REQUEST, "only user:<id> channels have a read cursor")
        if owner != self.identity.user_id:
            return Refused(FORBIDDEN, "not your inbox")
        return channel

    def set_mode(self, mode: Mode) -> None:
        """In background only `reviews` and `user:` events are delivered; the rest is skipped.

        Skipped events are not replayed when the client returns to the
        foreground: it resubscribes with `since` to catch up.
        """
        self.mode = mode

    def refresh(self, identity: Identity) -> list[str] | Refused:
        """Adopt a newer identity of the same user (a refreshed token).

        Returns the channels the new identity may no longer read (they are
        unsubscribed); `forbidden` if the token is not the same user's.
        """
        if self.identity.user_id is None or identity.user_id != self.identity.user_id:
            return Refused(FORBIDDEN, "the token must belong to the connected user")
        self.identity = identity
        dropped = [c for c in self._subs if can_subscribe(identity, c) is not None]
        for channel in dropped:
            del self._subs[channel]
        return dropped

    # -- live events ----------------------------------------------------------

    def offer(self, event: StoredEvent) -> Outgoing | None:
        """A live event of a channel: the frame to queue, or None.

        None when the client is not subscribed, the event was already
        accounted for (seq not above `last_seq`), the client may not see it
        (audience) or does not want it now (background mode), or the channel
        is recovering (then it is buffered). Raises `RecoveryBufferFull` when
        the recovery buffer passes the queue bound.
        """
        sub = self._subs.get(event.channel)
        if sub is None:
            return None
        if sub.recovering:
            if len(sub.buffer) >= self.buffer_bound:
                raise RecoveryBufferFull(event.channel)
            sub.buffer.append(event)
            return None
        return self._account(sub, event)

    def _account(self, sub: _Subscription, event: StoredEvent) -> Outgoing | None:
        """Account for one event of a subscription: its frame if it is due and wanted.

        The one place an event frame is emitted: only above both the
        subscription's `last_seq` and the connection's `sent_seq`, which then
        move up to it.
        """
        seq = event.seq
        sent = self._sent.get(event.channel)
        if seq <= sub.last_seq or (sent is not None and seq <= sent.seq):
            return None
        sub.last_seq = seq
        if not self._deliverable(event):
            return None
        if sent is None:
            sent = self._sent[event.channel] = _Sent()
        sent.seq = seq
        return event.outgoing()

    def _deliverable(self, event: StoredEvent) -> bool:
        if not may_receive(self.identity, event.audience):
            return False
        return self.mode == "foreground" or is_priority(event.channel)
