"""The websocket contract of SPEC §9 as msgspec types: frames and channel event payloads.

Nothing here runs on the hot path; `protocol.py` parses and builds the frames
and `channels.route` builds the channel events. These types describe what
they produce, so that the JavaScript client's types and docs/asyncapi.yaml can
be generated (`./run codegen`). Unit tests hold the two sides together: every
frame the protocol builds decodes as a `ServerFrame`, every op it accepts is a
`ClientFrame`, and a sample of every routed domain event becomes channel
events whose `data` match `CHANNEL_EVENTS`.

`CHANNEL_EVENTS` maps each channel kind (`user` stands for every `user:<id>`)
and event type to its payload: either the subject of the domain event whose
`data` the gateway passes on unchanged (its type is that subject's in the
events catalogue), or one of the Structs below for the payloads the gateway
builds itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Final, Literal

import msgspec

# --------------------------------------------------------------------------- payloads built here


class DeletedRef(msgspec.Struct, frozen=True, kw_only=True):
    """The id of what was deleted; nothing else about it is published."""

    id: uuid.UUID


class LikesCount(msgspec.Struct, frozen=True, kw_only=True):
    """A post's new like count. Only the latest one of a post matters: a slow client may
    receive just that one."""

    post_id: uuid.UUID
    likes_count: int


class LikeReceived(msgspec.Struct, frozen=True, kw_only=True):
    """Someone liked one of your posts (never sent for liking your own)."""

    post_id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    likes_count: int


class ReplyRemoved(msgspec.Struct, frozen=True, kw_only=True):
    """A reply was deleted; `replies_count` is the post's new count of live replies."""

    id: uuid.UUID
    post_id: uuid.UUID
    replies_count: int


class StudentRef(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str


class GoalRequestReview(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="goal_request"
):
    """A student asks for a goal; an instructor approves or rejects it."""

    review_id: uuid.UUID
    student: StudentRef
    track: str
    goal_slug: str
    created_at: dt.datetime


class SubmissionReview(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="revenue_submission"
):
    """A student submitted revenue with a proof; an instructor approves or rejects it."""

    review_id: uuid.UUID
    student: StudentRef
    track: str
    goal_slug: str
    amount: str
    proof_url: str
    note: str | None
    created_at: dt.datetime


ReviewRequested = GoalRequestReview | SubmissionReview
"""A new item of the review queue, told apart by `kind`."""


class ReviewResolved(msgspec.Struct, frozen=True, kw_only=True):
    """An item of the review queue was decided (`reviewed_by` is null for an automatic one)."""

    review_id: uuid.UUID
    kind: Literal["revenue_submission", "goal_request"]
    status: Literal["approved", "rejected"]
    reviewed_by: uuid.UUID | None


class ResourceStats(msgspec.Struct, frozen=True, kw_only=True):
    """A resource's counters after a download or a rating (at most one per resource
    per coalescing interval, always the newest)."""

    resource_id: uuid.UUID
    download_count: int
    rating_average: float | None
    rating_count: int


Payload = str | type[msgspec.Struct] | Any
"""A domain event subject (its `data` passed on unchanged) or the type of a built payload."""

CHANNEL_EVENTS: Final[dict[str, dict[str, Payload]]] = {
    "feed": {
        "post.created": "posts.post.created",
        "post.updated": "posts.post.updated",
        "post.pinned": "posts.post.pinned",
        "post.unpinned": "posts.post.unpinned",
        "post.deleted": DeletedRef,
        "post.liked": LikesCount,
        "post.unliked": LikesCount,
        "reply.created": "posts.reply.created",
        "reply.updated": "posts.reply.updated",
        "reply.deleted": ReplyRemoved,
    },
    "leaderboard": {
        "rank.changed": "leaderboard.rank.changed",
        "top.changed": "leaderboard.top.changed",
        "badge.awarded": "leaderboard.badge.awarded",
        "badge.revoked": "leaderboard.badge.revoked",
        "stats.updated": "leaderboard.stats.updated",
    },
    "activity": {
        "activity.created": "leaderboard.activity.recorded",
    },
    "resources": {
        "resource.created": "resources.resource.created",
        "resource.updated": "resources.resource.updated",
        "resource.deleted": DeletedRef,
        "resource.stats": ResourceStats,
    },
    "reviews": {
        "review.requested": ReviewRequested,
        "review.resolved": ReviewResolved,
    },
    "user": {
        "submission.approved": "goals.submission.approved",
        "submission.rejected": "goals.submission.rejected",
        "goal.assigned": "goals.goal.assigned",
        "goal.rejected": "goals.goal.rejected",
        "goal.completed": "goals.goal.completed",
        "badge.awarded": "leaderboard.badge.awarded",
        "reply.received": "posts.reply.created",
        "like.received": LikeReceived,
        "story.published": "goals.story.published",
    },
}


def channel_kind(channel: str) -> str:
    """The key of `CHANNEL_EVENTS` for a canonical channel name (`user:<id>` → `user`)."""
    return channel.split(":", 1)[0]


# --------------------------------------------------------------------------- frames

OpId = Annotated[str, msgspec.Meta(max_length=128)] | int | None
Seq = Annotated[int, msgspec.Meta(ge=0)]
ChannelName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        description=(
            "`feed`, `leaderboard`, `activity`, `resources`, `reviews`, `user:<id>` or `presence`"
        ),
    ),
]


class _ClientOp(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="op"):
    # The answer echoes `id`; only an op that carries one is answered when it succeeds.
    id: OpId = None


class SubscribeOp(_ClientOp, frozen=True, kw_only=True, tag="subscribe"):
    """Subscribe to a channel; with `since`, every retained event after it comes first."""

    channel: ChannelName
    since: Seq | None = None


class UnsubscribeOp(_ClientOp, frozen=True, kw_only=True, tag="unsubscribe"):
    channel: ChannelName


class RefreshOp(_ClientOp, frozen=True, kw_only=True, tag="refresh"):
    """Extend the session with a newer token of the same user, before `exp`."""

    token: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class ReadOp(_ClientOp, frozen=True, kw_only=True, tag="read"):
    """Mark the inbox (`user:<own id>`) read up to `seq`."""

    channel: ChannelName
    seq: Seq


class ModeOp(_ClientOp, frozen=True, kw_only=True, tag="mode"):
    """In `background` only `reviews` and `user:` events are delivered."""

    mode: Literal["background", "foreground"]


class VisibilityOp(_ClientOp, frozen=True, kw_only=True, tag="visibility"):
    """`visible: false`: appear offline everywhere (presence lists, counts, joined/left) until
    `visible: true`; remembered for the user across connections and instances for 30 days.
    Guests get `forbidden`."""

    visible: bool


class PingOp(_ClientOp, frozen=True, kw_only=True, tag="ping"):
    pass


ClientFrame = SubscribeOp | UnsubscribeOp | RefreshOp | ReadOp | ModeOp | VisibilityOp | PingOp
"""A frame a client sends (JSON text, at most 16 KiB)."""


class _ServerFrame(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="op"):
    pass


class _Answer(_ServerFrame, frozen=True, kw_only=True):
    # The `id` of the op this answers, when it carried one.
    id: OpId = None


class HelloFrame(_ServerFrame, frozen=True, kw_only=True, tag="hello"):
    """Sent once on connect; a signed-in user is already subscribed to `user:<own id>`."""

    user_id: uuid.UUID | None
    role: Literal["guest", "student", "instructor", "admin"]
    channels: list[str]
    unread: int


class SubscribedFrame(_Answer, frozen=True, kw_only=True, tag="subscribed"):
    """`seq` is the channel's latest at that moment; `recovered` is false when the
    history no longer reaches back to `since` (refetch over HTTP)."""

    channel: str
    seq: int
    recovered: bool


class EventFrame(_ServerFrame, frozen=True, kw_only=True, tag="event"):
    """One channel event; `seq` strictly increases per channel (it may skip numbers)."""

    channel: str
    seq: int
    type: str
    data: dict[str, Any]
    ts: str


class UnsubscribedFrame(_Answer, frozen=True, kw_only=True, tag="unsubscribed"):
    channel: str


class OkFrame(_Answer, frozen=True, kw_only=True, tag="ok"):
    """The answer to `refresh`, `read`, `mode` and `visibility`."""


class PongFrame(_Answer, frozen=True, kw_only=True, tag="pong"):
    pass


class ErrorFrame(_Answer, frozen=True, kw_only=True, tag="error"):
    """An op was refused; the connection stays open. `unavailable`: the history store
    cannot be reached right now (retry later)."""

    code: Literal[
        "bad_request", "unknown_channel", "forbidden", "rate_limited", "too_large", "unavailable"
    ]
    message: str
    channel: str | None = None


class PresencePerson(msgspec.Struct, frozen=True, kw_only=True):
    """A visible online user, as members see them."""

    user_id: uuid.UUID
    name: str
    role: Literal["student", "instructor", "admin"]


class PresenceFrame(_ServerFrame, frozen=True, kw_only=True, tag="presence"):
    """Who is online (`presence` channel): no `seq`, no history. After `subscribed`, a
    snapshot with `members` (at most 1000 listed; `online` counts all); then, when something
    changed, at most one frame per 2 s with `joined` and `left` since the previous frame.
    `online` counts visible signed-in users, `guests` open guest connections. Guests and
    non-members get the counts only."""

    channel: Literal["presence"]
    online: Annotated[int, msgspec.Meta(ge=0)]
    guests: Annotated[int, msgspec.Meta(ge=0)]
    members: list[PresencePerson] | None = None
    joined: list[PresencePerson] | None = None
    left: list[PresencePerson] | None = None


ServerFrame = (
    HelloFrame
    | SubscribedFrame
    | EventFrame
    | UnsubscribedFrame
    | OkFrame
    | PongFrame
    | ErrorFrame
    | PresenceFrame
)
"""A frame the gateway sends (JSON text)."""

CLOSE_CODES: Final[dict[int, str]] = {
    1009: "a client frame over 64 KiB",
    1011: "an unexpected server error (reconnect with backoff and recover with `since`)",
    1012: "the instance is restarting (reconnect at once, with jitter, and recover with `since`)",
    1013: "the history store is unreachable right now (reconnect with backoff)",
    4008: "the client fell too far behind (reconnect and recover with `since`)",
    4401: "the token expired without `refresh` (get a fresh token, then reconnect)",
}
"""The close codes the gateway uses, besides 1000 (normal closure)."""
