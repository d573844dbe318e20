"""How one record names a person: their id and the display name they had."""

from __future__ import annotations

import uuid

import msgspec


class PersonRef(msgspec.Struct, kw_only=True):
    """A person named in another record (a review's student, a report's reporter).

    Each service subclasses it under its own name, which is the name the
    OpenAPI document and the JavaScript client's types give it.
    """

    id: uuid.UUID
    name: str
