"""Every domain event type of the services is tied to its channel route.

The routing table (`channels.route`) reads each envelope's `data` through a
view (`community_gateway.payloads`); the services' payload types are the
events catalogue (each service's `events.CATALOGUE`). These tests hold the
two together, field by field, so that renaming or retyping a field the
gateway reads fails here, not in an end-to-end test.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from community_gateway.channels import ROUTE_VIEWS, ROUTED_TYPES, UNROUTED_TYPES, route
from community_gateway.payloads import LikedView
from community_shared.catalogue import catalogues
from community_shared.events import make_event

from tests.unit.test_gateway_contract import sample


def _catalogue() -> dict[str, type[msgspec.Struct]]:
    return {subject: payload for _, _, cat in catalogues() for subject, payload in cat.items()}


CATALOGUE = _catalogue()


def _accepts_none(info: mi.Type) -> bool:
    if isinstance(info, mi.AnyType | mi.NoneType):
        return True
    return isinstance(info, mi.UnionType) and any(_accepts_none(t) for t in info.types)


def _struct(info: mi.Type) -> mi.StructType | None:
    """The Struct a field holds (also when it is nullable), else None."""
    if isinstance(info, mi.StructType):
        return info
    if isinstance(info, mi.UnionType):
        structs = [t for t in info.types if isinstance(t, mi.StructType)]
        return structs[0] if len(structs) == 1 else None
    return None


def mismatches(view: type[Any], payload: type[Any]) -> list[str]:
    """Where the view reads what the payload type does not guarantee (empty: they fit)."""
    return _mismatches(mi.type_info(view), mi.type_info(payload), "")


def _mismatches(view: mi.Type, payload: mi.Type, path: str) -> list[str]:
    assert isinstance(view, mi.StructType)
    assert isinstance(payload, mi.StructType), f"{path or 'data'} is not an object"
    fields = {field.encode_name: field for field in payload.fields}
    problems = []
    for field in view.fields:
        name = path + field.encode_name
        theirs = fields.get(field.encode_name)
        if theirs is None:
            problems.append(f"{name}: read by the gateway, absent from the payload type")
            continue
        if field.required and not theirs.required:
            problems.append(f"{name}: required by the gateway, optional in the payload type")
        if _accepts_none(theirs.type) and not _accepts_none(field.type):
            problems.append(f"{name}: may be null in the payload, not in the gateway's view")
        inner = _struct(field.type)
        if inner is not None:
            payload_inner = _struct(theirs.type)
            if payload_inner is None:
                problems.append(f"{name}: an object for the gateway, not in the payload type")
            else:
                problems += _mismatches(inner, payload_inner, f"{name}.")
    return problems


def test_every_catalogued_event_type_is_routed_or_deliberately_not() -> None:
    assert not ROUTED_TYPES & UNROUTED_TYPES
    assert sorted(set(CATALOGUE) - ROUTED_TYPES - UNROUTED_TYPES) == [], (
        "route it (channels._ROUTES) or name it in channels.UNROUTED_TYPES"
    )
    assert sorted((ROUTED_TYPES | UNROUTED_TYPES) - set(CATALOGUE)) == [], (
        "the gateway routes an event type no service catalogues"
    )
    assert set(ROUTE_VIEWS) == ROUTED_TYPES


@pytest.mark.parametrize("subject", sorted(ROUTED_TYPES))
def test_the_route_reads_only_what_the_payload_type_guarantees(subject: str) -> None:
    assert mismatches(ROUTE_VIEWS[subject], CATALOGUE[subject]) == []


@pytest.mark.parametrize("subject", sorted(ROUTED_TYPES))
def test_a_payload_the_service_writes_is_routed(subject: str) -> None:
    """A value of the service's own type (every optional part present) routes to a channel."""
    payload = CATALOGUE[subject]
    data = msgspec.convert(sample(mi.type_info(payload), [0]), payload)  # the service's Struct
    envelope = make_event(subject, data, source=subject.split(".")[0], actor_id=uuid.uuid4())
    events = route(envelope)
    assert events, f"{subject} reaches no channel"


def test_a_renamed_field_fails_the_tie() -> None:
    """The checks above compare field names and nullability (a guard against a vacuous test)."""

    class RenamedLike(msgspec.Struct, kw_only=True):
        post_id: uuid.UUID
        likes_count: int
        visibility: str
        author_of_post: uuid.UUID  # was post_author_id
        user_id: uuid.UUID
        user_name: str

    class NullableAuthor(msgspec.Struct, kw_only=True):
        post_id: uuid.UUID
        likes_count: int
        visibility: str
        post_author_id: uuid.UUID | None
        user_id: uuid.UUID
        user_name: str

    assert mismatches(LikedView, RenamedLike) == [
        "post_author_id: read by the gateway, absent from the payload type"
    ]
    assert mismatches(LikedView, NullableAuthor) == [
        "post_author_id: may be null in the payload, not in the gateway's view"
    ]
