"""Reading a service's rows into the structs its answers and events are made of."""

from __future__ import annotations

from typing import TypeVar

import asyncpg
import msgspec

S = TypeVar("S", bound=msgspec.Struct)


def from_row(type_: type[S], row: asyncpg.Record) -> S:
    """A `type_` whose every field is the row's column of the same name: for the
    structs that are a row as it is, so that a field added to both the struct
    and the query needs no third place to be copied in."""
    return type_(**{name: row[name] for name in type_.__struct_fields__})
