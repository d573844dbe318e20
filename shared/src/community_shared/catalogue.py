"""Generate the events catalogue (docs/events.md) from the code's msgspec types.

    uv run python -m community_shared.catalogue > docs/events.md

Every component that publishes or consumes events exposes, in its `events`
module, `CATALOGUE: dict[str, type[msgspec.Struct]]` mapping each subject to
its payload type (the envelope's `data`), and registers that module under the
entry point group `community.events` of its package, named after the
component:

    [project.entry-points."community.events"]
    posts = "community_posts.events"

This library imports no component: it renders whatever is installed, in the
order of the `EVENTS` stream's subjects (`streams.EVENT_SOURCES`), any other
component after those, by name. The catalogue is rendered from the types, so
it cannot drift from what the code sends; a test checks that the committed
file is current.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import msgspec
import msgspec.inspect as mi

from community_shared.streams import EVENT_SOURCES

ENTRY_POINT_GROUP = "community.events"
"""Where each component registers its `events` module."""


def _type_name(info: mi.Type) -> str:
    if isinstance(info, mi.UnionType):
        return " | ".join(_type_name(t) for t in info.types)
    if isinstance(info, mi.NoneType):
        return "null"
    if isinstance(info, mi.StrType):
        return "string"
    if isinstance(info, mi.BoolType):
        return "boolean"
    if isinstance(info, mi.IntType):
        return "integer"
    if isinstance(info, mi.FloatType):
        return "number"
    if isinstance(info, mi.DecimalType):
        return "decimal string"
    if isinstance(info, mi.UUIDType):
        return "uuid"
    if isinstance(info, mi.DateTimeType):
        return "RFC 3339 time"
    if isinstance(info, mi.DateType):
        return "date"
    if isinstance(info, mi.LiteralType):
        return " | ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in info.values)
    if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return f"list of {_type_name(info.item_type)}"
    if isinstance(info, mi.DictType):
        return f"object of {_type_name(info.value_type)}"
    if isinstance(info, mi.StructType):
        return info.cls.__name__
    if isinstance(info, mi.AnyType):
        return "any"
    return type(info).__name__.removesuffix("Type").lower()


def _struct_section(cls: type[msgspec.Struct], seen: set[type[Any]]) -> list[str]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    lines = ["| field | type | required |", "|---|---|---|"]
    nested: list[type[msgspec.Struct]] = []
    for field in info.fields:
        type_cell = _type_name(field.type).replace("|", "\\|")  # a pipe would end the cell
        lines.append(
            f"| `{field.encode_name}` | {type_cell} | {'yes' if field.required else 'no'} |"
        )
        stack = [field.type]
        while stack:
            t = stack.pop()
            if isinstance(t, mi.StructType) and t.cls not in seen:
                seen.add(t.cls)
                nested.append(t.cls)
            elif isinstance(t, mi.UnionType):
                stack.extend(t.types)
            elif isinstance(t, mi.ListType | mi.SetType | mi.VarTupleType):
                stack.append(t.item_type)
    for cls_ in nested:
        lines += ["", f"`{cls_.__name__}`:", "", *_struct_section(cls_, seen)]
    return lines


def catalogues() -> Iterator[tuple[str, ModuleType, dict[str, type[msgspec.Struct]]]]:
    """Each installed component with events: its name, `events` module and `CATALOGUE`,
    in the order of the event stream's subjects, then by name."""

    def order(name: str) -> tuple[int, str]:
        known = name in EVENT_SOURCES
        return (EVENT_SOURCES.index(name) if known else len(EVENT_SOURCES), name)

    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: order(e.name)):
        component, module = entry.name, entry.load()
        if not isinstance(module, ModuleType):
            continue
        catalogue: dict[str, type[msgspec.Struct]] = getattr(module, "CATALOGUE", {})
        if catalogue:
            yield component, module, catalogue


def render() -> str:
    out = [
        "# Events catalogue",
        "",
        "Generated from the code's msgspec types by "
        "`uv run python -m community_shared.catalogue > docs/events.md`; do not edit by hand.",
        "",
        "Every event is published to JetStream (stream `EVENTS`, kept 8 days) on the subject "
        "equal to its `type`, in this envelope, with the header `Nats-Msg-Id` = `id`:",
        "",
        "| field | type | meaning |",
        "|---|---|---|",
        "| `id` | uuid | unique per event; a republish with the same id is dropped |",
        "| `type` | string | the subject, `<service>.<entity>.<verb>` |",
        "| `source` | string | the publishing component |",
        "| `occurred_at` | RFC 3339 time (UTC) | when the change was committed |",
        "| `actor_id` | uuid or null | the user whose request caused it; null for the system |",
        "| `data` | object | the payload below |",
        "",
        "Money is a string with two decimals; ids are UUID strings.",
        "",
        "The same subjects as an AsyncAPI 3 document, with the websocket protocol and the "
        "payload of every channel event: [asyncapi.yaml](asyncapi.yaml) (`./run codegen`).",
        "",
    ]
    for component, module, catalogue in catalogues():
        out += [f"## {component}", ""]
        if module.__doc__:
            out += [inspect.cleandoc(module.__doc__), ""]
        for subject, cls in sorted(catalogue.items()):
            out += [f"### `{subject}`", ""]
            if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
                out += [inspect.cleandoc(cls.__doc__), ""]
            out += [*_struct_section(cls, {cls}), ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
