"""Every `POST` that creates something is safe to retry with an `Idempotency-Key` (SPEC §3).

Each test runs against every creating route of every service (real Postgres,
NATS JetStream, Redis): a retry answers the first response again and creates
nothing, neither a row nor an event in JetStream; the key with another body is
422; a malformed key is 400 and writes nothing; two concurrent requests with
one key create once; keys are per caller.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from community_shared.idempotency import delete_expired
from community_shared.settings import Settings
from community_shared.streams import EVENTS_STREAM
from nats.js.errors import NotFoundError

from tests.conftest import User, eventually, make_user

Clients = dict[str, httpx.AsyncClient]


@dataclass(frozen=True)
class Route:
    """A creating route: how to reach it, what it writes and announces."""

    name: str
    service: str
    role: str
    prepare: Callable[[Clients, User], Awaitable[str]]  # -> the path to POST to
    body: Callable[[int], dict[str, Any]]  # variant n of a valid body
    rows: str  # SQL counting the caller's ($1) created rows
    subject: str | None  # the event announcing the creation (links announce none)
    id_field: str = "id"


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _post_path(clients: Clients, _: User) -> str:
    return "/posts"


async def _someone_elses_post(clients: Clients, _: User) -> str:
    author = make_user("student")
    post = await _ok(
        await clients["posts"].post("/posts", json={"content": "a post"}, headers=author.headers),
        201,
    )
    return f"/posts/{post['id']}"


async def _replies_path(clients: Clients, user: User) -> str:
    return await _someone_elses_post(clients, user) + "/replies"


async def _reports_path(clients: Clients, user: User) -> str:
    return await _someone_elses_post(clients, user) + "/reports"


async def _active_goal(clients: Clients, student: User) -> str:
    goals, instructor = clients["goals"], make_user("instructor")
    await _ok(
        await goals.put("/goals/me/goal", json={"goal_slug": "agency-1k"}, headers=student.headers)
    )
    profile = await _ok(await goals.get("/goals/me", headers=student.headers))
    review_id = profile["goal_request"]["id"]
    await _ok(await goals.post(f"/goals/reviews/{review_id}/approve", headers=instructor.headers))
    return "/goals/me/submissions"


async def _stories_path(clients: Clients, _: User) -> str:
    return "/goals/stories"


async def _resources_path(clients: Clients, _: User) -> str:
    return "/resources"


def _resource(n: int) -> dict[str, Any]:
    return {
        "title": f"Cold outreach playbook {n}",
        "type": "guide",
        "category": "client-acquisition",
        "file_url": "https://files.example.com/playbook.pdf",
    }


async def _links_path(clients: Clients, _: User) -> str:
    instructor = make_user("instructor")
    resource = await _ok(
        await clients["resources"].post(
            "/resources", json=_resource(0), headers=instructor.headers
        ),
        201,
    )
    return f"/resources/{resource['id']}/links"


ROUTES = [
    Route(
        "post",
        "posts",
        "student",
        _post_path,
        lambda n: {"content": f"hello {n}"},
        "SELECT count(*) FROM posts.posts WHERE author_id = $1",
        "posts.post.created",
    ),
    Route(
        "reply",
        "posts",
        "student",
        _replies_path,
        lambda n: {"content": f"a reply {n}"},
        "SELECT count(*) FROM posts.replies WHERE author_id = $1",
        "posts.reply.created",
    ),
    Route(
        "report",
        "posts",
        "student",
        _reports_path,
        lambda n: {"reason": "spam", "details": f"seen {n} times"},
        "SELECT count(*) FROM posts.reports WHERE reporter_id = $1",
        "posts.report.created",
    ),
    Route(
        "submission",
        "goals",
        "student",
        _active_goal,
        lambda n: {"amount": f"{100 + n}.50", "proof_url": "https://example.com/proof.png"},
        "SELECT count(*) FROM goals.reviews WHERE student_id = $1 AND kind = 'revenue_submission'",
        "goals.submission.created",
    ),
    Route(
        "story",
        "goals",
        "student",
        _stories_path,
        lambda n: {"title": f"My first client {n}", "story": "It worked.", "anonymous": False},
        "SELECT count(*) FROM goals.stories WHERE author_id = $1",
        "goals.story.created",
    ),
    Route(
        "resource",
        "resources",
        "instructor",
        _resources_path,
        _resource,
        "SELECT count(*) FROM resources.resources WHERE created_by = $1",
        "resources.resource.created",
    ),
    Route(
        "link",
        "resources",
        "instructor",
        _links_path,
        lambda n: {"entity_type": "course", "entity_id": str(uuid.UUID(int=n + 1))},
        "SELECT count(*) FROM resources.links WHERE created_by = $1",
        None,
    ),
]


@pytest.fixture(params=ROUTES, ids=lambda route: route.name)
def route(request: pytest.FixtureRequest) -> Route:
    param: Route = request.param
    return param


def keyed(user: User, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


@dataclass(frozen=True)
class Attempt:
    """A fresh caller of a route, with the path and a new key to send."""

    user: User
    client: httpx.AsyncClient
    path: str
    headers: dict[str, str]

    async def send(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(self.path, json=body, headers=self.headers)


async def attempt(route: Route, clients: Clients) -> Attempt:
    user = make_user(route.role)
    path = await route.prepare(clients, user)
    return Attempt(user, clients[route.service], path, keyed(user, f"k-{uuid.uuid4()}"))


async def created_rows(db: asyncpg.Pool, route: Route, user: User) -> int:
    count: int = await db.fetchval(route.rows, user.id)
    return count


class Announcements:
    """Counts the events of one JetStream subject that mention an id."""

    def __init__(self, nats_client: Any, settings: Settings, db: asyncpg.Pool) -> None:
        self._js = nats_client.jetstream()
        self._settings = settings
        self._db = db
        self._stream = settings.stream_name(EVENTS_STREAM)
        self._from = 1

    async def mark(self) -> None:
        info = await self._js.stream_info(self._stream)
        self._from = info.state.last_seq + 1

    async def in_jetstream(self, subject: str, needle: str) -> int:
        found, seq = 0, self._from
        while True:
            try:
                msg = await self._js.get_msg(
                    self._stream, seq=seq, subject=self._settings.subject(subject), next=True
                )
            except NotFoundError:
                return found
            found += needle.encode() in msg.data
            seq = msg.seq + 1

    async def in_outbox(self, schema: str, needle: str) -> tuple[int, int]:
        """(rows, published rows) of the outbox that mention `needle`."""
        row = await self._db.fetchrow(
            f"SELECT count(*) AS n, count(published_at) AS published FROM {schema}.outbox"
            " WHERE position($1::bytea in payload) > 0",
            needle.encode(),
        )
        return row["n"], row["published"]

    async def exactly_once(self, route: Route, needle: str) -> None:
        """The creation of `needle` was written to the outbox once and published once."""
        if route.subject is None:
            assert await self.in_outbox(route.service, needle) == (0, 0)
            return
        subject = route.subject

        async def published() -> bool:
            rows, done = await self.in_outbox(route.service, needle)
            return rows == done == 1 and await self.in_jetstream(subject, needle) >= 1

        await eventually(published, timeout=10)
        assert await self.in_jetstream(subject, needle) == 1


@pytest.fixture
async def announcements(
    nats_client: Any, settings_for: Callable[..., Settings], db: asyncpg.Pool, clients: Clients
) -> Announcements:
    found = Announcements(nats_client, settings_for("posts"), db)
    await found.mark()
    return found


async def test_a_retry_answers_the_first_response_and_creates_nothing(
    route: Route, clients: Clients, db: asyncpg.Pool, announcements: Announcements
) -> None:
    first_try = await attempt(route, clients)

    first = await first_try.send(route.body(1))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await first_try.send(route.body(1))

    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"].startswith("application/json")
    assert again.content == first.content
    assert await created_rows(db, route, first_try.user) == 1
    await announcements.exactly_once(route, first.json()[route.id_field])


async def test_the_key_with_a_different_body_is_422(
    route: Route, clients: Clients, db: asyncpg.Pool
) -> None:
    first_try = await attempt(route, clients)
    assert (await first_try.send(route.body(1))).status_code == 201

    other = await first_try.send(route.body(2))

    assert other.status_code == 422, other.text
    assert other.json()["status_code"] == 422
    assert await created_rows(db, route, first_try.user) == 1


MALFORMED_KEYS = ["", "x" * 129, "caf\u00e9", "tab\there", "new\u2028line"]


async def test_a_malformed_key_is_400_and_writes_nothing(
    route: Route, clients: Clients, db: asyncpg.Pool
) -> None:
    user = make_user(route.role)
    client = clients[route.service]
    path = await route.prepare(clients, user)
    for key in MALFORMED_KEYS:
        headers: dict[str, Any] = {**user.headers, "Idempotency-Key": key.encode("utf-8")}

        refused = await client.post(path, json=route.body(1), headers=headers)

        assert refused.status_code == 400, (key, refused.text)
    assert await created_rows(db, route, user) == 0
    stored = await db.fetchval(
        f"SELECT count(*) FROM {route.service}.idempotency_keys WHERE user_id = $1", user.id
    )
    assert stored == 0


async def test_concurrent_requests_with_one_key_create_once(
    route: Route, clients: Clients, db: asyncpg.Pool, announcements: Announcements
) -> None:
    first_try = await attempt(route, clients)

    answers = await asyncio.gather(*(first_try.send(route.body(1)) for _ in range(3)))

    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    replayed = [a.headers.get("idempotent-replayed") for a in answers]
    assert sorted(replayed, key=str) == [None, "true", "true"]
    assert len({a.content for a in answers}) == 1
    assert await created_rows(db, route, first_try.user) == 1
    await announcements.exactly_once(route, answers[0].json()[route.id_field])


async def test_callers_use_keys_independently(
    route: Route, clients: Clients, db: asyncpg.Pool
) -> None:
    first_user, second_user = make_user(route.role), make_user(route.role)
    client = clients[route.service]
    path = await route.prepare(clients, first_user)
    await route.prepare(clients, second_user)  # e.g. the second student's active goal
    for n, user in enumerate((first_user, second_user)):
        # Bodies differ only where the route forbids twins (one link per entity).
        answer = await client.post(path, json=route.body(n), headers=keyed(user, "my-key"))
        assert answer.status_code == 201, answer.text
        assert "idempotent-replayed" not in answer.headers
        assert await created_rows(db, route, user) == 1


async def test_without_a_key_every_request_creates(clients: Clients, db: asyncpg.Pool) -> None:
    user = make_user("student")
    for _ in range(2):
        await _ok(
            await clients["posts"].post("/posts", json={"content": "hi"}, headers=user.headers), 201
        )
    assert await created_rows(db, ROUTES[0], user) == 2


async def test_a_refused_request_stores_no_key_and_its_retry_runs_again(
    clients: Clients, db: asyncpg.Pool
) -> None:
    user = make_user("student")
    headers = keyed(user, "reply-once")
    path = f"/posts/{uuid.uuid4()}/replies"  # no such post: 404
    for _ in range(2):
        missing = await clients["posts"].post(path, json={"content": "hi"}, headers=headers)
        assert missing.status_code == 404
        assert "idempotent-replayed" not in missing.headers
    stored = await db.fetchval(
        "SELECT count(*) FROM posts.idempotency_keys WHERE user_id = $1", user.id
    )
    assert stored == 0


async def test_a_key_older_than_a_day_is_forgotten_and_cleaned_up(
    clients: Clients, db: asyncpg.Pool
) -> None:
    user = make_user("student")
    headers = keyed(user, "yesterday")
    first = await _ok(
        await clients["posts"].post("/posts", json={"content": "hi"}, headers=headers), 201
    )
    await db.execute(
        "UPDATE posts.idempotency_keys SET created_at = now() - interval '24 hours 1 second'"
        " WHERE user_id = $1",
        user.id,
    )

    late = await clients["posts"].post("/posts", json={"content": "hi"}, headers=headers)

    assert late.status_code == 201
    assert "idempotent-replayed" not in late.headers
    assert late.json()["id"] != first["id"]
    assert await created_rows(db, ROUTES[0], user) == 2
    # The late request took the key over: it is fresh again and replays.
    again = await clients["posts"].post("/posts", json={"content": "hi"}, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == late.json()["id"]

    await db.execute(
        "UPDATE posts.idempotency_keys SET created_at = now() - interval '25 hours'"
        " WHERE user_id = $1",
        user.id,
    )
    assert await delete_expired(db, "posts") >= 1
    assert (
        await db.fetchval("SELECT count(*) FROM posts.idempotency_keys WHERE user_id = $1", user.id)
        == 0
    )


async def test_every_creating_route_documents_the_key_and_the_422(clients: Clients) -> None:
    creating = {
        "posts": ["/posts", "/posts/{post_id}/replies", "/posts/{post_id}/reports"],
        "goals": ["/goals/me/submissions", "/goals/stories"],
        "resources": ["/resources", "/resources/{resource_id}/links"],
    }
    for service, paths in creating.items():
        document = await _ok(await clients[service].get("/schema/openapi.json"))
        for path in paths:
            operation = document["paths"][path]["post"]
            headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
            assert "Idempotency-Key" in headers, (service, path)
            schema = headers["Idempotency-Key"]["schema"]
            assert (schema["minLength"], schema["maxLength"]) == (1, 128)
            assert "422" in operation["responses"], (service, path)
