"""Bookkeeping for delivery under faults: what each client got, once, in order, or not.

A fault test records, per client and channel, the event frames in the order
they arrived (across reconnections) and compares them with what it published:

- `delivered`: expected events that arrived at least once;
- `lost`: expected events that never arrived;
- `duplicated`: frames whose seq had already arrived on that channel;
- `out_of_order`: frames whose seq is below one that already arrived (and is
  not a duplicate).

Each test prints one line, `FAULT <name>: expected=… delivered=… …`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

from community_shared.events import encode_envelope, make_event
from community_shared.settings import Settings


@dataclasses.dataclass
class Tally:
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0

    def add(self, other: Tally) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def ratio(self) -> float:
        return 1.0 if self.expected == 0 else self.delivered / self.expected


def tally(expected: Iterable[str], frames: Iterable[dict[str, Any]], key: str = "id") -> Tally:
    """Compare the event frames one client got on one channel with the ids it should get.

    Frames about other ids (other tests' events on a shared channel) still
    count for order and duplicates: a seq is a seq.
    """
    wanted = set(expected)
    got: set[str] = set()
    seen: set[int] = set()
    highest = 0
    result = Tally(expected=len(wanted))
    for frame in frames:
        seq = int(frame["seq"])
        if seq in seen:
            result.duplicated += 1
        elif seq < highest:
            result.out_of_order += 1
        seen.add(seq)
        highest = max(highest, seq)
        value = (frame.get("data") or {}).get(key)
        if value in wanted:
            got.add(value)
    result.delivered = len(got)
    result.lost = len(wanted - got)
    return result


def fault_line(name: str, **figures: Any) -> str:
    parts = []
    for field, value in figures.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{field}={value}")
    return f"FAULT {name}: " + " ".join(parts)


class DomainEvents:
    """Publish domain events into EVENTS as a service's outbox relay does (for the router)."""

    def __init__(self, js: Any, settings: Settings) -> None:
        self.js = js
        self.settings = settings

    async def publish(self, type_: str, data: dict[str, Any]) -> None:
        envelope = make_event(type_, data, source=type_.split(".", 1)[0], actor_id=None)
        await self.js.publish(
            self.settings.subject(type_),
            encode_envelope(envelope),
            headers={"Nats-Msg-Id": str(envelope.id)},
        )

    async def badge(self, user_id: uuid.UUID, badge_id: str, padding: int = 0) -> None:
        """A `badge.awarded` for one user: lands on `user:<id>` (and `leaderboard`).

        `padding` adds that many bytes of description (a bigger inbox frame).
        """
        data = {"id": badge_id, "user_id": str(user_id), "badge": "fault", "name": "Fault"}
        if padding:
            data["description"] = "d" * padding
        await self.publish("leaderboard.badge.awarded", data)

    async def post(self, post_id: str, content: str = "fault") -> None:
        """A public `posts.post.created`: lands on `feed`."""
        author = str(uuid.uuid4())
        await self.publish(
            "posts.post.created",
            {
                "id": post_id,
                "author": {"id": author, "name": "Ada", "role": "student"},
                "content": content,
                "visibility": "public",
                "is_pinned": False,
                "likes_count": 0,
                "replies_count": 0,
                "created_at": "2025-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z",
                "edited": False,
            },
        )
