"""The gateway's websocket protocol (SPEC §9) for one connection, without I/O.

`ConnectionProtocol` is the one object that decides what a connection does,
in the manner of python-websockets' sans-I/O core: every input — a client
message, the result of an I/O step it asked for, a timer it set — goes in
through a method, and what to do comes out as a list of *actions* (actions.py).
The I/O layer (server.py) performs the actions in order and hands back their
results; it never builds an answer frame nor decides who sees what. Nothing
here blocks, awaits, reads a clock or touches a socket, so a unit test drives
a whole connection with plain calls.

Inputs and what they return:

- `start()` once the handshake is done; `greeted(latest, unread)` or
  `greet_failed()` after the `ReadInbox` it asks for;
- `receive(message, now)` for every client message, `op_done()` once its
  actions are performed (the inbox hold waits for it);
- `history_read(...)`/`history_unavailable(...)` after `ReadHistory`,
  `go_live(channel)` when `GoLive` comes up, `presence_opened(...)` or
  `presence_unavailable(...)` after `OpenPresence`;
- `timer_due(timer, wall)` when a `Schedule`d timer fires;
- live channel events: `session.offer(event)` (the fan-out hot path, one call
  per connection per event: the frame to queue, or None).

The frames themselves live in frames.py, the per-connection state and the
recovery bookkeeping in session.py; both are re-exported here, the
protocol's public face.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from community_shared.auth import Identity, InvalidToken
from community_shared.channelstreams import user_channel

from community_gateway.actions import (
    Action,
    Close,
    CountOp,
    GoLive,
    InboxHold,
    Listen,
    ModeChanged,
    OpenPresence,
    ReadHistory,
    ReadInbox,
    Schedule,
    Send,
    StoreCursor,
    StoreVisibility,
    Timer,
    TokenExpiry,
    Unlisten,
)
from community_gateway.channels import FORBIDDEN, PRESENCE
from community_gateway.config import GatewayConfig
from community_gateway.frames import (
    BAD_REQUEST,
    MAX_CHANNEL_LENGTH,
    MAX_ID_LENGTH,
    MAX_SEQ,
    MAX_TOKEN_LENGTH,
    RATE_LIMITED,
    TOO_LARGE,
    UNAVAILABLE,
    BadFrame,
    ClientOp,
    Mode,
    OpId,
    Ping,
    Read,
    Refresh,
    SetMode,
    SetVisibility,
    StoredEvent,
    Subscribe,
    Unsubscribe,
    control,
    decode_client_frame,
    error_frame,
    hello_frame,
    ok_frame,
    pong_frame,
    subscribed_frame,
    unsubscribed_frame,
)
from community_gateway.session import (
    RecoveryBufferFull,
    Refused,
    Session,
    TokenBucket,
    history_reaches_back,
)

__all__ = [
    "BAD_REQUEST",
    "MAX_CHANNEL_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_SEQ",
    "MAX_TOKEN_LENGTH",
    "RATE_LIMITED",
    "TOO_LARGE",
    "UNAVAILABLE",
    "BadFrame",
    "ClientOp",
    "Mode",
    "OpId",
    "Ping",
    "Read",
    "RecoveryBufferFull",
    "Refresh",
    "Refused",
    "Session",
    "SetMode",
    "SetVisibility",
    "StoredEvent",
    "Subscribe",
    "TokenBucket",
    "Unsubscribe",
    "control",
    "decode_client_frame",
    "error_frame",
    "hello_frame",
    "history_reaches_back",
    "ok_frame",
    "pong_frame",
    "subscribed_frame",
    "unsubscribed_frame",
]

CLOSE_TOO_SLOW: Final = 4008
CLOSE_TOKEN_EXPIRED: Final = 4401
CLOSE_RESTART: Final = 1012
CLOSE_TRY_AGAIN: Final = 1013

_OP_NAMES: Final[dict[type, str]] = {
    Subscribe: "subscribe",
    Unsubscribe: "unsubscribe",
    Refresh: "refresh",
    Read: "read",
    SetMode: "mode",
    SetVisibility: "visibility",
    Ping: "ping",
}


def op_name(op: ClientOp | BadFrame) -> str:
    """The op's name as the metrics label it (`invalid` for a `BadFrame`)."""
    return _OP_NAMES.get(type(op), "invalid")


def cursor_to_store(seq: int, latest: int) -> int:
    """The inbox read cursor a `read` op stores: never beyond the inbox's newest event,
    which would hide events still to come."""
    return min(seq, latest)


def _send(payload: bytes) -> Send:
    return Send((control(payload),))


def _refusal(refused: Refused | BadFrame, op_id: OpId, channel: str | None = None) -> Send:
    return _send(error_frame(refused.code, refused.message, op_id, channel))


# --------------------------------------------------------------------------- the protocol


class ConnectionProtocol:
    """What one connection does, from its handshake to its close; see the module docstring.

    `decode_token` checks a `refresh` op's token (the one JWT check,
    `community_shared.auth.decode_token` with the secret bound). Not
    thread-safe; driven by one connection's tasks on one event loop.
    """

    __slots__ = (
        "_decode_token",
        "_deferred",
        "_handling",
        "_hello_latest",
        "_inbox_hold_seconds",
        "session",
    )

    def __init__(
        self,
        identity: Identity,
        config: GatewayConfig,
        decode_token: Callable[[str], Identity],
        *,
        now: float | None = None,
    ) -> None:
        self.session = Session(
            identity,
            max_subscriptions=config.max_subscriptions,
            op_rate=config.op_rate,
            op_burst=config.op_burst,
            buffer_bound=config.queue_bound,
            now=now,
        )
        self._inbox_hold_seconds = config.inbox_hold_seconds
        self._decode_token = decode_token
        self._handling = False
        self._deferred: InboxHold | None = None
        # The inbox seq `hello`'s unread count covers, until the inbox's first history.
        self._hello_latest: int | None = None

    @property
    def identity(self) -> Identity:
        return self.session.identity

    # -- greeting -----------------------------------------------------------

    def start(self) -> list[Action]:
        """The handshake is done: a guest gets `hello`; a user first gets their inbox."""
        actions: list[Action] = []
        identity = self.session.identity
        if identity.exp is not None:
            actions.append(Schedule(TokenExpiry(identity.exp)))
        if identity.user_id is None:
            actions.append(self._hello(0))
            return actions
        channel = user_channel(identity.user_id)
        opened = self.session.begin_subscribe(channel)
        assert opened == channel
        actions += [Listen(channel), ReadInbox(identity.user_id, channel)]
        return actions

    def greeted(self, latest: int, unread: int) -> list[Action]:
        """`hello`; the inbox's live events are held until the first op is handled or
        `inbox_hold_seconds` pass.

        A reconnecting client's `subscribe user:… since` comes right after
        `hello`, and an inbox event sent before it would leave the events
        between its `since` and `hello` unsendable (seqs only go up on a
        connection).
        """
        session = self.session
        user_id = session.identity.user_id
        assert user_id is not None
        channel = user_channel(user_id)
        session.replay(channel, latest=latest, since=None, history=[], recovered=False)
        self._hello_latest = latest
        hold = InboxHold(channel, session.subscription_token(channel))
        self._deferred = hold
        return [self._hello(unread), Schedule(hold, self._inbox_hold_seconds)]

    def greet_failed(self) -> list[Action]:
        return [Close(CLOSE_TRY_AGAIN, "history unavailable; try again")]

    def _hello(self, unread: int) -> Send:
        session = self.session
        return _send(hello_frame(session.identity, session.channels, unread))

    # -- client ops -----------------------------------------------------------

    def receive(self, message: str | bytes, now: float) -> list[Action]:
        """One client message (`now`: a monotonic clock, for the op budget)."""
        self._handling = True
        session = self.session
        op = decode_client_frame(message)
        name = op_name(op)
        if not session.allow_op(now):
            return [
                CountOp(name, RATE_LIMITED),
                _send(error_frame(RATE_LIMITED, "too many ops; slow down", op.id)),
            ]
        if isinstance(op, BadFrame):
            return [CountOp(name, op.code), _refusal(op, op.id)]
        return [CountOp(name, "ok"), *self._answer(op)]

    def _answer(self, op: ClientOp) -> list[Action]:
        session = self.session
        match op:
            case Ping():
                return [_send(pong_frame(op.id))]
            case SetMode():
                was = session.mode
                session.set_mode(op.mode)
                changed: list[Action] = []
                if op.mode != was:
                    changed.append(ModeChanged(session.identity, op.mode == "foreground"))
                return [*changed, _send(ok_frame(op.id))]
            case Subscribe():
                return self._subscribe(op)
            case Unsubscribe():
                result = session.unsubscribe(op.channel)
                if isinstance(result, Refused):
                    return [_refusal(result, op.id, op.channel)]
                return [Unlisten(result), _send(unsubscribed_frame(result, op.id))]
            case Refresh():
                return self._refresh(op)
            case Read():
                checked = session.check_read(op.channel)
                if isinstance(checked, Refused):
                    return [_refusal(checked, op.id, op.channel)]
                user_id = session.identity.user_id
                assert user_id is not None
                return [
                    StoreCursor(
                        user_id,
                        checked,
                        op.seq,
                        done=control(ok_frame(op.id)),
                        failed=control(
                            error_frame(UNAVAILABLE, "cannot store the cursor; retry", op.id)
                        ),
                    )
                ]
            case SetVisibility():
                identity = session.identity
                if identity.user_id is None:
                    refusal = error_frame(FORBIDDEN, "guests have no presence to hide", op.id)
                    return [_send(refusal)]
                return [
                    StoreVisibility(
                        identity,
                        op.visible,
                        done=control(ok_frame(op.id)),
                        failed=control(
                            error_frame(UNAVAILABLE, "cannot store visibility; retry", op.id)
                        ),
                    )
                ]

    def op_done(self) -> list[Action]:
        """The actions of the last message are performed; a held inbox release runs next."""
        self._handling = False
        deferred, self._deferred = self._deferred, None
        return [] if deferred is None else [Schedule(deferred)]

    def _subscribe(self, op: Subscribe) -> list[Action]:
        opened = self.session.begin_subscribe(op.channel)
        if isinstance(opened, Refused):
            return [_refusal(opened, op.id, op.channel)]
        if opened == PRESENCE:
            return [OpenPresence(op.id)]
        return [Listen(opened), ReadHistory(opened, op.since, op.id)]

    def history_read(
        self,
        op: ReadHistory,
        *,
        latest: int,
        history: list[StoredEvent],
        recovered: bool,
    ) -> list[Action]:
        """`subscribed` and the history (paced), then the live events buffered meanwhile.

        The first history of the user's own inbox is announced at the seq
        `hello`'s unread count covers, not at `latest`: the inbox events that
        came after `hello` then follow `subscribed` as the live ones do, and a
        client counts them as unread on top of `hello.unread` (SPEC §9 and
        §13: the unread count and the history agree even for an event
        routed between the two reads).
        """
        announced = self._announced(op, latest)
        frames = self.session.replay(
            op.channel,
            latest=latest,
            since=op.since,
            history=history,
            recovered=recovered,
            op_id=op.op_id,
            announced=announced,
        )
        return [Send(frames, paced=True), GoLive(op.channel)]

    def _announced(self, op: ReadHistory, latest: int) -> int:
        """The seq of `subscribed` for this history: `latest`, or for the inbox's first
        history after `hello` the inbox seq `hello` covered (when `since` is below it)."""
        hello_latest = self._hello_latest
        user_id = self.session.identity.user_id
        if hello_latest is None or user_id is None or op.channel != user_channel(user_id):
            return latest
        self._hello_latest = None
        if op.since is None or op.since > hello_latest:
            return latest
        return min(latest, hello_latest)

    def history_unavailable(self, op: ReadHistory) -> list[Action]:
        self.session.abort_subscribe(op.channel)
        return [
            Unlisten(op.channel),
            _send(error_frame(UNAVAILABLE, "history unavailable; retry", op.op_id, op.channel)),
        ]

    def go_live(self, channel: str) -> list[Action]:
        return [Send(self.session.finish_subscribe(channel))]

    def presence_opened(self, op: OpenPresence) -> list[Action]:
        """`subscribed` (seq 0: presence has no history; `since` is ignored); the I/O layer
        then sends the presence snapshot and, from then on, the presence frames."""
        session = self.session
        frames = session.replay(
            PRESENCE, latest=0, since=None, history=[], recovered=False, op_id=op.op_id
        )
        session.finish_subscribe(PRESENCE)
        return [Send(frames)]

    def presence_unavailable(self, op: OpenPresence) -> list[Action]:
        self.session.abort_subscribe(PRESENCE)
        return [_send(error_frame(UNAVAILABLE, "presence unavailable; retry", op.op_id))]

    def _refresh(self, op: Refresh) -> list[Action]:
        try:
            identity = self._decode_token(op.token)
        except InvalidToken as exc:
            return [_send(error_frame(BAD_REQUEST, f"invalid token: {exc}", op.id))]
        result = self.session.refresh(identity)
        if isinstance(result, Refused):
            return [_refusal(result, op.id)]
        actions: list[Action] = [Unlisten(channel) for channel in result]
        if identity.exp is not None:
            actions.append(Schedule(TokenExpiry(identity.exp)))
        actions.append(_send(ok_frame(op.id)))
        actions.extend(_send(unsubscribed_frame(channel)) for channel in result)
        return actions

    # -- timers ---------------------------------------------------------------

    def timer_due(self, timer: Timer, wall: float) -> list[Action]:
        """A scheduled timer fired (`wall`: the wall clock, for token expiry)."""
        if isinstance(timer, TokenExpiry):
            exp = self.session.identity.exp
            if exp is None:
                return []
            if exp - wall <= 0:
                return [Close(CLOSE_TOKEN_EXPIRED, "token expired")]
            return [Schedule(TokenExpiry(exp))]
        return self._release_inbox(timer)

    def _release_inbox(self, hold: InboxHold) -> list[Action]:
        """Turn the automatic inbox subscription live, unless the client resubscribed meanwhile.

        Not while an op is being handled: the client's `subscribe user:…` may
        be the next op, already received (a client sends its subscriptions
        back to back, and the first one can take a while on a busy server).
        """
        session = self.session
        if session.subscription_token(hold.channel) != hold.token or not session.is_recovering(
            hold.channel
        ):
            return []
        if self._handling:
            self._deferred = hold
            return []
        return [Send(session.finish_subscribe(hold.channel))]
