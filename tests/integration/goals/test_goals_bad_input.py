"""Bad input on every route: a 4xx, nothing written, no event; roles enforced."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import JWT_SECRET, User, make_user
from tests.integration.goals.conftest import GoalsApi, counts

BAD_AMOUNTS: list[Any] = [
    0,
    -1,
    10000000.01,
    "10000000.01",
    1.234,
    "1.234",
    "abc",
    True,
    None,
    "",
    "NaN",
    "Infinity",
    "1e400",
    [],
    {},
    "-0.00",
]
BAD_URLS: list[Any] = [
    "http://example.com/proof.png",
    "not a url",
    "",
    "   ",
    "example.com/x",
    "ftp://example.com/x",
    "https://",
    "javascript:alert(1)",
    42,
    None,
    "https://example.com/" + "a" * 2048,
    "https://exa mple.com/",
]


@pytest.fixture
async def active_student(goals_api: GoalsApi, reviewer: User) -> User:
    student = make_user("student")
    await goals_api.assign(student, "agency-1k", reviewer)
    return student


async def test_unknown_or_malformed_goal_slug(goals_client: Any, db: Any) -> None:
    student = make_user("student")
    before = await counts(db, student.id)
    bodies: list[Any] = [
        {"goal_slug": "agency-2k"},
        {"goal_slug": ""},
        {"goal_slug": "  "},
        {"goal_slug": "x" * 5000},
        {"goal_slug": 1},
        {"goal_slug": None},
        {},
        [],
        "agency-1k",
    ]
    for body in bodies:
        response = await goals_client.put("/goals/me/goal", json=body, headers=student.headers)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["status_code"] == 400
    for raw in (b"", b"{", b"null"):
        response = await goals_client.put(
            "/goals/me/goal",
            content=raw,
            headers={**student.headers, "content-type": "application/json"},
        )
        assert response.status_code == 400, raw
    assert await counts(db, student.id) == before == (0, 0, 0, before[3])


async def test_bad_amounts_write_nothing(goals_client: Any, active_student: User, db: Any) -> None:
    before = await counts(db, active_student.id)
    for amount in BAD_AMOUNTS:
        response = await goals_client.post(
            "/goals/me/submissions",
            json={"amount": amount, "proof_url": "https://example.com/p.png"},
            headers=active_student.headers,
        )
        assert response.status_code == 400, (amount, response.text)
    missing = await goals_client.post(
        "/goals/me/submissions",
        json={"proof_url": "https://example.com/p.png"},
        headers=active_student.headers,
    )
    assert missing.status_code == 400
    assert await counts(db, active_student.id) == before


async def test_bad_proof_urls_and_notes_write_nothing(
    goals_client: Any, active_student: User, db: Any
) -> None:
    before = await counts(db, active_student.id)
    for url in BAD_URLS:
        response = await goals_client.post(
            "/goals/me/submissions",
            json={"amount": 100, "proof_url": url},
            headers=active_student.headers,
        )
        assert response.status_code == 400, (url, response.text)
    for note in ("x" * 1001, 12, ["a"], {"a": 1}):
        response = await goals_client.post(
            "/goals/me/submissions",
            json={"amount": 100, "proof_url": "https://example.com/p", "note": note},
            headers=active_student.headers,
        )
        assert response.status_code == 400, (note, response.text)
    assert await counts(db, active_student.id) == before


async def test_the_limits_themselves_are_accepted(
    goals_api: GoalsApi, active_student: User, reviewer: User
) -> None:
    submission = await goals_api.submit(
        active_student, "10000000", proof_url="https://e.io/" + "a" * 2035, note="n" * 1000
    )
    assert submission["amount"] == "10000000.00"
    await goals_api.reject(submission["id"], reviewer, "r" * 1000)
    small = await goals_api.submit(active_student, 0.01)
    assert small["amount"] == "0.01"


async def test_blank_or_missing_reason_is_400_and_the_review_stays_pending(
    goals_api: GoalsApi, goals_client: Any, active_student: User, reviewer: User, db: Any
) -> None:
    submission = await goals_api.submit(active_student, 100)
    before = await counts(db, active_student.id)
    path = f"/goals/reviews/{submission['id']}/reject"
    for body in (
        {"reason": ""},
        {"reason": "   \n\t"},
        {},
        {"reason": None},
        {"reason": 5},
        {"reason": "x" * 1001},
        [],
    ):
        response = await goals_client.post(path, json=body, headers=reviewer.headers)
        assert response.status_code == 400, (body, response.text)
    empty = await goals_client.post(path, headers=reviewer.headers)
    assert empty.status_code == 400
    assert await counts(db, active_student.id) == before
    assert (await goals_api.profile(active_student))["submission_state"] == "pending"


async def test_malformed_ids_and_paging_parameters(
    goals_client: Any, reviewer: User, db: Any
) -> None:
    student = make_user("student")
    before = await counts(db, student.id)
    for path in (
        "/goals/reviews/not-a-uuid/approve",
        "/goals/reviews/123/reject",
        "/goals/stories/zzz/publish",
    ):
        response = await goals_client.post(path, json={"reason": "x"}, headers=reviewer.headers)
        assert 400 <= response.status_code < 500, path
    response = await goals_client.get("/goals/students/not-a-uuid", headers=reviewer.headers)
    assert 400 <= response.status_code < 500
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"limit": "abc"},
        {"cursor": "garbage!"},
        {"cursor": "eyJ4IjoxfQ"},
        {"status": "open"},
        {"status": ""},
    ):
        response = await goals_client.get("/goals/reviews", params=params, headers=reviewer.headers)
        assert response.status_code == 400, (params, response.text)
    for params in ({"limit": -1}, {"cursor": "W1td"}, {"status": "deleted"}):
        response = await goals_client.get("/goals/stories", params=params)
        assert response.status_code == 400, (params, response.text)
    for params in ({"limit": 1000}, {"cursor": "%%%"}):
        response = await goals_client.get(
            "/goals/me/submissions", params=params, headers=student.headers
        )
        assert response.status_code == 400, (params, response.text)
    after = await counts(db, student.id)
    assert after[1:] == before[1:]


async def test_bad_stories_write_nothing(goals_client: Any, db: Any) -> None:
    student = make_user("student")
    before = await counts(db, student.id)
    good = {"title": "From zero to 3k", "story": "It took a while.", "anonymous": True}
    bad: list[Any] = [
        {**good, "title": ""},
        {**good, "title": "   "},
        {**good, "title": "t" * 201},
        {**good, "story": ""},
        {**good, "story": "s" * 10001},
        {k: v for k, v in good.items() if k != "anonymous"},
        {**good, "anonymous": "yes"},
        {**good, "anonymous": None},
        {**good, "earnings_amount": 0},
        {**good, "earnings_amount": -5},
        {**good, "earnings_amount": "abc"},
        {**good, "earnings_amount": 1.234},
        {**good, "earnings_amount": True},
        {**good, "earnings_amount": 10000000.01},
        {**good, "title": 5},
        [],
    ]
    for body in bad:
        response = await goals_client.post("/goals/stories", json=body, headers=student.headers)
        assert response.status_code == 400, (body, response.text)
    assert await counts(db, student.id) == before


async def test_students_get_403_and_guests_401_on_every_instructor_route(
    goals_api: GoalsApi, goals_client: Any, active_student: User, db: Any
) -> None:
    submission = await goals_api.submit(active_student, 100)
    other = make_user("student")
    await goals_api.profile(other)
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/goals/reviews", None),
        ("GET", "/goals/reviews?status=approved", None),
        ("POST", f"/goals/reviews/{submission['id']}/approve", None),
        ("POST", f"/goals/reviews/{submission['id']}/reject", {"reason": "no"}),
        ("POST", f"/goals/reviews/{submission['id']}/reject", None),  # roles before the body
        ("GET", f"/goals/students/{active_student.id}", None),
        ("GET", f"/goals/students/{other.id}", None),
        ("POST", f"/goals/stories/{uuid.uuid4()}/publish", None),
        ("GET", "/goals/stories?status=pending", None),
    ]
    before = await counts(db, active_student.id)
    for method, path, body in routes:
        for caller in (active_student, other):
            response = await goals_client.request(method, path, json=body, headers=caller.headers)
            assert response.status_code == 403, (method, path, response.text)
        response = await goals_client.request(method, path, json=body)
        assert response.status_code == 401, (method, path, response.text)
    assert await counts(db, active_student.id) == before
    assert (await goals_api.profile(active_student))["submission_state"] == "pending"


async def test_a_student_only_ever_sees_their_own_submissions(
    goals_api: GoalsApi, goals_client: Any, active_student: User
) -> None:
    submission = await goals_api.submit(active_student, 250)
    other = make_user("student")
    mine = await goals_client.get("/goals/me/submissions", headers=other.headers)
    assert mine.status_code == 200
    assert mine.json() == {"items": [], "next_cursor": None}
    peek = await goals_client.get(f"/goals/students/{active_student.id}", headers=other.headers)
    assert peek.status_code == 403
    assert submission["id"] not in peek.text


async def test_expired_and_forged_tokens_are_401(goals_client: Any) -> None:
    from community_shared.auth import issue_token

    expired = issue_token(
        sub=uuid.uuid4(),
        role="student",
        name="x",
        secret=JWT_SECRET,
        ttl_seconds=-10,
    )
    forged = issue_token(
        sub=uuid.uuid4(), role="instructor", name="x", secret="wrong-secret-0123456789abcdef0123"
    )
    for token in (expired, forged):
        for method, path in (
            ("GET", "/goals/me"),
            ("GET", "/goals/reviews"),
            ("GET", "/goals/tracks"),
        ):
            response = await goals_client.request(
                method, path, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, (method, path)


async def test_odd_bodies_never_500(
    goals_client: Any, active_student: User, reviewer: User
) -> None:
    odd: list[bytes] = [
        b"",
        b"\x00",
        b"{}",
        b"[]",
        b"null",
        b"1",
        b'"s"',
        b"{" * 1000,
        b'{"amount": 1e999999}',
        '{"title": "\ud800"}'.encode("utf-8", "surrogatepass"),
        b"\xff\xfe",
        b'{"amount": 1, "proof_url": "https://a.io/\\u0000"}',
        b'{"amount": 1, "proof_url": "https://a.io/", "note": "a\\u0000"}',
        b'{"goal_slug": "agency-1k\\u0000"}',
        b'{"reason": "no\\u0000"}',
        b'{"title": "t\\u0000", "story": "a\\u0000b", "anonymous": false}',
        b'{"title": "t", "story": "s", "anonymous": false, "earnings_amount": "1\\u0000"}',
    ]
    targets = [
        ("PUT", "/goals/me/goal", active_student),
        ("POST", "/goals/me/submissions", active_student),
        ("POST", "/goals/stories", active_student),
        ("POST", f"/goals/reviews/{uuid.uuid4()}/reject", reviewer),
    ]
    for method, path, caller in targets:
        for raw in odd:
            response = await goals_client.request(
                method,
                path,
                content=raw,
                headers={**caller.headers, "content-type": "application/json"},
            )
            assert response.status_code < 500, (path, raw, response.text)
            assert response.status_code != 201, (path, raw, response.text)


async def test_a_name_with_a_nul_character_is_stored_without_it(goals_api: GoalsApi) -> None:
    student = make_user("student", name="Ada\x00 L")
    profile = await goals_api.profile(student)
    assert profile["name"] == "Ada L"
    await goals_api.request_goal(student, "agency-1k")


async def test_crafted_cursors_never_500(goals_client: Any, student: User, reviewer: User) -> None:
    """SPEC §3: a cursor of the right shape continues the list; anything else is a 400."""
    from community_shared.pagination import encode_cursor

    well_formed: list[Any] = [
        ["2020-01-01T00:00:00+05:00", str(uuid.uuid4())],
        ["0001-01-01T00:00:00Z", str(uuid.uuid4())],
        ["9999-12-31T23:59:59.999999Z", str(uuid.uuid4())],
    ]
    malformed: list[Any] = [
        ["2020-01-01T00:00:00", str(uuid.uuid4())],  # no zone: no cursor we make
        ["2020-01-01T00:00:00Z"],
        ["2020-01-01T00:00:00Z", "x"],
        [1, 2],
        {"at": "2020-01-01T00:00:00Z"},
        "x",
        None,
    ]
    for keys, expected in ((well_formed, 200), (malformed, 400)):
        for key in keys:
            cursor = encode_cursor(key)
            for path, caller in (
                ("/goals/reviews", reviewer),
                ("/goals/stories", student),
                ("/goals/me/submissions", student),
            ):
                response = await goals_client.get(
                    path, params={"cursor": cursor}, headers=caller.headers
                )
                assert response.status_code == expected, (path, key, response.text)
