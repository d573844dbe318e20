"""Helpers for the goals service tests: a small client of its API and outbox readers."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from tests.conftest import User, make_user


class GoalsApi:
    """Thin helpers over the goals HTTP API that assert the happy path."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def profile(self, student: User) -> dict[str, Any]:
        response = await self.client.get("/goals/me", headers=student.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def request_goal(self, student: User, slug: str) -> dict[str, Any]:
        response = await self.client.put(
            "/goals/me/goal", json={"goal_slug": slug}, headers=student.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def pending_goal_request_id(self, student: User) -> str:
        profile = await self.profile(student)
        assert profile["goal_request"]["status"] == "pending"
        return str(profile["goal_request"]["id"])

    async def approve(self, review_id: str, reviewer: User) -> dict[str, Any]:
        response = await self.client.post(
            f"/goals/reviews/{review_id}/approve", headers=reviewer.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def reject(self, review_id: str, reviewer: User, reason: str) -> dict[str, Any]:
        response = await self.client.post(
            f"/goals/reviews/{review_id}/reject", json={"reason": reason}, headers=reviewer.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def assign(self, student: User, slug: str, reviewer: User) -> dict[str, Any]:
        """Request `slug` and have `reviewer` approve it; return the profile."""
        await self.request_goal(student, slug)
        await self.approve(await self.pending_goal_request_id(student), reviewer)
        return await self.profile(student)

    async def submit(
        self,
        student: User,
        amount: Any,
        proof_url: str = "https://example.com/proof.png",
        note: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"amount": amount, "proof_url": proof_url}
        if note is not None:
            body["note"] = note
        response = await self.client.post(
            "/goals/me/submissions", json=body, headers=student.headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def submit_and_approve(
        self, student: User, amount: Any, reviewer: User
    ) -> dict[str, Any]:
        submission = await self.submit(student, amount)
        await self.approve(submission["id"], reviewer)
        return await self.profile(student)


@pytest.fixture
def goals_api(goals_client: Any) -> GoalsApi:
    return GoalsApi(goals_client)


@pytest.fixture
def reviewer() -> User:
    return make_user("instructor")


async def outbox_events(db: Any, student_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """Every event of a student's aggregate, in commit order (type and data)."""
    rows = await db.fetch(
        "SELECT payload FROM goals.outbox WHERE aggregate = $1 ORDER BY seq",
        f"student:{student_id}",
    )
    return [msgspec.json.decode(bytes(r["payload"])) for r in rows]


async def outbox_types(db: Any, student_id: uuid.UUID | str) -> list[str]:
    return [event["type"] for event in await outbox_events(db, student_id)]


async def counts(db: Any, student_id: uuid.UUID) -> tuple[int, int, int, int]:
    """(students, reviews, stories, outbox) rows of one user: to prove nothing was written."""
    row = await db.fetchrow(
        """SELECT (SELECT count(*) FROM goals.students WHERE id = $1) AS students,
                  (SELECT count(*) FROM goals.reviews WHERE student_id = $1) AS reviews,
                  (SELECT count(*) FROM goals.stories WHERE author_id = $1) AS stories,
                  (SELECT count(*) FROM goals.outbox) AS outbox""",
        student_id,
    )
    return row["students"], row["reviews"], row["stories"], row["outbox"]
