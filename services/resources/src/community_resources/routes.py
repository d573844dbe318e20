"""HTTP controllers of the resources service: parse, authorize, call the service.

Each route states who may call it and the errors it answers (`answers`). Role
checks are guards, so they run before the body is read: a student calling an
instructor route gets 403 (a guest 401) whatever the body holds.

Bodies are decoded strictly from the raw request (a JSON string is not a
number, 5.0 is not an integer). The `data` parameter each write handler also
declares is there for the OpenAPI document; Litestar's own, lenient decoding
of it is superseded by `strict_body`. Path ids are parsed here so that a
malformed id is a 400 rather than an unmatched route; the document still gives
their format (UUID) and the entity types.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from community_shared.auth import Identity
from community_shared.idempotency import IdempotencyKey
from community_shared.jsonin import decode_json
from community_shared.pagination import DEFAULT_LIMIT, Cursor, Limit, parse_limit
from community_shared.web import (
    ANYONE,
    MODERATORS,
    SIGNED_IN,
    Runtime,
    answers,
    require_moderator,
    require_user,
)
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from community_resources import rules, service, store
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

T = TypeVar("T")

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


async def strict_body(
    request: Request[Any, Any, Any], type_: type[T], *, optional: bool = False
) -> T:
    """Decode the JSON body into `type_` with strict types; 400 on anything else.

    `optional`: an empty body means `type_()` (all defaults).
    """
    raw = await request.body()
    if optional and not raw.strip():
        return type_()
    try:
        return decode_json(raw, type=type_, strict=True)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ValidationException(detail=f"invalid request body: {exc}") from exc


def parse_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationException(detail=f"{what} must be a UUID") from exc


def one_of(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValidationException(detail=f"{name} must be one of: {', '.join(allowed)}")
    return value


def _input_error(exc: ValueError) -> ValidationException:
    return ValidationException(detail=str(exc))


def _utf8_error(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    """Invalid UTF-8 in a request (a body Litestar decodes for the OpenAPI `data`) is a 400."""
    return Response({"status_code": 400, "detail": "request is not valid UTF-8"}, status_code=400)


class ResourceController(Controller):
    path = "/resources"
    tags = ["resources"]
    exception_handlers = {UnicodeDecodeError: _utf8_error}

    @post("/", status_code=HTTP_201_CREATED, **answers(MODERATORS, 422))
    async def create_resource(
        self,
        request: Request[Any, Any, Any],
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        idempotency: NamedDependency[IdempotencyKey | None],
        data: JSONBody[CreateResource],
    ) -> ResourceOut:
        """Create a resource (instructors, admins); published unless `"publish": false`."""
        author_id = require_moderator(identity)
        body = await strict_body(request, CreateResource)
        return await service.create_resource(runtime.db, identity, author_id, body, idempotency)

    @get("/", **answers(ANYONE, 403))
    async def list_resources(
        self,
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        category: FromQuery[Category | None] = None,
        resource_type: Annotated[ResourceType | None, QueryParameter(name="type")] = None,
        access: FromQuery[Access | None] = None,
        tag: FromQuery[list[str] | None] = None,
        difficulty: FromQuery[Difficulty | None] = None,
        q: SearchParam = None,
        featured: FromQuery[bool | None] = None,
        sort: FromQuery[Sort] = "newest",
        status: FromQuery[Literal["published", "draft"]] = "published",
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> ResourcePage:
        """Published resources, filtered and sorted; moderators list drafts with `status=draft`
        (403 for anyone else)."""
        if status == "draft":
            require_moderator(identity)
        try:
            tags = rules.normalize_tags(tag or [])
            query = None if q is None else rules.clean_text(q, "q", max_length=rules.MAX_QUERY)
        except ValueError as exc:
            raise _input_error(exc) from exc
        filters = store.ListFilters(
            category=category,
            type=resource_type,
            access=access,
            difficulty=difficulty,
            tags=tags,
            q=query,
            featured=featured,
        )
        return await service.list_resources(
            runtime.db,
            identity,
            filters=filters,
            sort=sort,
            drafts=status == "draft",
            cursor=cursor,
            limit=parse_limit(limit),
        )

    @get("/linked/{entity_type:str}/{entity_id:str}", **answers(ANYONE))
    async def linked_resources(
        self,
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        entity_type: EntityTypeParam,
        entity_id: EntityId,
    ) -> LinkedList:
        """Resources linked to an entity, by timestamp (nulls last) then display order."""
        one_of(entity_type, rules.ENTITY_TYPES, "entity_type")
        return await service.linked_resources(
            runtime.db, identity, entity_type, parse_id(entity_id, "entity_id")
        )

    @get("/{resource_id:str}", **answers(ANYONE, 404))
    async def get_resource(
        self,
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        resource_id: ResourceId,
    ) -> ResourceOut:
        """One resource (drafts only for instructors and admins)."""
        return await service.get_resource(
            runtime.db, identity, parse_id(resource_id, "resource id")
        )

    @patch("/{resource_id:str}", **answers(MODERATORS, 404, 409))
    async def update_resource(
        self,
        request: Request[Any, Any, Any],
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        resource_id: ResourceId,
        data: JSONBody[UpdateResource],
    ) -> ResourceOut:
        """Change fields, feature, or publish a draft (`"publish": true`)."""
        moderator_id = require_moderator(identity)
        target = parse_id(resource_id, "resource id")
        body = await strict_body(request, UpdateResource)
        return await service.update_resource(runtime.db, identity, moderator_id, target, body)

    @delete("/{resource_id:str}", status_code=HTTP_204_NO_CONTENT, **answers(MODERATORS, 404))
    async def delete_resource(
        self,
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        resource_id: ResourceId,
    ) -> None:
        """Soft delete: gone from every list, 404 afterwards."""
        require_moderator(identity)
        await service.delete_resource(runtime.db, identity, parse_id(resource_id, "resource id"))

    @post(
        "/{resource_id:str}/links",
        status_code=HTTP_201_CREATED,
        **answers(MODERATORS, 404, 409, 422),
    )
    async def create_link(
        self,
        request: Request[Any, Any, Any],
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        idempotency: NamedDependency[IdempotencyKey | None],
        resource_id: ResourceId,
        data: JSONBody[CreateLink],
    ) -> LinkCreated:
        """Link the resource to a post, course video (at a timestamp), course or conversation."""
        moderator_id = require_moderator(identity)
        target = parse_id(resource_id, "resource id")
        body = await strict_body(request, CreateLink)
        return await service.create_link(runtime.db, moderator_id, target, body, idempotency)

    @delete(
        "/{resource_id:str}/links/{link_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        **answers(MODERATORS, 404),
    )
    async def delete_link(
        self,
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        resource_id: ResourceId,
        link_id: LinkId,
    ) -> None:
        """Remove a link."""
        require_moderator(identity)
        await service.delete_link(
            runtime.db, parse_id(resource_id, "resource id"), parse_id(link_id, "link id")
        )

    @post("/{resource_id:str}/download", status_code=HTTP_200_OK, **answers(ANYONE, 403, 404))
    async def download(
        self,
        request: Request[Any, Any, Any],
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        resource_id: ResourceId,
        data: JSONBody[DownloadRequest | None] = None,
    ) -> DownloadOut:
        """The file's URL, counted as a download. Guests: free resources, with an email."""
        target = parse_id(resource_id, "resource id")
        body = await strict_body(request, DownloadRequest, optional=True)
        return await service.download(runtime.db, identity, target, body)

    @put("/{resource_id:str}/rating", **answers(SIGNED_IN, 404, 409))
    async def rate(
        self,
        request: Request[Any, Any, Any],
        identity: NamedDependency[Identity],
        runtime: NamedDependency[Runtime],
        resource_id: ResourceId,
        data: JSONBody[RateResource],
    ) -> RatingOut:
        """Rate 1..5 (with an optional review) a resource you downloaded; updatable."""
        user_id = require_user(identity)
        target = parse_id(resource_id, "resource id")
        body = await strict_body(request, RateResource)
        return await service.rate(runtime.db, identity, user_id, target, body)
