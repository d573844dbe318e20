"""HTTP controllers of the resources service: parse, authorize, call the use case.

Each route states who may call it and the errors it answers (`answers`). Role
checks are guards, so they run before the body is read: a student calling an
instructor route gets 403 (a guest 401) whatever the body holds. Bodies are
decoded strictly (a JSON string is not a number, 5.0 is not an integer) by
the shared request class. Path ids are parsed here so that a malformed id is
a 400 rather than an unmatched route; the document still gives their format
(UUID) and the entity types.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from community_shared.errors import InvalidInput
from community_shared.web import (
    ANYONE,
    MODERATORS,
    SIGNED_IN,
    Caller,
    Idempotency,
    PageQuery,
    answers,
)
from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from community_resources import rules, store
from community_resources.rules import Access, Category, Difficulty, ResourceType, Sort
from community_resources.schemas import (
    CreateLink,
    CreateResource,
    DownloadOut,
    DownloadRequest,
    LinkCreated,
    LinkedList,
    RateResource,
    RatingOut,
    ResourceOut,
    ResourcePage,
    UpdateResource,
)
from community_resources.service import ResourcesService

Resources = NamedDependency[ResourcesService]
ResourceId = Annotated[str, PathParameter(schema_extra={"format": "uuid"})]
LinkId = Annotated[str, PathParameter(schema_extra={"format": "uuid"})]
EntityId = Annotated[str, PathParameter(schema_extra={"format": "uuid"})]
EntityTypeParam = Annotated[str, PathParameter(schema_extra={"enum": list(rules.ENTITY_TYPES)})]
SearchParam = Annotated[
    str | None,
    QueryParameter(
        description=f"full-text search, at most {rules.MAX_QUERY} characters once trimmed"
    ),
]


def parse_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} must be a UUID") from exc


def one_of(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of: {', '.join(allowed)}")
    return value


class ResourceController(Controller):
    path = "/resources"
    tags = ["resources"]

    @post("/", status_code=HTTP_201_CREATED, **answers(MODERATORS, 422))
    async def create_resource(
        self,
        identity: Caller,
        resources: Resources,
        idempotency: Idempotency,
        data: JSONBody[CreateResource],
    ) -> ResourceOut:
        """Create a resource (instructors, admins); published unless `"publish": false`."""
        return await resources.create_resource(identity, data, idempotency)

    @get("/", **answers(ANYONE, 403))
    async def list_resources(
        self,
        identity: Caller,
        resources: Resources,
        category: FromQuery[Category | None] = None,
        resource_type: Annotated[ResourceType | None, QueryParameter(name="type")] = None,
        access: FromQuery[Access | None] = None,
        tag: FromQuery[list[str] | None] = None,
        difficulty: FromQuery[Difficulty | None] = None,
        q: SearchParam = None,
        featured: FromQuery[bool | None] = None,
        sort: FromQuery[Sort] = "newest",
        status: FromQuery[Literal["published", "draft"]] = "published",
        *,
        page: PageQuery,
    ) -> ResourcePage:
        """Published resources, filtered and sorted; moderators list drafts with `status=draft`
        (403 for anyone else)."""
        filters = store.ListFilters(
            category=category,
            type=resource_type,
            access=access,
            difficulty=difficulty,
            tags=tag or [],
            q=q,
            featured=featured,
        )
        return await resources.list_resources(
            identity, page, filters=filters, sort=sort, drafts=status == "draft"
        )

    @get("/linked/{entity_type:str}/{entity_id:str}", **answers(ANYONE))
    async def linked_resources(
        self,
        identity: Caller,
        resources: Resources,
        entity_type: EntityTypeParam,
        entity_id: EntityId,
    ) -> LinkedList:
        """Resources linked to an entity, by timestamp (nulls last) then display order."""
        one_of(entity_type, rules.ENTITY_TYPES, "entity_type")
        return await resources.linked_resources(
            identity, entity_type, parse_id(entity_id, "entity_id")
        )

    @get("/{resource_id:str}", **answers(ANYONE, 404))
    async def get_resource(
        self, identity: Caller, resources: Resources, resource_id: ResourceId
    ) -> ResourceOut:
        """One resource (drafts only for instructors and admins)."""
        return await resources.get_resource(identity, parse_id(resource_id, "resource id"))

    @patch("/{resource_id:str}", **answers(MODERATORS, 404, 409))
    async def update_resource(
        self,
        identity: Caller,
        resources: Resources,
        resource_id: ResourceId,
        data: JSONBody[UpdateResource],
    ) -> ResourceOut:
        """Change fields, feature, or publish a draft (`"publish": true`)."""
        target = parse_id(resource_id, "resource id")
        return await resources.update_resource(identity, target, data)

    @delete("/{resource_id:str}", status_code=HTTP_204_NO_CONTENT, **answers(MODERATORS, 404))
    async def delete_resource(
        self, identity: Caller, resources: Resources, resource_id: ResourceId
    ) -> None:
        """Soft delete: gone from every list, 404 afterwards."""
        await resources.delete_resource(identity, parse_id(resource_id, "resource id"))

    @post(
        "/{resource_id:str}/links",
        status_code=HTTP_201_CREATED,
        **answers(MODERATORS, 404, 409, 422),
    )
    async def create_link(
        self,
        identity: Caller,
        resources: Resources,
        idempotency: Idempotency,
        resource_id: ResourceId,
        data: JSONBody[CreateLink],
    ) -> LinkCreated:
        """Link the resource to a post, course video (at a timestamp), course or conversation."""
        target = parse_id(resource_id, "resource id")
        return await resources.create_link(identity, target, data, idempotency)

    @delete(
        "/{resource_id:str}/links/{link_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        **answers(MODERATORS, 404),
    )
    async def delete_link(
        self, identity: Caller, resources: Resources, resource_id: ResourceId, link_id: LinkId
    ) -> None:
        """Remove a link."""
        await resources.delete_link(
            identity, parse_id(resource_id, "resource id"), parse_id(link_id, "link id")
        )

    @post("/{resource_id:str}/download", status_code=HTTP_200_OK, **answers(ANYONE, 403, 404))
    async def download(
        self,
        identity: Caller,
        resources: Resources,
        resource_id: ResourceId,
        data: JSONBody[DownloadRequest | None] = None,
    ) -> DownloadOut:
        """The file's URL, counted as a download. Guests: free resources, with an email."""
        target = parse_id(resource_id, "resource id")
        return await resources.download(identity, target, data or DownloadRequest())

    @put("/{resource_id:str}/rating", **answers(SIGNED_IN, 404, 409))
    async def rate(
        self,
        identity: Caller,
        resources: Resources,
        resource_id: ResourceId,
        data: JSONBody[RateResource],
    ) -> RatingOut:
        """Rate 1..5 (with an optional review) a resource you downloaded; updatable."""
        return await resources.rate(identity, parse_id(resource_id, "resource id"), data)
