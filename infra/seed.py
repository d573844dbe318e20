"""Fill the demo community (`python -m infra.seed`, also run by `./run stack`).

Everything goes through the services' public HTTP APIs (SPEC §4-§7) with
development tokens signed with `JWT_SECRET` for the demo people of
`infra.demo_data`, so the seed exercises the same paths as real clients and
every change is announced on NATS like any other. Learning events, which come
from the course platform in production, are published straight to JetStream
with stable ids (a republish is dropped by the stream and by the consumers).

Idempotent enough to run twice: a section whose demo data is already there is
skipped (`--force` replays the posts, resources and stories sections anyway;
the goals section always continues from the students' current state). A
service that is not running, or a route it does not answer yet, is reported
and skipped; the rest of the seed goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import nats
from community_shared.auth import issue_token
from community_shared.events import encode_envelope, make_event
from community_shared.settings import Settings
from community_shared.streams import ensure_event_stream
from nats.aio.client import Client as NATS

from infra.demo_data import (
    GOAL_PLANS,
    INSTRUCTORS,
    POSTS,
    RESOURCES,
    SHOWCASE,
    STORIES,
    DemoLink,
    DemoSubmission,
    DemoUser,
    GoalPlan,
    demo_id,
    learning_events,
    user,
)

SERVICE_PORTS = {"posts": 8001, "resources": 8002, "goals": 8003, "leaderboard": 8004}
TOKEN_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ServiceUrls:
    posts: str
    resources: str
    goals: str
    leaderboard: str

    @classmethod
    def local(cls, host: str = "127.0.0.1", port_offset: int = 0) -> ServiceUrls:
        """The services of a local stack (SPEC ports, shifted by `port_offset`)."""
        return cls(**{n: f"http://{host}:{p + port_offset}" for n, p in SERVICE_PORTS.items()})

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceUrls:
        """`POSTS_URL`, `RESOURCES_URL`, `GOALS_URL`, `LEADERBOARD_URL`, else the local stack."""
        local = cls.local()
        return cls(
            **{
                name: env.get(f"{name.upper()}_URL", getattr(local, name)).rstrip("/")
                for name in SERVICE_PORTS
            }
        )


def demo_token(person: DemoUser, secret: str, ttl_seconds: int = TOKEN_TTL_SECONDS) -> str:
    return issue_token(
        sub=person.id, role=person.role, name=person.name, secret=secret, ttl_seconds=ttl_seconds
    )


class SeedError(Exception):
    """A service answered something the seed cannot go on from."""


class Api:
    """A thin HTTP client acting as one demo person or another."""

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self._secret = secret
        self._tokens: dict[str, str] = {}

    async def running(self, base: str) -> bool:
        try:
            return (await self._client.get(f"{base}/health")).status_code == 200
        except httpx.HTTPError:
            return False

    async def call(
        self,
        method: str,
        url: str,
        *,
        person: DemoUser | None = None,
        body: object = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer, or `SeedError` for a non-2xx."""
        headers = {}
        if person is not None:
            if person.name not in self._tokens:
                self._tokens[person.name] = demo_token(person, self._secret)
            headers["Authorization"] = f"Bearer {self._tokens[person.name]}"
        try:
            response = await self._client.request(
                method,
                url,
                headers=headers,
                params=params,
                content=None if body is None else msgspec.json.encode(body),
            )
        except httpx.HTTPError as exc:
            raise SeedError(f"{method} {url}: {exc or type(exc).__name__}") from exc
        if response.status_code >= 300:
            detail = response.text[:200].replace("\n", " ")
            raise SeedError(
                f"{method} {httpx.URL(url).path} answered {response.status_code} {detail}"
            )
        return response.json() if response.content else None

    async def pages(
        self, url: str, *, person: DemoUser | None = None, params: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paged list (SPEC §3 cursors)."""
        items: list[dict[str, Any]] = []
        query: dict[str, str | int] = {**(params or {}), "limit": 100}
        while True:
            page = await self.call("GET", url, person=person, params=query)
            items.extend(page["items"])
            if not page.get("next_cursor"):
                return items
            query["cursor"] = page["next_cursor"]


@dataclass
class Section:
    """What one section did, and the first failure of each kind of action."""

    name: str
    counts: Counter[str] = field(default_factory=Counter)
    problems: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    async def attempt(self, action: str, call: Awaitable[Any]) -> Any:
        """Run `call`; on `SeedError` remember why and return None (the seed goes on)."""
        try:
            result = await call
        except SeedError as exc:
            self.problems.setdefault(action, str(exc))
            return None
        self.counts[action] += 1
        return result

    def summary(self) -> str:
        parts = [f"{action}: {count}" for action, count in self.counts.items()]
        text = f"{self.name}: " + (self.note or ", ".join(parts) or "nothing done")
        for action, problem in self.problems.items():
            text += f"\n    {action} failed: {problem}"
        return text


# --------------------------------------------------------------------------- posts


async def find_post_id(api: Api, base: str, author: str, content: str) -> str | None:
    """The id of a demo post, found in its author's own posts."""
    with contextlib.suppress(SeedError, KeyError):
        for post in await api.pages(
            f"{base}/posts", person=user(author), params={"filter": "mine"}
        ):
            if post.get("content") == content:
                return str(post["id"])
    return None


async def seed_posts(api: Api, base: str, *, force: bool) -> Section:
    section = Section("posts")
    first = POSTS[0]
    if not force and await find_post_id(api, base, first.author, first.content):
        section.note = "demo posts already there, skipped"
        return section
    for post in POSTS:
        created = await section.attempt(
            "post",
            api.call(
                "POST",
                f"{base}/posts",
                person=user(post.author),
                body={"content": post.content, "visibility": post.visibility},
            ),
        )
        if created is None:
            continue
        url = f"{base}/posts/{created['id']}"
        if post.pinned:
            await section.attempt("pin", api.call("PUT", f"{url}/pin", person=INSTRUCTORS[0]))
        reply_ids: list[str | None] = []
        for reply in post.replies:
            body: dict[str, object] = {"content": reply.content}
            if reply.reply_to is not None and reply_ids[reply.reply_to] is not None:
                body["reply_to_id"] = reply_ids[reply.reply_to]
            made = await section.attempt(
                "reply", api.call("POST", f"{url}/replies", person=user(reply.author), body=body)
            )
            reply_ids.append(None if made is None else str(made["id"]))
        for liker in post.likers:
            await section.attempt("like", api.call("PUT", f"{url}/like", person=user(liker)))
        if post.reported_by:
            await section.attempt(
                "report",
                api.call(
                    "POST",
                    f"{url}/reports",
                    person=user(post.reported_by),
                    body={"reason": "spam", "details": "Advertising unrelated services."},
                ),
            )
    return section


# --------------------------------------------------------------------------- resources


async def _link_entity_id(api: Api, posts_base: str, link: DemoLink) -> str | None:
    if link.entity_type == "community_post":
        post = POSTS[int(link.entity_key)]
        return await find_post_id(api, posts_base, post.author, post.content)
    return str(demo_id(link.entity_type, link.entity_key))


async def seed_resources(api: Api, base: str, posts_base: str, *, force: bool) -> Section:
    section = Section("resources")
    staff = INSTRUCTORS[0]
    first = RESOURCES[0].title
    if not force:
        with contextlib.suppress(SeedError, KeyError):
            found = await api.call("GET", f"{base}/resources", person=staff, params={"q": first})
            if any(item.get("title") == first for item in found["items"]):
                section.note = "demo resources already there, skipped"
                return section
    for resource in RESOURCES:
        created = await section.attempt(
            "resource",
            api.call("POST", f"{base}/resources", person=staff, body=resource.body()),
        )
        if created is None:
            continue
        url = f"{base}/resources/{created['id']}"
        if resource.featured:
            await section.attempt(
                "feature", api.call("PATCH", url, person=staff, body={"is_featured": True})
            )
        for order, link in enumerate(resource.links):
            entity_id = await _link_entity_id(api, posts_base, link)
            if entity_id is None:  # posts not running (yet): the resource stands alone
                section.counts["link skipped, no demo post"] += 1
                continue
            body: dict[str, object] = {
                "entity_type": link.entity_type,
                "entity_id": entity_id,
                "display_order": order,
            }
            if link.timestamp_seconds is not None:
                body["timestamp_seconds"] = link.timestamp_seconds
            if link.label is not None:
                body["label"] = link.label
            await section.attempt("link", api.call("POST", f"{url}/links", person=staff, body=body))
        for name in resource.downloaded_by:
            await section.attempt(
                "download", api.call("POST", f"{url}/download", person=user(name), body={})
            )
        for name, rating in resource.ratings:
            await section.attempt(
                "rating",
                api.call("PUT", f"{url}/rating", person=user(name), body={"rating": rating}),
            )
    return section


# --------------------------------------------------------------------------- goals


async def _pending_reviews(api: Api, base: str, kind: str) -> dict[str, str]:
    """Pending reviews of one kind, by student id."""
    reviews = await api.pages(
        f"{base}/goals/reviews", person=INSTRUCTORS[0], params={"status": "pending"}
    )
    return {str(r["student"]["id"]): str(r["id"]) for r in reviews if r.get("kind") == kind}


async def seed_goals(api: Api, base: str) -> Section:
    """Goal requests, approvals and revenue submissions, continuing from current state.

    A student who already has a goal is not asked again; a student who already
    submitted revenue gets no new submissions. So a second run changes nothing.
    """
    section = Section("goals")
    fresh: list[GoalPlan] = []  # plans whose student has no submission yet
    for plan in GOAL_PLANS:
        me = await section.attempt(
            "profile read", api.call("GET", f"{base}/goals/me", person=plan.student)
        )
        if me is None:
            continue
        if me.get("goal_status") == "none":
            await section.attempt(
                "goal request",
                api.call(
                    "PUT",
                    f"{base}/goals/me/goal",
                    person=plan.student,
                    body={"goal_slug": plan.goal_slug},
                ),
            )
        history = await section.attempt(
            "history read", api.call("GET", f"{base}/goals/me/submissions", person=plan.student)
        )
        if history is not None and not history["items"]:
            fresh.append(plan)

    requests = await section.attempt("queue read", _pending_reviews(api, base, "goal_request"))
    for plan in GOAL_PLANS:
        review_id = (requests or {}).get(str(plan.student.id))
        if plan.approve_goal and review_id:
            await section.attempt(
                "goal approval",
                api.call(
                    "POST", f"{base}/goals/reviews/{review_id}/approve", person=INSTRUCTORS[0]
                ),
            )

    # Submissions go in rounds: a student has at most one pending at a time.
    rounds = max((len(plan.submissions) for plan in fresh), default=0)
    for round_ in range(rounds):
        submitted: list[tuple[GoalPlan, DemoSubmission]] = []
        for plan in fresh:
            if round_ >= len(plan.submissions):
                continue
            sub = plan.submissions[round_]
            body: dict[str, object] = {
                "amount": sub.amount,
                "proof_url": sub.proof_url(plan.student, round_),
            }
            if sub.note:
                body["note"] = sub.note
            made = await section.attempt(
                "submission",
                api.call("POST", f"{base}/goals/me/submissions", person=plan.student, body=body),
            )
            if made is not None:
                submitted.append((plan, sub))
        queue = await section.attempt(
            "queue read", _pending_reviews(api, base, "revenue_submission")
        )
        for index, (plan, sub) in enumerate(submitted):
            review_id = (queue or {}).get(str(plan.student.id))
            reviewer = INSTRUCTORS[index % len(INSTRUCTORS)]
            if review_id is None or sub.decision == "pending":
                continue
            url = f"{base}/goals/reviews/{review_id}/{sub.decision}"
            body = {"reason": sub.reason} if sub.decision == "reject" else {}
            await section.attempt(
                f"submission {sub.decision}",
                api.call("POST", url, person=reviewer, body=body),
            )
        fresh = [
            p for p in fresh if all(s.decision != "pending" for s in p.submissions[: round_ + 1])
        ]
    return section


async def seed_stories(api: Api, base: str, *, force: bool) -> Section:
    section = Section("stories")
    if not force:
        with contextlib.suppress(SeedError, KeyError):
            published = await api.pages(f"{base}/goals/stories")
            titles = {story.get("title") for story in published}
            if any(story.title in titles for story in STORIES):
                section.note = "demo stories already there, skipped"
                return section
    for story in STORIES:
        body: dict[str, object] = {
            "title": story.title,
            "story": story.story,
            "anonymous": story.anonymous,
        }
        if story.earnings_amount is not None:
            body["earnings_amount"] = story.earnings_amount
        created = await section.attempt(
            "story", api.call("POST", f"{base}/goals/stories", person=story.author, body=body)
        )
        if created is not None and story.publish:
            await section.attempt(
                "story publish",
                api.call(
                    "POST", f"{base}/goals/stories/{created['id']}/publish", person=INSTRUCTORS[1]
                ),
            )
    return section


# --------------------------------------------------------------------------- learning events


async def publish_learning_events(settings: Settings) -> Section:
    """Publish the course platform's events to JetStream (SPEC §7), ids stable."""
    section = Section("learning events")
    try:
        nc: NATS = await nats.connect(
            servers=settings.nats_servers,
            connect_timeout=2,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
    except Exception as exc:
        section.note = f"NATS not reachable at {settings.nats_url} ({exc}), skipped"
        return section
    try:
        js = nc.jetstream()
        await ensure_event_stream(js, settings)
        for event in learning_events(dt.datetime.now(dt.UTC)):
            envelope = make_event(
                event.type,
                event.data,
                source="learning",
                actor_id=event.user_id,
                event_id=event.event_id,
                occurred_at=event.occurred_at,
            )
            ack = await js.publish(
                settings.subject(event.type),
                encode_envelope(envelope),
                timeout=5,
                headers={"Nats-Msg-Id": str(event.event_id)},
            )
            section.counts["duplicate (already published)" if ack.duplicate else event.type] += 1
    finally:
        await nc.drain()
    return section


# --------------------------------------------------------------------------- the whole seed


async def seed(
    urls: ServiceUrls,
    settings: Settings,
    *,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> list[Section]:
    """Seed every running service, then publish the learning events."""
    sections: list[Section] = []
    async with httpx.AsyncClient(timeout=15) as client:
        api = Api(client, settings.jwt_secret)
        steps: list[tuple[str, str, Callable[[], Awaitable[Section]]]] = [
            ("posts", urls.posts, lambda: seed_posts(api, urls.posts, force=force)),
            (
                "resources",
                urls.resources,
                lambda: seed_resources(api, urls.resources, urls.posts, force=force),
            ),
            ("goals", urls.goals, lambda: seed_goals(api, urls.goals)),
            ("stories", urls.goals, lambda: seed_stories(api, urls.goals, force=force)),
        ]
        for name, base, step in steps:
            if not await api.running(base):
                section = Section(name, note=f"service not running at {base}, skipped")
            else:
                section = await step()
            sections.append(section)
            say("seed: " + section.summary())
    section = await publish_learning_events(settings)
    sections.append(section)
    say("seed: " + section.summary())
    return sections


def showcase_tokens(secret: str) -> list[tuple[DemoUser, str]]:
    """Ready-made tokens for the people a demo starts with."""
    return [(person, demo_token(person, secret)) for person in SHOWCASE]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.seed", description=__doc__)
    parser.add_argument(
        "--force", action="store_true", help="replay sections whose demo data is already there"
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env("seed", 0)
    asyncio.run(seed(ServiceUrls.from_env(os.environ), settings, force=args.force))
    print("\ndemo tokens (24 h):")
    for person, token in showcase_tokens(settings.jwt_secret):
        print(f"  {person.role:<10} {person.name:<14} {token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
