"""The HTTP API's shapes (msgspec Structs).

Request bodies normalize and validate themselves in `__post_init__` (msgspec
turns a ValueError there into a validation error, hence a 400): text is
trimmed, NUL characters and over-long values are refused, tags are
normalized, `file_url` must be https. `PublicResource` is the resource as
anyone may see it; it is also the payload of the created/updated events.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from community_shared import text
from community_shared.pagination import Page
from msgspec import UNSET, Meta, UnsetType

from community_resources import rules
from community_resources.rules import Access, Category, Difficulty, EntityType, ResourceType

FileSize = Annotated[int, Meta(ge=0, le=rules.MAX_FILE_SIZE)]
TimestampSeconds = Annotated[int, Meta(ge=0, le=rules.MAX_TIMESTAMP_SECONDS)]
DisplayOrder = Annotated[int, Meta(ge=-rules.MAX_DISPLAY_ORDER, le=rules.MAX_DISPLAY_ORDER)]
Rating = Annotated[int, Meta(ge=1, le=5)]


# --------------------------------------------------------------------------- requests


class CreateResource(msgspec.Struct, kw_only=True):
    """`POST /resources`. `access` defaults to members-only; `publish` to true."""

    title: str
    type: ResourceType
    category: Category
    file_url: str
    description: str | None = None
    access: Access = rules.DEFAULT_ACCESS
    file_size: FileSize | None = None
    format: str | None = None
    mime_type: str | None = None
    difficulty: Difficulty | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    source_type: str | None = None
    source_id: str | None = None
    is_featured: bool = False
    publish: bool = True

    def __post_init__(self) -> None:
        self.title = text.required_text(self.title, "title", max_length=rules.MAX_TITLE)
        self.file_url = rules.check_https_url(self.file_url)
        self.description = text.clean_text(
            self.description, "description", max_length=rules.MAX_DESCRIPTION
        )
        self.format = text.clean_text(self.format, "format", max_length=rules.MAX_FORMAT)
        self.mime_type = (
            None if self.mime_type is None else rules.normalize_mime_type(self.mime_type)
        )
        self.tags = rules.normalize_tags(self.tags)
        self.source_type = text.clean_text(
            self.source_type, "source_type", max_length=rules.MAX_SOURCE_TYPE
        )
        self.source_id = text.clean_text(
            self.source_id, "source_id", max_length=rules.MAX_SOURCE_ID
        )


class UpdateResource(msgspec.Struct, kw_only=True):
    """`PATCH /resources/{id}`: only the fields present change.

    `"publish": true` publishes a draft (no-op when already published);
    `"publish": false` keeps a draft a draft and is a conflict on a published
    resource (delete it instead).
    """

    title: str | UnsetType = UNSET
    type: ResourceType | UnsetType = UNSET
    category: Category | UnsetType = UNSET
    file_url: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    access: Access | UnsetType = UNSET
    file_size: FileSize | UnsetType | None = UNSET
    format: str | UnsetType | None = UNSET
    mime_type: str | UnsetType | None = UNSET
    difficulty: Difficulty | UnsetType | None = UNSET
    tags: list[str] | UnsetType = UNSET
    source_type: str | UnsetType | None = UNSET
    source_id: str | UnsetType | None = UNSET
    is_featured: bool | UnsetType = UNSET
    publish: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.title, str):
            self.title = text.required_text(self.title, "title", max_length=rules.MAX_TITLE)
        if isinstance(self.file_url, str):
            self.file_url = rules.check_https_url(self.file_url)
        if isinstance(self.description, str):
            self.description = text.clean_text(
                self.description, "description", max_length=rules.MAX_DESCRIPTION
            )
        if isinstance(self.format, str):
            self.format = text.clean_text(self.format, "format", max_length=rules.MAX_FORMAT)
        if isinstance(self.mime_type, str):
            self.mime_type = rules.normalize_mime_type(self.mime_type)
        if isinstance(self.tags, list):
            self.tags = rules.normalize_tags(self.tags)
        if isinstance(self.source_type, str):
            self.source_type = text.clean_text(
                self.source_type, "source_type", max_length=rules.MAX_SOURCE_TYPE
            )
        if isinstance(self.source_id, str):
            self.source_id = text.clean_text(
                self.source_id, "source_id", max_length=rules.MAX_SOURCE_ID
            )

    def column_changes(self) -> dict[str, Any]:
        """The stored columns this request sets (everything present except `publish`)."""
        return {
            name: value
            for name in self.__struct_fields__
            if name != "publish" and (value := getattr(self, name)) is not UNSET
        }


class CreateLink(msgspec.Struct, kw_only=True):
    """`POST /resources/{id}/links`."""

    entity_type: EntityType
    entity_id: uuid.UUID
    timestamp_seconds: TimestampSeconds | None = None
    label: str | None = None
    display_order: DisplayOrder = 0

    def __post_init__(self) -> None:
        self.label = text.clean_text(self.label, "label", max_length=rules.MAX_LABEL)


class DownloadRequest(msgspec.Struct, kw_only=True):
    """`POST /resources/{id}/download`: guests leave an email for a free resource.

    The email, when given, must be a valid address whoever sends it; it is
    stored only for guests.
    """

    email: str | None = None

    def __post_init__(self) -> None:
        if self.email is not None:
            self.email = rules.normalize_email(self.email)


class RateResource(msgspec.Struct, kw_only=True):
    """`PUT /resources/{id}/rating`. An absent `review` keeps the previous one; null clears it."""

    rating: Rating
    review: str | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.review, str):
            self.review = text.clean_text(self.review, "review", max_length=rules.MAX_REVIEW)


# --------------------------------------------------------------------------- responses


class PublicResource(msgspec.Struct, kw_only=True):
    """A resource as anyone may see it (never its file_url)."""

    id: uuid.UUID
    title: str
    description: str | None
    type: str
    category: str
    access: str
    file_size: int | None
    format: str | None
    mime_type: str | None
    difficulty: str | None
    tags: list[str]
    source_type: str | None
    source_id: str | None
    download_count: int
    rating_average: float | None
    rating_count: int
    is_new: bool
    is_popular: bool
    is_featured: bool
    created_by: uuid.UUID
    created_at: dt.datetime
    published_at: dt.datetime | None


class ResourceOut(PublicResource, kw_only=True):
    """A resource for one caller: with their own rating."""

    my_rating: int | None = None


class ResourcePage(Page[ResourceOut]):
    items: list[ResourceOut]  # named again: the OpenAPI document does not resolve a generic base


class LinkOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    timestamp_seconds: int | None
    label: str | None
    display_order: int


class LinkCreated(LinkOut, kw_only=True):
    resource_id: uuid.UUID
    entity_type: str
    entity_id: uuid.UUID
    created_at: dt.datetime


class LinkedResource(ResourceOut, kw_only=True):
    link: LinkOut


class LinkedList(msgspec.Struct, kw_only=True):
    items: list[LinkedResource]


class DownloadOut(msgspec.Struct, kw_only=True):
    url: str


class RatingOut(msgspec.Struct, kw_only=True):
    rating_average: float | None
    rating_count: int
