"""The contract's types gathered in one place, and their JSON schemas under stable names.

Domain events: each service's `events.CATALOGUE` (subject → payload Struct).
Channel events: the gateway's `contract.CHANNEL_EVENTS`, whose pass-through
entries name a domain subject and resolve here to that subject's payload type.
Frames: the gateway's `contract.ClientFrame` and `contract.ServerFrame`.

`components` turns a set of types into JSON schemas with msgspec (the same
types the code encodes and decodes with) and gives every schema a name that is
a valid identifier in TypeScript and a valid AsyncAPI component key: msgspec
qualifies a name with its module when two different types share it
(`community_posts.events.AuthorRef`); that becomes `PostsAuthorRef`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from community_gateway import contract
from community_shared.catalogue import catalogues
from community_shared.events import Envelope

REF_PREFIX = "#/components/schemas/"

NAMED_UNIONS: dict[str, Any] = {
    "ReviewRequested": contract.ReviewRequested,
    "ClientFrame": contract.ClientFrame,
    "ServerFrame": contract.ServerFrame,
}
"""Union types that get a name of their own (a Struct is named after its class)."""


@dataclasses.dataclass(frozen=True, slots=True)
class DomainEvent:
    subject: str
    component: str
    payload: type[msgspec.Struct]


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelEventSpec:
    kind: str
    type: str
    payload: Any
    subject: str | None
    """The domain subject whose `data` is passed on unchanged; None when the gateway builds it."""


def domain_events() -> list[DomainEvent]:
    """Every subject of the EVENTS stream with its payload type, by component then subject."""
    return [
        DomainEvent(subject, component, payload)
        for component, _module, catalogue in catalogues()
        for subject, payload in sorted(catalogue.items())
    ]


def channel_events() -> list[ChannelEventSpec]:
    """Every (channel kind, event type) the gateway emits, with its payload type, in order."""
    by_subject = {event.subject: event.payload for event in domain_events()}
    specs = []
    for kind, events in contract.CHANNEL_EVENTS.items():
        for type_, payload in events.items():
            if isinstance(payload, str):
                specs.append(ChannelEventSpec(kind, type_, by_subject[payload], payload))
            else:
                specs.append(ChannelEventSpec(kind, type_, payload, None))
    return specs


def type_name(type_: Any) -> str:
    """The component name of a Struct or of a union in `NAMED_UNIONS`."""
    for name, union in NAMED_UNIONS.items():
        if union is type_:
            return name
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return type_.__name__
    raise TypeError(f"{type_!r} has no component name: add it to NAMED_UNIONS")


def _clean_name(name: str) -> str:
    if "." not in name:
        return name
    module, _, short = name.rpartition(".")
    package = module.split(".", 1)[0].removeprefix("community_")
    return "".join(part.capitalize() for part in re.split(r"[_\W]+", package)) + short


def _rename_refs(node: Any, names: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                out[key] = REF_PREFIX + names[value[len(REF_PREFIX) :]]
            else:
                out[key] = _rename_refs(value, names)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, names) for item in node]
    return node


def components(types: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """JSON schemas of `types` and everything they refer to, by component name.

    A union of `NAMED_UNIONS` becomes a component of its own; references
    point at `#/components/schemas/<name>`. Raises if two different types
    would get the same name.
    """
    unique = list(dict.fromkeys(types))
    roots, defs = msgspec.json.schema_components(unique, ref_template=REF_PREFIX + "{name}")
    names = {name: _clean_name(name) for name in defs}
    if len(set(names.values())) != len(names):
        raise ValueError(f"two schemas would share a name: {sorted(names)}")
    out: dict[str, dict[str, Any]] = {
        names[name]: _rename_refs(schema, names) for name, schema in defs.items()
    }
    for type_, root in zip(unique, roots, strict=True):
        if "$ref" in root:
            continue  # a Struct: already among the components
        name = type_name(type_)
        if name in out:
            raise ValueError(f"two schemas would share the name {name}")
        out[name] = _rename_refs(root, names)
    return dict(sorted(out.items()))


def envelope_schema() -> dict[str, Any]:
    """The envelope of SPEC §8, `data` left open (each subject narrows it)."""
    _, defs = msgspec.json.schema_components([Envelope], ref_template=REF_PREFIX + "{name}")
    schema: dict[str, Any] = defs["Envelope"]
    return schema
