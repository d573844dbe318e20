"""Rows of the resources schema as the answers and event payloads built from them.

Pure: `is_new` and `is_popular` are computed here from the row, the time of
the answer and the popularity threshold the use case read (`rules`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from community_resources import rules
from community_resources.schemas import (
    LinkedResource,
    LinkOut,
    PublicResource,
    RatingOut,
    ResourceOut,
)


def _common_fields(row: asyncpg.Record, now: dt.datetime, threshold: int | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "type": row["type"],
        "category": row["category"],
        "access": row["access"],
        "file_size": row["file_size"],
        "format": row["format"],
        "mime_type": row["mime_type"],
        "difficulty": row["difficulty"],
        "tags": list(row["tags"]),
        "source_type": row["source_type"],
        "source_id": row["source_id"],
        "download_count": row["download_count"],
        "rating_average": rules.rating_average(row["rating_sum"], row["rating_count"]),
        "rating_count": row["rating_count"],
        "is_new": rules.is_new(row["published_at"], now),
        "is_popular": row["published_at"] is not None
        and rules.is_popular(row["recent_downloads"], threshold),
        "is_featured": row["is_featured"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "published_at": row["published_at"],
    }


def public_view(row: asyncpg.Record, now: dt.datetime, threshold: int | None) -> PublicResource:
    """The resource as anyone may see it (also the payload of created/updated events)."""
    return PublicResource(**_common_fields(row, now, threshold))


def caller_view(row: asyncpg.Record, now: dt.datetime, threshold: int | None) -> ResourceOut:
    """The resource with the caller's own rating."""
    return ResourceOut(**_common_fields(row, now, threshold), my_rating=row["my_rating"])


def linked_view(row: asyncpg.Record, now: dt.datetime, threshold: int | None) -> LinkedResource:
    return LinkedResource(
        **_common_fields(row, now, threshold),
        my_rating=row["my_rating"],
        link=LinkOut(
            id=row["link_id"],
            timestamp_seconds=row["link_timestamp_seconds"],
            label=row["link_label"],
            display_order=row["link_display_order"],
        ),
    )


def rating_out(totals: asyncpg.Record) -> RatingOut:
    return RatingOut(
        rating_average=rules.rating_average(totals["rating_sum"], totals["rating_count"]),
        rating_count=totals["rating_count"],
    )
