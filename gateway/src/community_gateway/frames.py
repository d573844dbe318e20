"""The frames of SPEC §9 as plain code: client messages in, server text frames out. No I/O.

- `decode_client_frame` turns one client message into an op or a `BadFrame`
  (always answerable: the connection stays open).
- The `*_frame` builders produce the server's JSON text frames.
- `StoredEvent` is one channel event with its `event` frame encoded once for
  every connection it goes to.

`contract.py` declares the same frames as msgspec types (for the generated
client types and docs); unit tests hold the two together.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Final, Literal

import msgspec
from community_shared.auth import Identity
from community_shared.channelstreams import decode_channel_message
from community_shared.jsonin import NestingTooDeep, decode_json

from community_gateway.channels import is_sheddable
from community_gateway.config import SOFT_FRAME_BYTES
from community_gateway.sendqueue import Outgoing

BAD_REQUEST: Final = "bad_request"
RATE_LIMITED: Final = "rate_limited"
TOO_LARGE: Final = "too_large"
UNAVAILABLE: Final = "unavailable"
"""Not in SPEC's list: the gateway cannot reach its history store right now; retry later."""

MAX_SEQ: Final = 2**63 - 1
MAX_ID_LENGTH: Final = 128
MAX_CHANNEL_LENGTH: Final = 100
MAX_TOKEN_LENGTH: Final = 8192

Mode = Literal["foreground", "background"]
OpId = str | int | None

# --------------------------------------------------------------------------- client frames


@dataclasses.dataclass(frozen=True, slots=True)
class Subscribe:
    channel: str
    since: int | None = None
    id: OpId = None


@dataclasses.dataclass(frozen=True, slots=True)
class Unsubscribe:
    channel: str
    id: OpId = None


@dataclasses.dataclass(frozen=True, slots=True)
class Refresh:
    token: str
    id: OpId = None


@dataclasses.dataclass(frozen=True, slots=True)
class Read:
    channel: str
    seq: int
    id: OpId = None


@dataclasses.dataclass(frozen=True, slots=True)
class SetMode:
    mode: Mode
    id: OpId = None


@dataclasses.dataclass(frozen=True, slots=True)
class SetVisibility:
    """Appear offline (`visible` false) or online again, everywhere (presence)."""

    visible: bool
    id: OpId = None


@dataclasses.dataclass(frozen=True, slots=True)
class Ping:
    id: OpId = None


ClientOp = Subscribe | Unsubscribe | Refresh | Read | SetMode | SetVisibility | Ping


@dataclasses.dataclass(frozen=True, slots=True)
class BadFrame:
    """A client frame the server answers with `error` (the connection stays open)."""

    code: str
    message: str
    id: OpId = None


class _Invalid(Exception):
    pass


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seq(frame: dict[str, Any], name: str, *, required: bool) -> int | None:
    if name not in frame or (frame[name] is None and not required):
        if required:
            raise _Invalid(f"'{name}' is required")
        return None
    value = frame[name]
    if not _is_int(value) or not 0 <= value <= MAX_SEQ:
        raise _Invalid(f"'{name}' must be a non-negative integer")
    return int(value)


def _string(frame: dict[str, Any], name: str, max_length: int) -> str:
    value = frame.get(name)
    if not isinstance(value, str) or not value:
        raise _Invalid(f"'{name}' must be a non-empty string")
    if len(value) > max_length:
        raise _Invalid(f"'{name}' is longer than {max_length} characters")
    return value


def _op_id(frame: dict[str, Any]) -> OpId:
    value = frame.get("id")
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH:
        return value
    if _is_int(value) and -(2**53) <= value <= 2**53:
        return int(value)
    raise _Invalid(f"'id' must be a string (at most {MAX_ID_LENGTH} characters) or an integer")


def decode_client_frame(message: str | bytes) -> ClientOp | BadFrame:
    """Parse one client message.

    Guarantees: never raises; anything that is not a JSON text object with a
    known `op` and well-typed fields is a `BadFrame` (`bad_request`, or
    `too_large` above 16 KiB, which no valid op needs); JSON nested deeper
    than `jsonin.MAX_DEPTH` is not valid JSON here, as in any HTTP body. A valid `id` is
    echoed in the `BadFrame` when the rest of the frame is wrong. Fields an op
    does not know are ignored. It does not check that a channel exists or
    that the caller may use it (see `Session`).
    """
    if isinstance(message, bytes | bytearray | memoryview):
        return BadFrame(BAD_REQUEST, "frames must be JSON text, not binary")
    too_large = len(message) > SOFT_FRAME_BYTES // 4 and len(message.encode()) > SOFT_FRAME_BYTES
    problem = "frame is not valid JSON"
    try:
        frame = decode_json(message)
    except NestingTooDeep as exc:
        frame, problem = None, f"frame is not valid JSON: {exc}"
    except msgspec.DecodeError:
        frame = None
    if too_large:
        # Still echo the id when there is a readable one.
        op_id = None
        if isinstance(frame, dict):
            with contextlib.suppress(_Invalid):
                op_id = _op_id(frame)
        return BadFrame(TOO_LARGE, f"frames may not exceed {SOFT_FRAME_BYTES} bytes", op_id)
    if frame is None:
        return BadFrame(BAD_REQUEST, problem)
    if not isinstance(frame, dict):
        return BadFrame(BAD_REQUEST, "frame must be a JSON object")
    try:
        op_id = _op_id(frame)
    except _Invalid as exc:
        return BadFrame(BAD_REQUEST, str(exc))
    op = frame.get("op")
    try:
        if op == "subscribe":
            channel = _string(frame, "channel", MAX_CHANNEL_LENGTH)
            return Subscribe(channel, _seq(frame, "since", required=False), op_id)
        if op == "unsubscribe":
            return Unsubscribe(_string(frame, "channel", MAX_CHANNEL_LENGTH), op_id)
        if op == "refresh":
            return Refresh(_string(frame, "token", MAX_TOKEN_LENGTH), op_id)
        if op == "read":
            channel = _string(frame, "channel", MAX_CHANNEL_LENGTH)
            seq = _seq(frame, "seq", required=True)
            assert seq is not None
            return Read(channel, seq, op_id)
        if op == "mode":
            mode = frame.get("mode")
            if mode == "foreground" or mode == "background":
                return SetMode(mode, op_id)
            raise _Invalid("'mode' must be 'foreground' or 'background'")
        if op == "visibility":
            visible = frame.get("visible")
            if isinstance(visible, bool):
                return SetVisibility(visible, op_id)
            raise _Invalid("'visible' must be true or false")
        if op == "ping":
            return Ping(op_id)
    except _Invalid as exc:
        return BadFrame(BAD_REQUEST, str(exc), op_id)
    if not isinstance(op, str):
        return BadFrame(BAD_REQUEST, "'op' must be a string", op_id)
    return BadFrame(BAD_REQUEST, f"unknown op {op[:40]!r}", op_id)


# --------------------------------------------------------------------------- server frames

_encoder = msgspec.json.Encoder()


def _encode(frame: dict[str, Any]) -> bytes:
    return _encoder.encode(frame)


def _with_id(frame: dict[str, Any], op_id: OpId) -> dict[str, Any]:
    if op_id is not None:
        frame["id"] = op_id
    return frame


def hello_frame(identity: Identity, channels: list[str], unread: int) -> bytes:
    return _encode(
        {
            "op": "hello",
            "user_id": None if identity.user_id is None else str(identity.user_id),
            "role": identity.role,
            "channels": channels,
            "unread": unread,
        }
    )


def subscribed_frame(channel: str, seq: int, recovered: bool, op_id: OpId = None) -> bytes:
    frame = {"op": "subscribed", "channel": channel, "seq": seq, "recovered": recovered}
    return _encode(_with_id(frame, op_id))


def unsubscribed_frame(channel: str, op_id: OpId = None) -> bytes:
    return _encode(_with_id({"op": "unsubscribed", "channel": channel}, op_id))


def ok_frame(op_id: OpId = None) -> bytes:
    return _encode(_with_id({"op": "ok"}, op_id))


def pong_frame(op_id: OpId = None) -> bytes:
    return _encode(_with_id({"op": "pong"}, op_id))


def error_frame(code: str, message: str, op_id: OpId = None, channel: str | None = None) -> bytes:
    frame: dict[str, Any] = {"op": "error", "code": code, "message": message}
    if channel is not None:
        frame["channel"] = channel
    return _encode(_with_id(frame, op_id))


def control(payload: bytes) -> Outgoing:
    """A frame that is never merged or shed (answers to ops, hello)."""
    return Outgoing(payload)


@dataclasses.dataclass(slots=True, eq=False)
class StoredEvent:
    """One event of a channel's history (live or replayed), with its frame encoded once.

    The same object is offered to every connection subscribed to the channel,
    so the JSON text of the `event` frame is built at most once per instance.
    """

    channel: str
    seq: int
    type: str
    data: msgspec.Raw
    ts: str
    audience: str = "public"
    coalesce_key: str | None = None
    _outgoing: Outgoing | None = None

    @classmethod
    def decode(cls, channel: str, seq: int, payload: bytes) -> StoredEvent:
        """Raises `msgspec.DecodeError` (a ValueError) for a body that is no channel message."""
        message = decode_channel_message(payload)
        return cls(
            channel, seq, message.type, message.data, message.ts, message.audience, message.key
        )

    def outgoing(self) -> Outgoing:
        if self._outgoing is None:
            frame = {
                "op": "event",
                "channel": self.channel,
                "seq": self.seq,
                "type": self.type,
                "data": self.data,
                "ts": self.ts,
            }
            self._outgoing = Outgoing(
                _encode(frame), self.coalesce_key, sheddable=is_sheddable(self.channel)
            )
        return self._outgoing
