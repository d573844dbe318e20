"""The seeded tracks and goals, with their database ids.

Tracks and goals are seeded by a migration and never change at run time: the
service reads them once (`store.fetch_catalog`) and keeps this. Pure.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from community_goals import rules


@dataclass(frozen=True)
class Catalog:
    """The seeded tracks and goals, with their database ids."""

    tracks: tuple[rules.Track, ...]
    goal_ids: dict[str, uuid.UUID]  # slug -> id
    goals_by_id: dict[uuid.UUID, rules.Goal]

    def track(self, slug: str) -> rules.Track:
        return next(t for t in self.tracks if t.slug == slug)

    def goal(self, slug: str) -> rules.Goal | None:
        goal_id = self.goal_ids.get(slug)
        return None if goal_id is None else self.goals_by_id[goal_id]

    def by_id(self, goal_id: uuid.UUID) -> rules.Goal:
        return self.goals_by_id[goal_id]

    def id_of(self, goal: rules.Goal) -> uuid.UUID:
        return self.goal_ids[goal.slug]

    @classmethod
    def from_rows(cls, rows: Sequence[asyncpg.Record]) -> Catalog:
        tracks: list[rules.Track] = []
        goal_ids: dict[str, uuid.UUID] = {}
        by_id: dict[uuid.UUID, rules.Goal] = {}
        current: list[asyncpg.Record] = []

        def close_track() -> None:
            if not current:
                return
            first = current[0]
            goals = tuple(
                rules.Goal(
                    slug=r["slug"],
                    name=r["name"],
                    target=r["target"],
                    position=r["position"],
                    track=first["track_slug"],
                )
                for r in current
            )
            for row, goal in zip(current, goals, strict=True):
                goal_ids[goal.slug] = row["goal_id"]
                by_id[row["goal_id"]] = goal
            tracks.append(
                rules.Track(
                    slug=first["track_slug"],
                    name=first["track_name"],
                    metric=first["metric"],
                    goals=goals,
                )
            )
            current.clear()

        for row in rows:
            if current and current[0]["track_slug"] != row["track_slug"]:
                close_track()
            current.append(row)
        close_track()
        return cls(tracks=tuple(tracks), goal_ids=goal_ids, goals_by_id=by_id)
