"""No input yields a 500 (SPEC §3): generated bodies and query strings against every route."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_user
from tests.integration.resources.conftest import resource_body

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "\x00", "https://x.example.com/a", "a@example.com", "guide", "free"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
FIELDS = [
    *resource_body(),
    "source_type",
    "source_id",
    "is_featured",
    "publish",
    "entity_type",
    "entity_id",
    "timestamp_seconds",
    "label",
    "display_order",
    "email",
    "rating",
    "review",
]
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries({}, optional={name: JSON for name in FIELDS}),
    st.builds(
        lambda base, extra: {**base, **extra},
        st.just(resource_body()),
        st.fixed_dictionaries({}, optional={name: SCALARS for name in FIELDS}),
    ),
)
QUERY = st.dictionaries(
    st.sampled_from(
        [
            "category",
            "type",
            "access",
            "tag",
            "difficulty",
            "q",
            "sort",
            "status",
            "featured",
            "cursor",
            "limit",
        ]
    ),
    st.text(max_size=40),
    max_size=5,
)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def instructor_headers() -> dict[str, str]:
    return make_user("instructor").headers


@pytest.fixture(scope="module")
def student_headers() -> dict[str, str]:
    return make_user("student").headers


@pytest.fixture(scope="module")
async def target(resources_client: Any, instructor_headers: dict[str, str]) -> str:
    response = await resources_client.post(
        "/resources", json=resource_body(), headers=instructor_headers
    )
    resource_id: str = response.json()["id"]
    return resource_id


@FUZZ
@given(body=BODIES)
async def test_writes_never_fail_on_input(
    resources_client: Any,
    instructor_headers: dict[str, str],
    student_headers: dict[str, str],
    target: str,
    body: Any,
) -> None:
    calls = [
        ("POST", "/resources", instructor_headers),
        ("PATCH", f"/resources/{target}", instructor_headers),
        ("POST", f"/resources/{target}/links", instructor_headers),
        ("POST", f"/resources/{target}/download", {}),
        ("POST", f"/resources/{target}/download", student_headers),
        ("PUT", f"/resources/{target}/rating", student_headers),
    ]
    for method, path, headers in calls:
        response = await resources_client.request(method, path, json=body, headers=headers)
        assert response.status_code < 500, (method, path, body, response.text)


@FUZZ
@given(raw=st.binary(max_size=64))
async def test_raw_bytes_never_fail(
    resources_client: Any, instructor_headers: dict[str, str], target: str, raw: bytes
) -> None:
    for method, path in (("POST", "/resources"), ("PUT", f"/resources/{target}/rating")):
        response = await resources_client.request(
            method,
            path,
            content=raw,
            headers={**instructor_headers, "Content-Type": "application/json"},
        )
        assert response.status_code < 500, (path, raw, response.text)


@FUZZ
@given(params=QUERY, segment=st.text(min_size=1, max_size=40))
async def test_reads_never_fail_on_input(
    resources_client: Any, instructor_headers: dict[str, str], params: dict[str, str], segment: str
) -> None:
    for headers in ({}, instructor_headers):
        response = await resources_client.get("/resources", params=params, headers=headers)
        assert response.status_code < 500, (params, response.text)
    segment = quote(segment, safe="")
    for path in (
        f"/resources/{segment}",
        f"/resources/linked/{segment}/{uuid.uuid4()}",
        f"/resources/linked/course/{segment}",
    ):
        response = await resources_client.get(path)
        assert response.status_code < 500, (path, response.text)
