"""The events the resources service publishes (source "resources").

`resources.resource.created` / `.updated` carry the public resource
(`schemas.PublicResource`: no file_url, no caller-specific field; a draft has
`published_at` null). Downloads and ratings carry the resource's counters as
they stand right after the change, read under the row lock that serialized
it, so the latest event of a resource always has the exact totals.
"""

from __future__ import annotations

import uuid
from typing import Final

import msgspec

from community_resources.schemas import PublicResource

SOURCE: Final = "resources"

RESOURCE_CREATED: Final = "resources.resource.created"
RESOURCE_UPDATED: Final = "resources.resource.updated"
RESOURCE_DELETED: Final = "resources.resource.deleted"
RESOURCE_DOWNLOADED: Final = "resources.resource.downloaded"
RESOURCE_RATED: Final = "resources.resource.rated"

ResourceCreated = PublicResource
ResourceUpdated = PublicResource


class ResourceDeleted(msgspec.Struct, kw_only=True):
    id: uuid.UUID


class ResourceDownloaded(msgspec.Struct, kw_only=True):
    resource_id: uuid.UUID
    user_id: uuid.UUID | None  # null for a guest; a guest's email is never published
    download_count: int
    rating_average: float | None
    rating_count: int


class ResourceRated(msgspec.Struct, kw_only=True):
    resource_id: uuid.UUID
    user_id: uuid.UUID
    rating: int
    download_count: int
    rating_average: float | None
    rating_count: int


CATALOGUE: Final[dict[str, type[msgspec.Struct]]] = {
    RESOURCE_CREATED: PublicResource,
    RESOURCE_UPDATED: PublicResource,
    RESOURCE_DELETED: ResourceDeleted,
    RESOURCE_DOWNLOADED: ResourceDownloaded,
    RESOURCE_RATED: ResourceRated,
}
"""Every subject this service publishes and its payload type (for the events catalogue)."""
