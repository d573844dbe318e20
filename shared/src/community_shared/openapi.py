"""The services' OpenAPI documents: the error body, the bearer scheme, the pages.

A route states what it answers with `community_shared.web.answers` (who may
call it, and the errors its use case can raise); this module holds what those
declarations are made of and the rules every document follows whatever the
route:

- every error response carries the one error body (`ErrorBody`): the JSON that
  `community_shared.web` writes for every failure;
- 429 and 503 responses carry `Retry-After`;
- a response that may take several shapes is documented with `anyOf`: they
  may overlap (an empty page is a page of either kind), which `oneOf` forbids;
- an operation that reads a request body can answer 413 (the body limit of
  `create_service_app`), and one with parameters or a body 400 (Litestar adds
  that one itself; `finish_document` gives it our error body);
- the browsable pages under `/schema` load their assets from the service
  itself (`OfflineSwagger`), never from a CDN, so they work offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
import swagger_ui_bundle
from litestar import get
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath
from litestar.response import File
from litestar.router import Router

BEARER = "bearer"
"""The name of the bearer security scheme in every document."""

SIGNED_IN_SECURITY: list[SecurityRequirement] = [{BEARER: []}]
"""The caller must send a bearer token."""
GUEST_OR_SIGNED_IN_SECURITY: list[SecurityRequirement] = [{}, {BEARER: []}]
"""A token is optional (guests are welcome); a bad one is still a 401."""


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error the services answer (SPEC §3)."""

    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input: a malformed body, parameter or cursor, or a value out of range",
    401: "No token where one is required, or a bad, expired or forged token",
    403: "The token is valid but does not carry the right",
    404: "Not found, or not visible to the caller",
    409: "The request conflicts with the current state",
    413: "The request body is too large",
    422: "The Idempotency-Key was already used for a different request body",
    431: "The request head is larger than 16 KiB or has more than 100 header lines",
    429: "Rate limited: retry after `Retry-After` seconds",
    503: "A dependency is down: nothing was applied; retry after `Retry-After` seconds",
}
"""What each error status means, the same on every operation of every service."""

RETRY_AFTER_STATUSES = frozenset({429, 503})
BODY_TOO_LARGE = 413


def error_response(status: int) -> ResponseSpec:
    """The documented response of an error `status`, with the error body."""
    return ResponseSpec(
        data_container=ErrorBody,
        description=ERROR_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase,
        generate_examples=False,
    )


def _error_schema_ref(document: OpenAPI) -> Reference:
    """Register the error body's schema (`ErrorBody`) and refer to it."""
    any_value = Schema(
        one_of=[
            Schema(type=OpenAPIType.OBJECT),
            Schema(type=OpenAPIType.ARRAY),
            Schema(type=OpenAPIType.NULL),
        ]
    )
    if document.components.schemas is None:
        document.components.schemas = {}
    document.components.schemas["ErrorBody"] = Schema(
        type=OpenAPIType.OBJECT,
        title="ErrorBody",
        description=ErrorBody.__doc__,
        required=["status_code", "detail"],
        properties={
            "status_code": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
            "detail": Schema(type=OpenAPIType.STRING),
            "extra": any_value,
        },
    )
    return Reference(ref="#/components/schemas/ErrorBody")


def _operations(document: OpenAPI) -> Iterator[Operation]:
    for item in (document.paths or {}).values():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation = getattr(item, method, None)
            if isinstance(operation, Operation):
                yield operation


def finish_document(document: OpenAPI) -> None:
    """Apply the rules every operation follows (see the module docstring), in place."""
    error = _error_schema_ref(document)
    retry_after = OpenAPIHeader(
        description="Whole seconds to wait before retrying",
        required=True,
        schema=Schema(type=OpenAPIType.STRING, pattern=r"^[0-9]+$"),
    )
    for operation in _operations(document):
        responses = operation.responses if operation.responses is not None else {}
        if operation.request_body is not None and str(BODY_TOO_LARGE) not in responses:
            responses[str(BODY_TOO_LARGE)] = OpenAPIResponse(
                description=ERROR_DESCRIPTIONS[BODY_TOO_LARGE]
            )
        for code, response in list(responses.items()):
            status = int(code)
            if not isinstance(response, OpenAPIResponse):
                continue
            if status < 400:
                _any_of_shapes(response)
                continue
            # Litestar's own 400 describes its exception class; ours is the body we send.
            response.description = ERROR_DESCRIPTIONS.get(status, response.description)
            response.content = {MediaType.JSON.value: OpenAPIMediaType(schema=error)}
            if status in RETRY_AFTER_STATUSES:
                response.headers = {"Retry-After": retry_after}
        operation.responses = dict(sorted(responses.items()))


def _any_of_shapes(response: OpenAPIResponse) -> None:
    for media in (response.content or {}).values():
        schema = media.schema
        if isinstance(schema, Schema) and schema.one_of:
            schema.any_of, schema.one_of = schema.one_of, None


# --------------------------------------------------------------------------- the pages

ASSETS_DIR = Path(swagger_ui_bundle.swagger_ui_path)
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The files the Swagger UI page loads, served by the service itself."""


class OfflineSwagger(SwaggerRenderPlugin):
    """Swagger UI whose page loads its script, style and icon from this service.

    The assets come from the `swagger-ui-bundle-v2` package (Swagger UI 5's own
    distribution files) and are served under `<schema path>/assets/`.
    """

    def __init__(self, schema_path: str) -> None:
        assets = f"{schema_path.rstrip('/')}/assets"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
            path=["/", "/swagger"],
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(serve_asset)


@get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False)
def serve_asset(name: FromPath[str]) -> File:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundException(detail="no such asset")
    return File(
        ASSETS_DIR / name,
        media_type=media_type,
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def openapi_config(title: str, *, path: str = "/schema") -> OpenAPIConfig:
    """The OpenAPI configuration of a service: bearer scheme, offline pages."""
    return OpenAPIConfig(
        title=title,
        version="1.0.0",
        path=path,
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description=(
                        "`Authorization: Bearer <JWT>` (HS256). Without a token the caller "
                        "is a guest; a bad, expired or forged token is a 401 everywhere."
                    ),
                )
            }
        ),
        render_plugins=[OfflineSwagger(path), JsonRenderPlugin(), YamlRenderPlugin()],
    )
