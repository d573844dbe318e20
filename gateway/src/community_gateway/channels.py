"""Channels: who may subscribe, and which events reach them. No I/O.

A domain event (the envelope of SPEC §8) becomes zero or more *channel events*
through `route`, the gateway mapping table of the contract. Each channel event
carries an *audience* that says who may see it even among a channel's
subscribers: members-only posts (and everything about them) are for members
only, whatever the channel. `can_subscribe` (here) and `may_receive` are the
only two authorization questions the gateway asks.

Channel names, their streams and subjects, the stored form of a channel event
and `may_receive` make up the format of the channel streams, which the
notifications service reads too: they live in `community_shared.channelstreams`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec
from community_shared.auth import Identity
from community_shared.channelstreams import (
    ACTIVITY,
    FEED,
    LEADERBOARD,
    RESOURCES,
    REVIEWS,
    SHARED_CHANNELS,
    USER_PREFIX,
    Audience,
    ChannelEvent,
    channel_user_id,
    parse_user_channel,
    user_channel,
)
from community_shared.events import Envelope

from community_gateway import payloads

Data = dict[str, Any]
"""An envelope's `data` as decoded JSON."""

PRESENCE: Final = "presence"
"""Carries `presence` frames (presence.py), not channel events: no history, no seq."""
PUBLIC_CHANNELS: Final = frozenset({FEED, LEADERBOARD, ACTIVITY, RESOURCES})

UNKNOWN_CHANNEL: Final = "unknown_channel"
FORBIDDEN: Final = "forbidden"


class MalformedEvent(ValueError):
    """An envelope whose `data` lacks what its type promises; it is dropped, never routed."""


# --------------------------------------------------------------------------- names


def parse_channel(name: str) -> str | None:
    """The canonical name of a channel, or None if `name` names no channel.

    `user:` accepts any spelling of a UUID and answers the canonical one.
    """
    if name in SHARED_CHANNELS or name == PRESENCE:
        return name
    return parse_user_channel(name)


def is_priority(channel: str) -> bool:
    """`reviews` and `user:` events are never dropped and still flow in background mode."""
    return channel == REVIEWS or channel.startswith(USER_PREFIX)


def is_sheddable(channel: str) -> bool:
    """Events a slow client may lose before being disconnected (the live ticker)."""
    return channel == ACTIVITY


# --------------------------------------------------------------------------- authorization


def can_subscribe(identity: Identity, channel_name: str) -> str | None:
    """None if `identity` may subscribe to `channel_name`, else the error code.

    `unknown_channel` for a name that is no channel; `forbidden` for `reviews`
    unless instructor or admin, and for `user:<id>` unless it is the caller's own.
    Public channels and `presence` are open to everyone, guests included (what a guest *sees*
    on them is narrowed by `may_receive`).
    """
    channel = parse_channel(channel_name)
    if channel is None:
        return UNKNOWN_CHANNEL
    if channel in PUBLIC_CHANNELS or channel == PRESENCE:
        return None
    if channel == REVIEWS:
        return None if identity.is_moderator else FORBIDDEN
    owner = channel_user_id(channel)
    if identity.user_id is None or owner != identity.user_id:
        return FORBIDDEN
    return None


# --------------------------------------------------------------------------- routing


def coalesce_key(type_: str, data: Mapping[str, Any]) -> str | None:
    """Events that only carry the latest value of a counter share a key per counter.

    A newer event with the same key makes an older, unsent one worthless: the
    router and a slow client's queue may drop the older one.
    """
    if type_ in ("post.liked", "post.unliked"):
        return f"likes:{data.get('post_id')}"
    if type_ == "resource.stats":
        return f"stats:{data.get('resource_id')}"
    if type_ == "top.changed":
        return f"top:{data.get('board')}"
    return None


def _post_audience(view: payloads._OnAPost) -> Audience:
    # Anything but an explicit "public" is treated as members-only: a missing or
    # unexpected visibility must never leak a post to guests.
    return "public" if view.visibility == "public" else "members"


def _event(
    channel: str, type_: str, data: Mapping[str, Any], audience: Audience = "public"
) -> ChannelEvent:
    return ChannelEvent(channel, type_, data, audience, coalesce_key(type_, data))


def _verb(envelope: Envelope) -> str:
    return envelope.type.rsplit(".", 1)[1]


# Each route: the envelope, its `data` read through the view the table names,
# and `data` itself (what a pass-through event carries on unchanged).


def _post(envelope: Envelope, view: payloads.PostView, data: Data) -> list[ChannelEvent]:
    return [_event(FEED, f"post.{_verb(envelope)}", data, _post_audience(view))]


def _post_deleted(envelope: Envelope, view: payloads.PostView, data: Data) -> list[ChannelEvent]:
    return [_event(FEED, "post.deleted", {"id": view.id}, _post_audience(view))]


def _post_unliked(envelope: Envelope, view: payloads.LikeView, data: Data) -> list[ChannelEvent]:
    counter = {"post_id": view.post_id, "likes_count": view.likes_count}
    return [_event(FEED, "post.unliked", counter, _post_audience(view))]


def _post_liked(envelope: Envelope, view: payloads.LikedView, data: Data) -> list[ChannelEvent]:
    audience = _post_audience(view)
    counter = {"post_id": view.post_id, "likes_count": view.likes_count}
    events = [_event(FEED, "post.liked", counter, audience)]
    author = view.post_author_id
    actor = envelope.actor_id if envelope.actor_id is not None else view.user_id
    if actor != author:
        notification = {
            "post_id": view.post_id,
            "user_id": data.get("user_id"),
            "user_name": view.user_name,
            "likes_count": view.likes_count,
        }
        events.append(_event(user_channel(author), "like.received", notification, audience))
    return events


def _reply_created(
    envelope: Envelope, view: payloads.ReplyCreatedView, data: Data
) -> list[ChannelEvent]:
    audience = _post_audience(view)
    actor = envelope.actor_id if envelope.actor_id is not None else view.author.id
    events = [_event(FEED, "reply.created", data, audience)]
    recipients: list[uuid.UUID] = []
    for recipient in (view.post_author_id, view.reply_to_author_id):
        if recipient is not None and recipient != actor and recipient not in recipients:
            recipients.append(recipient)
    events.extend(
        _event(user_channel(recipient), "reply.received", data, audience)
        for recipient in recipients
    )
    return events


def _reply_updated(envelope: Envelope, view: payloads.PostView, data: Data) -> list[ChannelEvent]:
    return [_event(FEED, "reply.updated", data, _post_audience(view))]


def _reply_deleted(
    envelope: Envelope, view: payloads.ReplyDeletedView, data: Data
) -> list[ChannelEvent]:
    payload = {"id": view.id, "post_id": view.post_id, "replies_count": view.replies_count}
    return [_event(FEED, "reply.deleted", payload, _post_audience(view))]


def _review_requested(
    envelope: Envelope, view: payloads.GoalRequestView, data: Data
) -> list[ChannelEvent]:
    payload: dict[str, Any] = {
        "review_id": view.review_id,
        "kind": "goal_request",
        "student": {"id": view.student_id, "name": view.student_name},
        "track": view.track,
        "goal_slug": view.goal_slug,
    }
    if isinstance(view, payloads.SubmissionView):
        payload["kind"] = "revenue_submission"
        payload["amount"] = view.amount
        payload["proof_url"] = view.proof_url
        payload["note"] = view.note
    payload["created_at"] = view.created_at
    return [_event(REVIEWS, "review.requested", payload, "moderators")]


def _resolved(
    view: payloads.DecisionView | payloads.GoalAssignedView, kind: str, status: str
) -> ChannelEvent:
    payload = {
        "review_id": view.review_id,
        "kind": kind,
        "status": status,
        "reviewed_by": view.reviewed_by,
    }
    return _event(REVIEWS, "review.resolved", payload, "moderators")


def _to_student(view: payloads.ToStudentView, type_: str, data: Data) -> ChannelEvent:
    return _event(user_channel(view.student_id), type_, data)


def _submission_decided(
    envelope: Envelope, view: payloads.DecisionView, data: Data
) -> list[ChannelEvent]:
    verb = _verb(envelope)
    return [
        _resolved(view, "revenue_submission", verb),
        _to_student(view, f"submission.{verb}", data),
    ]


def _goal_assigned(
    envelope: Envelope, view: payloads.GoalAssignedView, data: Data
) -> list[ChannelEvent]:
    events = []
    if view.review_id is not None:
        events.append(_resolved(view, "goal_request", "approved"))
    events.append(_to_student(view, "goal.assigned", data))
    return events


def _goal_rejected(
    envelope: Envelope, view: payloads.DecisionView, data: Data
) -> list[ChannelEvent]:
    return [_resolved(view, "goal_request", "rejected"), _to_student(view, "goal.rejected", data)]


def _goal_completed(
    envelope: Envelope, view: payloads.ToStudentView, data: Data
) -> list[ChannelEvent]:
    return [_to_student(view, "goal.completed", data)]


def _story_published(
    envelope: Envelope, view: payloads.StoryView, data: Data
) -> list[ChannelEvent]:
    return [_event(user_channel(view.author_id), "story.published", data)]


def _resource(envelope: Envelope, view: payloads.ResourceView, data: Data) -> list[ChannelEvent]:
    # Drafts are for instructors' eyes only; the channel is public.
    if view.published_at is None:
        return []
    return [_event(RESOURCES, f"resource.{_verb(envelope)}", data)]


def _resource_deleted(
    envelope: Envelope, view: payloads.ResourceDeletedView, data: Data
) -> list[ChannelEvent]:
    return [_event(RESOURCES, "resource.deleted", {"id": view.id})]


def _resource_stats(
    envelope: Envelope, view: payloads.ResourceStatsView, data: Data
) -> list[ChannelEvent]:
    payload = {
        "resource_id": view.resource_id,
        "download_count": view.download_count,
        "rating_average": view.rating_average,
        "rating_count": view.rating_count,
    }
    return [_event(RESOURCES, "resource.stats", payload)]


def _to_board(type_: str) -> Callable[[Envelope, msgspec.Struct, Data], list[ChannelEvent]]:
    def route_to_board(envelope: Envelope, view: msgspec.Struct, data: Data) -> list[ChannelEvent]:
        return [_event(LEADERBOARD, type_, data)]

    return route_to_board


def _badge_awarded(envelope: Envelope, view: payloads.BadgeView, data: Data) -> list[ChannelEvent]:
    return [
        _event(LEADERBOARD, "badge.awarded", data),
        _event(user_channel(view.user_id), "badge.awarded", data),
    ]


def _activity(envelope: Envelope, view: payloads.NoFields, data: Data) -> list[ChannelEvent]:
    return [_event(ACTIVITY, "activity.created", data)]


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """One row of the routing table: the view `data` is read through, and the rule."""

    view: type[msgspec.Struct]
    rule: Callable[[Envelope, Any, Data], list[ChannelEvent]]


_ROUTES: Final[dict[str, Route]] = {
    "posts.post.created": Route(payloads.PostView, _post),
    "posts.post.updated": Route(payloads.PostView, _post),
    "posts.post.pinned": Route(payloads.PostView, _post),
    "posts.post.unpinned": Route(payloads.PostView, _post),
    "posts.post.deleted": Route(payloads.PostView, _post_deleted),
    "posts.post.liked": Route(payloads.LikedView, _post_liked),
    "posts.post.unliked": Route(payloads.LikeView, _post_unliked),
    "posts.reply.created": Route(payloads.ReplyCreatedView, _reply_created),
    "posts.reply.updated": Route(payloads.PostView, _reply_updated),
    "posts.reply.deleted": Route(payloads.ReplyDeletedView, _reply_deleted),
    "goals.goal.requested": Route(payloads.GoalRequestView, _review_requested),
    "goals.submission.created": Route(payloads.SubmissionView, _review_requested),
    "goals.submission.approved": Route(payloads.DecisionView, _submission_decided),
    "goals.submission.rejected": Route(payloads.DecisionView, _submission_decided),
    "goals.goal.assigned": Route(payloads.GoalAssignedView, _goal_assigned),
    "goals.goal.rejected": Route(payloads.DecisionView, _goal_rejected),
    "goals.goal.completed": Route(payloads.ToStudentView, _goal_completed),
    "goals.story.published": Route(payloads.StoryView, _story_published),
    "resources.resource.created": Route(payloads.ResourceView, _resource),
    "resources.resource.updated": Route(payloads.ResourceView, _resource),
    "resources.resource.deleted": Route(payloads.ResourceDeletedView, _resource_deleted),
    "resources.resource.downloaded": Route(payloads.ResourceStatsView, _resource_stats),
    "resources.resource.rated": Route(payloads.ResourceStatsView, _resource_stats),
    "leaderboard.rank.changed": Route(payloads.NoFields, _to_board("rank.changed")),
    "leaderboard.top.changed": Route(payloads.TopView, _to_board("top.changed")),
    "leaderboard.badge.awarded": Route(payloads.BadgeView, _badge_awarded),
    "leaderboard.badge.revoked": Route(payloads.NoFields, _to_board("badge.revoked")),
    "leaderboard.stats.updated": Route(payloads.NoFields, _to_board("stats.updated")),
    "leaderboard.activity.recorded": Route(payloads.NoFields, _activity),
}

ROUTED_TYPES: Final = frozenset(_ROUTES)
ROUTE_VIEWS: Final[Mapping[str, type[msgspec.Struct]]] = {
    type_: entry.view for type_, entry in _ROUTES.items()
}
"""Each routed domain event type and the view of its `data` the table reads."""
UNROUTED_TYPES: Final = frozenset(
    {
        "posts.report.created",  # moderation works from the reports list, not a channel
        "posts.report.resolved",
        "goals.story.created",  # a story reaches its author once published
        "learning.video.watched",  # inputs of the leaderboard, not news
        "learning.task.assigned",
        "learning.task.completed",
    }
)
"""Catalogued domain events that no channel carries (a unit test keeps this list whole)."""


def route(envelope: Envelope) -> list[ChannelEvent]:
    """The channel events a domain event becomes (the contract's gateway mapping).

    Guarantees: an event type outside the mapping yields `[]`; notifications
    never go to the user who caused them (`actor_id`, or the liker / reply
    author when the envelope has no actor), and a user gets at most one
    notification per event; members-only posts and everything derived from
    them carry audience `members`; review-queue events carry `moderators`.
    Raises `MalformedEvent` when the payload does not fit the view of its type
    (payloads.py): a field the mapping needs is missing, or one it interprets
    has the wrong type; fields that are merely passed on are not validated.
    """
    entry = _ROUTES.get(envelope.type)
    if entry is None:
        return []
    try:
        data = msgspec.json.decode(envelope.data)
    except msgspec.DecodeError as exc:
        raise MalformedEvent(f"data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedEvent("data is not an object")
    try:
        view = msgspec.convert(data, entry.view)
    except msgspec.ValidationError as exc:
        raise MalformedEvent(str(exc)) from None
    return entry.rule(envelope, view, data)
