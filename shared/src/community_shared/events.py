"""The event envelope of SPEC §8, the same for every publisher and consumer.

`data` is kept as raw JSON on the way in (`Envelope.data` is `msgspec.Raw`) so
that a consumer decodes only the payload type it expects, and publishers pass
their own msgspec Struct.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypeVar

import msgspec


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    type: str
    source: str
    occurred_at: dt.datetime
    actor_id: uuid.UUID | None
    data: msgspec.Raw


T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_event(
    type: str,
    data: Any,
    *,
    source: str,
    actor_id: uuid.UUID | None,
    event_id: uuid.UUID | None = None,
    occurred_at: dt.datetime | None = None,
) -> Envelope:
    """Build an envelope; `data` is any msgspec-encodable value (usually a Struct)."""
    return Envelope(
        id=event_id or uuid.uuid4(),
        type=type,
        source=source,
        occurred_at=occurred_at or utcnow(),
        actor_id=actor_id,
        data=msgspec.Raw(_encoder.encode(data)),
    )


def encode_envelope(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(payload: bytes) -> Envelope:
    """Decode an envelope; raises `msgspec.DecodeError`/`ValidationError` on bad input."""
    return _decoder.decode(payload)


def decode_data(envelope: Envelope, type_: type[T]) -> T:
    return msgspec.json.decode(envelope.data, type=type_)
