"""Request shapes and cursors of the resources API (no I/O)."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from community_resources import service, store
from community_resources.events import CATALOGUE, PublicResource
from community_resources.schemas import (
    CreateLink,
    CreateResource,
    DownloadRequest,
    RateResource,
    ResourceOut,
    UpdateResource,
)
from community_shared.errors import InvalidInput
from community_shared.pagination import encode_cursor
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET


def decode(type_: type[Any], body: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(body), type=type_, strict=True)


BASE = {
    "title": "T",
    "type": "guide",
    "category": "business",
    "file_url": "https://example.com/f.pdf",
}


def test_create_defaults() -> None:
    created = decode(CreateResource, BASE)
    assert created.access == "members" and created.publish is True
    assert created.tags == [] and created.is_featured is False


@pytest.mark.parametrize(
    "override",
    [
        {"file_size": "1"},
        {"file_size": 1.0},
        {"is_featured": "true"},
        {"tags": "a"},
        {"type": "Guide"},
    ],
)
def test_create_is_strict(override: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(CreateResource, {**BASE, **override})


def test_unknown_fields_are_ignored() -> None:
    assert decode(CreateResource, {**BASE, "download_count": 99}).title == "T"


def test_update_distinguishes_absent_from_null() -> None:
    update = decode(UpdateResource, {"description": None, "is_featured": True, "publish": True})
    assert update.column_changes() == {"description": None, "is_featured": True}
    assert update.title is UNSET
    assert decode(UpdateResource, {}).column_changes() == {}
    with pytest.raises(msgspec.ValidationError):
        decode(UpdateResource, {"title": None})


def test_every_updatable_field_is_a_column() -> None:
    fields = set(UpdateResource.__struct_fields__) - {"publish"}
    assert fields == store.UPDATABLE_COLUMNS


@pytest.mark.parametrize("rating", [0, 6, "x", 2.5, 3.0, "3", None, True])
def test_bad_ratings(rating: Any) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(RateResource, {"rating": rating})


def test_rating_review() -> None:
    assert decode(RateResource, {"rating": 5}).review is UNSET
    assert decode(RateResource, {"rating": 5, "review": "  "}).review is None
    assert decode(RateResource, {"rating": 5, "review": " ok "}).review == "ok"


def test_download_email_is_normalized_or_refused() -> None:
    assert decode(DownloadRequest, {}).email is None
    assert decode(DownloadRequest, {"email": "A@Example.com"}).email == "a@example.com"
    with pytest.raises(msgspec.ValidationError):
        decode(DownloadRequest, {"email": "nope"})


def test_links() -> None:
    link = decode(CreateLink, {"entity_type": "course_video", "entity_id": str(uuid.uuid4())})
    assert link.display_order == 0 and link.timestamp_seconds is None
    with pytest.raises(msgspec.ValidationError):
        decode(CreateLink, {"entity_type": "lesson", "entity_id": str(uuid.uuid4())})


def test_the_public_resource_has_no_file_url_and_no_caller_fields() -> None:
    assert "file_url" not in PublicResource.__struct_fields__
    assert "my_rating" not in PublicResource.__struct_fields__
    assert set(ResourceOut.__struct_fields__) - set(PublicResource.__struct_fields__) == {
        "my_rating"
    }
    assert set(CATALOGUE) == {
        "resources.resource.created",
        "resources.resource.updated",
        "resources.resource.deleted",
        "resources.resource.downloaded",
        "resources.resource.rated",
    }


# --------------------------------------------------------------------------- cursors

ID = uuid.uuid4()
WHEN = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("newest", (WHEN, ID)),
        ("downloads", (12, ID)),
        ("popular", (3, 12, ID)),
        ("rating", (Decimal("4.3333333333333333"), 3, ID)),
        ("rating", (None, 0, ID)),
        ("drafts", (WHEN, ID)),
    ],
)
def test_cursor_round_trip(sort: str, key: tuple[Any, ...]) -> None:
    cursor = encode_cursor([sort, *key])
    assert service.decode_position(sort, cursor) == key


@pytest.mark.parametrize(
    "payload",
    [
        ["downloads", 1, str(ID)],
        ["newest", "2025-01-02T03:04:05", str(ID)],
        ["newest", "2025-01-02T03:04:05Z"],
        ["newest", "2025-01-02T03:04:05Z", "x"],
        ["rating", "Infinity", 1, str(ID)],
        ["rating", "0.5", 1, str(ID)],
        ["rating", "4", -1, str(ID)],
        {"sort": "newest"},
        "newest",
    ],
)
def test_malformed_cursors(payload: Any) -> None:
    sort = "rating" if isinstance(payload, list) and payload[0] == "rating" else "newest"
    with pytest.raises(InvalidInput):
        service.decode_position(sort, encode_cursor(payload))


@given(st.text(max_size=60))
def test_any_text_cursor_is_a_key_or_a_400(text: str) -> None:
    for sort in ("newest", "downloads", "popular", "rating", "drafts"):
        with contextlib.suppress(InvalidInput):
            service.decode_position(sort, text)
