"""The gateway's declared contract (`community_gateway.contract`) against what it really does.

The generated client types and docs/asyncapi.yaml come from the declaration, so
it must match the code: every channel event `route` makes from a sample of
every routed domain event is declared with that payload type (no field more,
none less), every declared one is made, every frame the protocol builds is a
`ServerFrame` and every op it accepts a `ClientFrame`.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from community_gateway import contract, protocol
from community_gateway.channels import ROUTED_TYPES, route
from community_gateway.presence_rules import Member, presence_frame
from community_gateway.protocol import BadFrame, decode_client_frame
from community_shared.auth import Identity
from community_shared.events import make_event

from infra.codegen.schemas import channel_events, domain_events

SPEC_OPS = ("subscribe", "unsubscribe", "refresh", "read", "mode", "visibility", "ping")


def sample(info: mi.Type, counter: list[int]) -> Any:
    """A value of the type with every optional part present (a fresh UUID each time)."""
    counter[0] += 1
    if isinstance(info, mi.UnionType):
        present = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return sample(present[0], counter)
    if isinstance(info, mi.StructType):
        return {f.encode_name: sample(f.type, counter) for f in info.fields}
    if isinstance(info, mi.UUIDType):
        return str(uuid.uuid4())
    if isinstance(info, mi.DateTimeType):
        return "2026-01-02T03:04:05Z"  # as msgspec writes a UTC time
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    if isinstance(info, mi.BoolType):
        return True
    if isinstance(info, mi.IntType):
        return counter[0]
    if isinstance(info, mi.FloatType):
        return 4.5
    if isinstance(info, mi.StrType):
        return f"text {counter[0]}"
    if isinstance(info, mi.ListType):
        return [sample(info.item_type, counter)]
    if isinstance(info, mi.DictType):
        return {"key": sample(info.value_type, counter)}
    raise TypeError(f"no sample for {info}")


def _routed() -> list[tuple[str, dict[str, Any], contract.Payload, str | None]]:
    """(channel kind, event type, data, source subject) of every routed sample."""
    payloads = {event.subject: event.payload for event in domain_events()}
    out = []
    for subject in sorted(ROUTED_TYPES):
        data = sample(mi.type_info(payloads[subject]), [0])
        envelope = make_event(subject, data, source="test", actor_id=uuid.uuid4())
        for event in route(envelope):
            kind = contract.channel_kind(event.channel)
            out.append((kind, event.type, dict(event.data), subject))
    return out


def test_every_routed_subject_has_a_payload_type() -> None:
    catalogued = {event.subject for event in domain_events()}
    assert catalogued >= ROUTED_TYPES, sorted(ROUTED_TYPES - catalogued)


def test_every_channel_event_is_declared_with_its_exact_payload() -> None:
    declared = {(spec.kind, spec.type): spec for spec in channel_events()}
    for kind, type_, data, subject in _routed():
        spec = declared.get((kind, type_))
        assert spec is not None, f"{subject} makes {kind} {type_}: declare it in CHANNEL_EVENTS"
        wire = msgspec.json.decode(msgspec.json.encode(data))
        typed = msgspec.json.decode(msgspec.json.encode(data), type=spec.payload)
        assert msgspec.json.decode(msgspec.json.encode(typed)) == wire, (kind, type_)
        if spec.subject is not None:
            assert spec.subject == subject, f"{kind} {type_} passes on {subject}'s data"


def test_every_declared_channel_event_is_made_by_some_domain_event() -> None:
    made = {(kind, type_) for kind, type_, _, _ in _routed()}
    declared = {(spec.kind, spec.type) for spec in channel_events()}
    assert declared - made == set()


def test_a_renamed_field_is_caught() -> None:
    """The check above really compares field names (a guard against a vacuous test)."""
    data = {"post_id": str(uuid.uuid4()), "like_count": 3}
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode(data), type=contract.LikesCount)


# --------------------------------------------------------------------------- frames


def _decode_server(frame: bytes) -> contract.ServerFrame:
    decoded: contract.ServerFrame = msgspec.json.decode(frame, type=contract.ServerFrame)
    assert msgspec.json.decode(msgspec.json.encode(decoded)) == msgspec.json.decode(frame)
    return decoded


def test_every_frame_the_protocol_builds_is_a_server_frame() -> None:
    user = Identity(user_id=uuid.uuid4(), role="student", name="Ada", member=True)
    guest = Identity(user_id=None, role="guest", name="Guest", member=False)
    frames = [
        protocol.hello_frame(user, ["user:x"], 3),
        protocol.hello_frame(guest, [], 0),
        protocol.subscribed_frame("feed", 12, True, "a"),
        protocol.subscribed_frame("feed", 0, False),
        protocol.unsubscribed_frame("feed", 7),
        protocol.ok_frame("r"),
        protocol.ok_frame(),
        protocol.pong_frame(9),
        protocol.error_frame(protocol.BAD_REQUEST, "no", "x"),
        protocol.error_frame(protocol.UNAVAILABLE, "later", None, "feed"),
        protocol.error_frame(protocol.RATE_LIMITED, "slow down"),
        protocol.error_frame(protocol.TOO_LARGE, "too big"),
        protocol.error_frame("forbidden", "no"),
        protocol.error_frame("unknown_channel", "no"),
        protocol.StoredEvent(
            "feed", 5, "post.liked", msgspec.Raw(b'{"post_id":"x","likes_count":1}'), "t"
        )
        .outgoing()
        .payload,
        presence_frame(3, 1, members=[Member(str(uuid.uuid4()), "Ada", "student")]),
        presence_frame(
            2,
            0,
            joined=[Member(str(uuid.uuid4()), "Ada", "instructor")],
            left=[Member(str(uuid.uuid4()), "Bo", "admin")],
        ),
        presence_frame(2, 5),
    ]
    for frame in frames:
        _decode_server(frame)


def test_every_declared_op_is_accepted_and_every_accepted_op_is_declared() -> None:
    declared = {}
    for op_type in contract.ClientFrame.__args__:
        tag = op_type.__struct_config__.tag
        fields = {f.encode_name: f for f in mi.type_info(op_type).fields if f.required}
        values = {
            "channel": "feed",
            "seq": 3,
            "token": "t",
            "mode": "background",
            "visible": False,
        }
        frame = msgspec.json.encode(
            op_type(**{name: values[name] for name in fields}, id="op-1")  # type: ignore[arg-type]
        )
        assert not isinstance(decode_client_frame(frame.decode()), BadFrame), tag
        declared[tag] = op_type
    for op in SPEC_OPS:
        answer = decode_client_frame(msgspec.json.encode({"op": op}).decode())
        unknown = isinstance(answer, BadFrame) and answer.message.startswith("unknown op")
        assert unknown or op in declared, f"the protocol accepts {op!r}: declare it in contract"
