"""POST /posts, GET /posts, GET /posts/{id}: creating, reading, filtering, paging."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from community_shared.pagination import encode_cursor

from tests.conftest import make_user


def token() -> str:
    """A word no other post contains (letters only, so text search keeps it whole)."""
    return "tok" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:12])


# --------------------------------------------------------------------------- create


async def test_create_post_returns_the_post_trimmed(api: Any, student: Any) -> None:
    response = await api.client.post(
        "/posts", json={"content": "  Hello community!\n "}, headers=student.headers
    )
    assert response.status_code == 201, response.text
    post = response.json()
    assert post["content"] == "Hello community!"
    assert post["visibility"] == "public"
    assert post["author"] == {
        "id": str(student.id),
        "name": student.name,
        "role": "student",
        "goal": None,
    }
    assert post["is_pinned"] is False
    assert post["likes_count"] == 0 and post["replies_count"] == 0
    assert post["liked_by_me"] is False and post["edited"] is False
    assert post["created_at"].endswith("Z") and post["created_at"] == post["updated_at"]
    uuid.UUID(post["id"])


async def test_create_post_writes_the_event_in_the_outbox(api: Any, student: Any) -> None:
    mark = await api.outbox_mark()
    post = await api.create_post(student, "announcing", visibility="members")
    events = await api.events_since(mark)
    assert [e["type"] for e in events] == ["posts.post.created"]
    envelope = events[0]
    assert envelope["source"] == "posts" and envelope["actor_id"] == str(student.id)
    data = envelope["data"]
    assert data == {
        "id": post["id"],
        "author": {"id": str(student.id), "name": student.name, "role": "student", "goal": None},
        "content": "announcing",
        "visibility": "members",
        "is_pinned": False,
        "likes_count": 0,
        "replies_count": 0,
        "created_at": post["created_at"],
        "updated_at": post["updated_at"],
        "edited": False,
    }


@pytest.mark.parametrize("role", ["instructor", "admin"])
async def test_instructors_and_admins_post(api: Any, role: str) -> None:
    user = make_user(role)
    post = await api.create_post(user)
    assert post["author"]["role"] == role


async def test_content_of_exactly_5000_characters_is_accepted(api: Any, student: Any) -> None:
    post = await api.create_post(student, "  " + "é" * 5000 + "  ")
    assert len(post["content"]) == 5000


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"content": ""}, "content must not be empty"),
        ({"content": "   \n\t "}, "content must not be empty"),
        ({"content": "x" * 5001}, "at most 5000"),
        ({"content": "a\u0000b"}, "NUL"),
        ({"content": 42}, "Expected `str`"),
        ({"content": None}, "Expected `str`"),
        ({"content": ["a"]}, "Expected `str`"),
        ({}, "missing required field `content`"),
        ({"content": "ok", "visibility": "everyone"}, "Invalid enum value"),
        ({"content": "ok", "visibility": 1}, "Expected `str`"),
        ([{"content": "ok"}], "Expected `object`"),
        ("content", "Expected `object`"),
    ],
)
async def test_bad_post_bodies_are_400_and_write_nothing(
    api: Any, unchanged: Any, student: Any, body: Any, fragment: str
) -> None:
    async with unchanged():
        response = await api.client.post("/posts", json=body, headers=student.headers)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["status_code"] == 400
    assert fragment in problem["detail"] + str(problem.get("extra", ""))


@pytest.mark.parametrize("raw", [b"{bad json", b"", b"null", b'{"content": "\\ud800"}'])
async def test_malformed_json_is_400(api: Any, unchanged: Any, student: Any, raw: bytes) -> None:
    async with unchanged():
        response = await api.client.post(
            "/posts",
            content=raw,
            headers={**student.headers, "Content-Type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


async def test_body_too_large_is_413(api: Any, unchanged: Any, student: Any) -> None:
    async with unchanged():
        response = await api.client.post(
            "/posts", json={"content": "x" * 300_000}, headers=student.headers
        )
    assert response.status_code == 413


async def test_guests_cannot_post(api: Any, unchanged: Any) -> None:
    async with unchanged():
        response = await api.client.post("/posts", json={"content": "hi"})
    assert response.status_code == 401
    assert response.json()["detail"]


async def test_a_guest_with_a_bad_body_still_gets_401(api: Any, unchanged: Any) -> None:
    async with unchanged():
        response = await api.client.post(
            "/posts", content=b"{bad", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Basic abc", "Bearer ", "Bearer a.b.c"],
)
async def test_bad_tokens_are_401(api: Any, unchanged: Any, authorization: str) -> None:
    async with unchanged():
        response = await api.client.post(
            "/posts", json={"content": "hi"}, headers={"Authorization": authorization}
        )
    assert response.status_code == 401


async def test_expired_and_forged_tokens_are_401(api: Any, unchanged: Any) -> None:
    from community_shared.auth import issue_token

    expired = make_user(ttl=-10)
    forged = issue_token(sub=uuid.uuid4(), role="student", name="x", secret="wrong-secret")
    async with unchanged():
        for token_ in (expired.token, forged):
            response = await api.client.post(
                "/posts", json={"content": "hi"}, headers={"Authorization": f"Bearer {token_}"}
            )
            assert response.status_code == 401
    # Reads too: a bad token is refused rather than read as a guest.
    assert (await api.client.get("/posts", headers=expired.headers)).status_code == 401


async def test_non_members_cannot_post(api: Any, unchanged: Any, non_member: Any) -> None:
    async with unchanged():
        response = await api.client.post(
            "/posts", json={"content": "hi"}, headers=non_member.headers
        )
    assert response.status_code == 403


# --------------------------------------------------------------------------- read one


async def test_get_post_with_no_replies(api: Any, student: Any) -> None:
    post = await api.create_post(student)
    got = await api.get_post(post["id"])
    assert got["replies"] == []
    assert {k: v for k, v in got.items() if k != "replies"} == post


async def test_unknown_and_malformed_ids_are_404(api: Any) -> None:
    assert (await api.client.get(f"/posts/{uuid.uuid4()}")).status_code == 404
    response = await api.client.get("/posts/not-a-uuid")
    assert response.status_code == 404
    assert response.json()["detail"]


async def test_members_only_post_is_hidden_from_guests_and_non_members(
    api: Any, student: Any, non_member: Any
) -> None:
    post = await api.create_post(student, visibility="members")
    assert (await api.client.get(f"/posts/{post['id']}")).status_code == 404
    hidden = await api.client.get(f"/posts/{post['id']}", headers=non_member.headers)
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "post not found"  # same answer as a missing post
    seen = await api.client.get(f"/posts/{post['id']}", headers=make_user().headers)
    assert seen.status_code == 200


# --------------------------------------------------------------------------- lists


async def page_all(api: Any, url: str, user: Any = None, limit: int = 100) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    sep = "&" if "?" in url else "?"
    while True:
        query = f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = await api.client.get(query, headers=user.headers if user else None)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_feed_is_newest_first_and_guests_see_public_posts_only(
    api: Any, student: Any
) -> None:
    word = token()
    public = await api.create_post(student, f"{word} public")
    members = await api.create_post(student, f"{word} members", visibility="members")
    newer = await api.create_post(student, f"{word} newer")

    as_member = (await api.client.get(f"/posts?q={word}", headers=make_user().headers)).json()
    assert [p["id"] for p in as_member["items"]] == [newer["id"], members["id"], public["id"]]
    assert as_member["next_cursor"] is None

    as_guest = (await api.client.get(f"/posts?q={word}")).json()
    assert [p["id"] for p in as_guest["items"]] == [newer["id"], public["id"]]

    # A student without membership reads like a guest, except for their own posts.
    outsider = make_user(member=False)
    as_outsider = (await api.client.get(f"/posts?q={word}", headers=outsider.headers)).json()
    assert [p["id"] for p in as_outsider["items"]] == [newer["id"], public["id"]]

    everything = await page_all(api, "/posts", user=make_user())
    ids = [p["id"] for p in everything]
    assert members["id"] in ids and len(ids) == len(set(ids))
    guest_ids = {p["id"] for p in await page_all(api, "/posts", user=None)}
    assert members["id"] not in guest_ids and public["id"] in guest_ids
    assert all(p["visibility"] == "public" for p in await page_all(api, "/posts?q=" + word))


async def test_filter_mine_and_instructors(
    api: Any, student: Any, instructor: Any, admin: Any
) -> None:
    word = token()
    mine = await api.create_post(student, f"{word} mine", visibility="members")
    by_instructor = await api.create_post(instructor, f"{word} from an instructor")
    by_admin = await api.create_post(admin, f"{word} from an admin")
    await api.create_post(make_user(), f"{word} someone else")

    got = (await api.client.get(f"/posts?filter=mine&q={word}", headers=student.headers)).json()
    assert [p["id"] for p in got["items"]] == [mine["id"]]

    got = (await api.client.get(f"/posts?filter=instructors&q={word}")).json()
    assert [p["id"] for p in got["items"]] == [by_admin["id"], by_instructor["id"]]

    every_mine = await page_all(api, "/posts?filter=mine", user=student)
    assert {p["author"]["id"] for p in every_mine} == {str(student.id)}
    all_instructors = await page_all(api, "/posts?filter=instructors")
    assert {p["author"]["role"] for p in all_instructors} <= {"instructor", "admin"}


async def test_filter_mine_needs_a_signed_in_user(api: Any) -> None:
    assert (await api.client.get("/posts?filter=mine")).status_code == 401


async def test_non_members_see_their_own_members_only_posts(api: Any, db: Any) -> None:
    outsider = make_user(member=False)
    post = await api.create_post(make_user(), "placeholder")
    # Their membership lapsed after they posted for members.
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE posts.posts SET author_id = $1, visibility = 'members' WHERE id = $2",
            outsider.id,
            uuid.UUID(post["id"]),
        )
    got = (await api.client.get("/posts?filter=mine", headers=outsider.headers)).json()
    assert [p["id"] for p in got["items"]] == [post["id"]]
    assert (
        await api.client.get(f"/posts/{post['id']}", headers=outsider.headers)
    ).status_code == 200


async def test_search_matches_words_and_stems(api: Any, student: Any) -> None:
    word = token()
    first = await api.create_post(student, f"{word} Landing my first clients with cold emails")
    second = await api.create_post(student, f"{word} pricing a retainer")

    async def search(q: str) -> list[str]:
        response = await api.client.get("/posts", params={"q": q})
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["items"]]

    assert await search(f"{word} client") == [first["id"]]  # stemmed: clients ~ client
    assert await search(f"{word} EMAIL") == [first["id"]]  # case-insensitive
    assert await search(f'{word} "cold emails"') == [first["id"]]  # phrase
    assert await search(f"{word} -retainer") == [first["id"]]  # exclusion
    assert await search(f"{word} or retainer") == [second["id"], first["id"]]
    assert await search(f"{word} retainer") == [second["id"]]
    assert await search(f"{word} nothingmatches") == []
    assert await search("the") == []  # only stop words: nothing to match
    assert sorted(await search(f"  {word}  ")) == sorted([first["id"], second["id"]])
    # Blank q means no search.
    assert (await api.client.get("/posts", params={"q": "   "})).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "cursor=not-a-cursor",
        "cursor=" + "A" * 10,
        "cursor=WzEsMiwzXQ",  # [1,2,3]
        "cursor=WyJ4Il0",  # ["x"]
        "cursor=" + encode_cursor([False, "2024-01-01T00:00:00", str(uuid.UUID(int=0))]),  # naive
        "filter=everyone",
        "q=" + "x" * 201,
        "q=%00",
    ],
)
async def test_bad_list_queries_are_400(api: Any, query: str) -> None:
    response = await api.client.get(f"/posts?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


async def test_limit_bounds_are_accepted(api: Any, student: Any) -> None:
    await api.create_post(student)
    for limit in (1, 100):
        body = (await api.client.get(f"/posts?limit={limit}")).json()
        assert 1 <= len(body["items"]) <= limit
    default = (await api.client.get("/posts")).json()
    assert len(default["items"]) <= 20


async def test_paging_while_posts_arrive_never_repeats_or_skips(api: Any) -> None:
    word = token()
    authors = [make_user() for _ in range(4)]
    existing = []
    for i in range(16):
        existing.append(await api.create_post(authors[i % 4], f"{word} number {i}"))
    expected = [p["id"] for p in reversed(existing)]

    seen: list[str] = []
    cursor = None
    newcomers = [make_user() for _ in range(3)]
    while True:
        url = f"/posts?q={word}&limit=5" + (f"&cursor={cursor}" if cursor else "")
        body = (await api.client.get(url)).json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        # New posts arrive between pages (some match the search, some not).
        await asyncio.gather(*(api.create_post(u, f"{word} late arrival") for u in newcomers))
        await api.create_post(newcomers[0], "unrelated")
        if cursor is None:
            break
    assert seen == expected


async def test_paging_the_whole_feed_while_posts_arrive(api: Any) -> None:
    before = {p["id"] for p in await page_all(api, "/posts", limit=100)}
    seen: list[str] = []
    cursor = None
    writer = make_user()
    while True:
        url = "/posts?limit=7" + (f"&cursor={cursor}" if cursor else "")
        body = (await api.client.get(url)).json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if len(seen) < 40:
            await api.create_post(writer if len(seen) < 30 else make_user())
        if cursor is None:
            break
    assert len(seen) == len(set(seen))  # never repeats
    assert before <= set(seen)  # never skips
    keys = [(p["is_pinned"], p["created_at"], p["id"]) for p in (await page_all(api, "/posts"))]
    assert keys == sorted(keys, reverse=True)


async def test_liked_by_me_in_lists(api: Any, student: Any) -> None:
    word = token()
    post = await api.create_post(student, word)
    liker = make_user()
    assert (
        await api.client.put(f"/posts/{post['id']}/like", headers=liker.headers)
    ).status_code == 200
    mine = (await api.client.get(f"/posts?q={word}", headers=liker.headers)).json()["items"][0]
    theirs = (await api.client.get(f"/posts?q={word}", headers=student.headers)).json()["items"][0]
    guest = (await api.client.get(f"/posts?q={word}")).json()["items"][0]
    assert (mine["liked_by_me"], theirs["liked_by_me"], guest["liked_by_me"]) == (
        True,
        False,
        False,
    )
    assert mine["likes_count"] == 1
    assert (await api.get_post(post["id"], liker))["liked_by_me"] is True
