"""No client input turns into a server error (SPEC §3: never a 500)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_user

QUICK = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
bodies = json_values | st.fixed_dictionaries(
    {},
    optional={
        "content": json_values | st.text(max_size=60),
        "visibility": json_values | st.sampled_from(["public", "members", "PUBLIC", ""]),
        "reply_to_id": json_values | st.uuids().map(str),
        "reason": json_values | st.sampled_from(["spam", "abuse", "off_topic", "other", "x"]),
        "details": json_values,
        "action": json_values | st.sampled_from(["dismiss", "remove", "ban"]),
    },
)
query_text = st.text(max_size=40)


@QUICK
@given(
    filter_=query_text | st.sampled_from(["all", "mine", "instructors"]),
    q=query_text,
    cursor=query_text,
    limit=query_text | st.integers(min_value=-(10**30), max_value=10**30).map(str),
    as_guest=st.booleans(),
)
async def test_feed_queries(
    api: Any, filter_: str, q: str, cursor: str, limit: str, as_guest: bool
) -> None:
    params = {"filter": filter_, "q": q, "cursor": cursor, "limit": limit}
    headers = None if as_guest else make_user().headers
    response = await api.client.get("/posts", params=params, headers=headers)
    assert response.status_code < 500, (params, response.text)
    assert "detail" in response.json() or response.status_code == 200


@QUICK
@given(body=bodies, raw=st.binary(max_size=40), use_raw=st.booleans())
async def test_write_bodies(api: Any, body: Any, raw: bytes, use_raw: bool) -> None:
    user, moderator = make_user(), make_user("instructor")
    post = await api.create_post(user)
    reply = await api.create_reply(post["id"], user)
    opened = await api.client.post(
        f"/posts/{post['id']}/reports", json={"reason": "spam"}, headers=user.headers
    )
    content = raw if use_raw else json.dumps(body).encode()
    calls = [
        ("POST", "/posts", user),
        ("PATCH", f"/posts/{post['id']}", user),
        ("POST", f"/posts/{post['id']}/replies", user),
        ("PATCH", f"/posts/{post['id']}/replies/{reply['id']}", user),
        ("POST", f"/posts/{post['id']}/reports", make_user()),
        ("POST", f"/reports/{opened.json()['id']}/resolve", moderator),
    ]
    for method, url, caller in calls:
        response = await api.client.request(
            method,
            url,
            content=content,
            headers={**caller.headers, "Content-Type": "application/json"},
        )
        assert response.status_code < 500, (method, url, content, response.text)


@QUICK
@given(raw_segment=st.text(min_size=1, max_size=40))
async def test_path_ids(api: Any, raw_segment: str) -> None:
    segment = quote(raw_segment, safe="")
    user = make_user("admin")
    for method, url in (
        ("GET", f"/posts/{segment}"),
        ("PUT", f"/posts/{segment}/like"),
        ("DELETE", f"/posts/{segment}"),
        ("PUT", f"/posts/{segment}/pin"),
        ("DELETE", f"/posts/{uuid.uuid4()}/replies/{segment}"),
    ):
        response = await api.client.request(method, url, headers=user.headers)
        assert response.status_code < 500, (method, url, response.text)
