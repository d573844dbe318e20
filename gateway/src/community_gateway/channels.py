"""Channels: their names, who may subscribe, and which events reach them. No I/O.

A domain event (the envelope of SPEC §8) becomes zero or more *channel events*
through `route`, the gateway mapping table of the contract. Each channel event
carries an *audience* that says who may see it even among a channel's
subscribers: members-only posts (and everything about them) are for members
only, whatever the channel. `can_subscribe` and `may_receive` are the only two
authorization questions the gateway asks.

Channel names are canonical strings: `feed`, `leaderboard`, `activity`,
`resources`, `reviews` and `user:<uuid>` (lower-case, hyphenated UUID).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgspec
from community_shared.auth import Identity
from community_shared.events import Envelope

Audience = Literal["public", "members", "moderators"]
AUDIENCES: Final = frozenset({"public", "members", "moderators"})

FEED: Final = "feed"
LEADERBOARD: Final = "leaderboard"
ACTIVITY: Final = "activity"
RESOURCES: Final = "resources"
REVIEWS: Final = "reviews"
PRESENCE: Final = "presence"
"""Carries `presence` frames (presence.py), not channel events: no history, no seq."""
PUBLIC_CHANNELS: Final = frozenset({FEED, LEADERBOARD, ACTIVITY, RESOURCES})
SHARED_CHANNELS: Final = PUBLIC_CHANNELS | {REVIEWS}
USER_PREFIX: Final = "user:"

UNKNOWN_CHANNEL: Final = "unknown_channel"
FORBIDDEN: Final = "forbidden"

SHARED_SUBJECT_PREFIX: Final = "ch."
INBOX_SUBJECT_PREFIX: Final = "inbox."


class MalformedEvent(ValueError):
    """An envelope whose `data` lacks what its type promises; it is dropped, never routed."""


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelEvent:
    """One event on one channel, as the router publishes it to the channel's history."""

    channel: str
    type: str
    data: Mapping[str, Any]
    audience: Audience = "public"
    coalesce_key: str | None = None


# --------------------------------------------------------------------------- names


def user_channel(user_id: uuid.UUID) -> str:
    return f"{USER_PREFIX}{user_id}"


def parse_channel(name: str) -> str | None:
    """The canonical name of a channel, or None if `name` names no channel.

    `user:` accepts any spelling of a UUID and answers the canonical one.
    """
    if name in SHARED_CHANNELS or name == PRESENCE:
        return name
    if name.startswith(USER_PREFIX):
        raw = name[len(USER_PREFIX) :]
        if not 32 <= len(raw) <= 36:
            return None
        try:
            return user_channel(uuid.UUID(raw))
        except ValueError:
            return None
    return None


def channel_user_id(channel: str) -> uuid.UUID | None:
    """The user whose inbox `channel` is (canonical names only), else None."""
    if channel.startswith(USER_PREFIX):
        return uuid.UUID(channel[len(USER_PREFIX) :])
    return None


def is_priority(channel: str) -> bool:
    """`reviews` and `user:` events are never dropped and still flow in background mode."""
    return channel == REVIEWS or channel.startswith(USER_PREFIX)


def is_sheddable(channel: str) -> bool:
    """Events a slow client may lose before being disconnected (the live ticker)."""
    return channel == ACTIVITY


def channel_subject(channel: str) -> str:
    """The unprefixed NATS subject holding a channel's history (`ch.feed`, `inbox.<id>`)."""
    user_id = channel_user_id(channel)
    if user_id is not None:
        return f"{INBOX_SUBJECT_PREFIX}{user_id}"
    return f"{SHARED_SUBJECT_PREFIX}{channel}"


def channel_of_subject(subject: str) -> str | None:
    """Inverse of `channel_subject` (unprefixed subject); None for anything else."""
    if subject.startswith(SHARED_SUBJECT_PREFIX):
        name = subject[len(SHARED_SUBJECT_PREFIX) :]
        return name if name in SHARED_CHANNELS else None
    if subject.startswith(INBOX_SUBJECT_PREFIX):
        channel = parse_channel(USER_PREFIX + subject[len(INBOX_SUBJECT_PREFIX) :])
        return channel
    return None


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


def may_receive(identity: Identity, audience: str) -> bool:
    """Whether an event of this audience may be shown to `identity`.

    Guests and students without membership never receive `members` events,
    live or from history. An unknown audience is treated as the strictest one.
    """
    if audience == "public":
        return True
    if audience == "members":
        return identity.is_member
    return identity.is_moderator


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


def _field(data: Mapping[str, Any], name: str) -> Any:
    try:
        return data[name]
    except KeyError:
        raise MalformedEvent(f"missing field {name!r}") from None


def _uuid(value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise MalformedEvent(f"{name} is not a UUID") from None


def _optional_uuid(value: Any, name: str) -> uuid.UUID | None:
    return None if value is None else _uuid(value, name)


def _post_audience(data: Mapping[str, Any]) -> Audience:
    # Anything but an explicit "public" is treated as members-only: a missing or
    # unexpected visibility must never leak a post to guests.
    return "public" if data.get("visibility", "public") == "public" else "members"


def _actor(envelope: Envelope, fallback: uuid.UUID | None) -> uuid.UUID | None:
    return envelope.actor_id if envelope.actor_id is not None else fallback


def _event(
    channel: str, type_: str, data: Mapping[str, Any], audience: Audience = "public"
) -> ChannelEvent:
    return ChannelEvent(channel, type_, data, audience, coalesce_key(type_, data))


def _post(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    verb = envelope.type.rsplit(".", 1)[1]
    _field(data, "id")
    return [_event(FEED, f"post.{verb}", data, _post_audience(data))]


def _post_deleted(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    return [_event(FEED, "post.deleted", {"id": _field(data, "id")}, _post_audience(data))]


def _post_like(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    verb = envelope.type.rsplit(".", 1)[1]
    audience = _post_audience(data)
    post_id = _field(data, "post_id")
    likes_count = _field(data, "likes_count")
    events = [
        _event(FEED, f"post.{verb}", {"post_id": post_id, "likes_count": likes_count}, audience)
    ]
    if verb == "liked":
        author = _uuid(_field(data, "post_author_id"), "post_author_id")
        liker = _optional_uuid(data.get("user_id"), "user_id")
        if _actor(envelope, liker) != author:
            notification = {
                "post_id": post_id,
                "user_id": data.get("user_id"),
                "user_name": data.get("user_name"),
                "likes_count": likes_count,
            }
            events.append(_event(user_channel(author), "like.received", notification, audience))
    return events


def _reply_created(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    audience = _post_audience(data)
    author = _field(data, "author")
    author_id = _optional_uuid(author.get("id") if isinstance(author, dict) else None, "author")
    actor = _actor(envelope, author_id)
    events = [_event(FEED, "reply.created", data, audience)]
    recipients: list[uuid.UUID] = []
    for name in ("post_author_id", "reply_to_author_id"):
        recipient = _optional_uuid(data.get(name), name)
        if recipient is not None and recipient != actor and recipient not in recipients:
            recipients.append(recipient)
    events.extend(
        _event(user_channel(recipient), "reply.received", data, audience)
        for recipient in recipients
    )
    return events


def _reply_updated(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    _field(data, "id")
    return [_event(FEED, "reply.updated", data, _post_audience(data))]


def _reply_deleted(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    payload = {
        "id": _field(data, "id"),
        "post_id": _field(data, "post_id"),
        "replies_count": data.get("replies_count"),
    }
    return [_event(FEED, "reply.deleted", payload, _post_audience(data))]


def _student(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": _field(data, "student_id"), "name": data.get("student_name")}


def _review_requested(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    is_goal = envelope.type == "goals.goal.requested"
    payload: dict[str, Any] = {
        "review_id": _field(data, "review_id"),
        "kind": "goal_request" if is_goal else "revenue_submission",
        "student": _student(data),
        "track": data.get("track"),
        "goal_slug": data.get("goal_slug"),
    }
    if not is_goal:
        payload["amount"] = data.get("amount")
        payload["proof_url"] = data.get("proof_url")
        payload["note"] = data.get("note")
    payload["created_at"] = data.get("created_at")
    return [_event(REVIEWS, "review.requested", payload, "moderators")]


def _resolved(data: Mapping[str, Any], kind: str, status: str) -> ChannelEvent:
    payload = {
        "review_id": _field(data, "review_id"),
        "kind": kind,
        "status": status,
        "reviewed_by": data.get("reviewed_by"),
    }
    return _event(REVIEWS, "review.resolved", payload, "moderators")


def _to_student(data: Mapping[str, Any], type_: str) -> ChannelEvent:
    student = _uuid(_field(data, "student_id"), "student_id")
    return _event(user_channel(student), type_, data)


def _submission_decided(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    verb = envelope.type.rsplit(".", 1)[1]
    return [
        _resolved(data, "revenue_submission", verb),
        _to_student(data, f"submission.{verb}"),
    ]


def _goal_assigned(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    events = []
    if data.get("review_id") is not None:
        events.append(_resolved(data, "goal_request", "approved"))
    events.append(_to_student(data, "goal.assigned"))
    return events


def _goal_rejected(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    return [_resolved(data, "goal_request", "rejected"), _to_student(data, "goal.rejected")]


def _goal_completed(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    return [_to_student(data, "goal.completed")]


def _story_published(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    author = _uuid(_field(data, "author_id"), "author_id")
    return [_event(user_channel(author), "story.published", data)]


def _resource(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    # Drafts are for instructors' eyes only; the channel is public.
    _field(data, "id")
    if data.get("published_at") is None:
        return []
    verb = envelope.type.rsplit(".", 1)[1]
    return [_event(RESOURCES, f"resource.{verb}", data)]


def _resource_deleted(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    return [_event(RESOURCES, "resource.deleted", {"id": _field(data, "id")})]


def _resource_stats(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    payload = {
        "resource_id": _field(data, "resource_id"),
        "download_count": data.get("download_count"),
        "rating_average": data.get("rating_average"),
        "rating_count": data.get("rating_count"),
    }
    return [_event(RESOURCES, "resource.stats", payload)]


def _leaderboard(type_: str) -> Callable[[Envelope, dict[str, Any]], list[ChannelEvent]]:
    def route_to_board(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
        return [_event(LEADERBOARD, type_, data)]

    return route_to_board


def _badge_awarded(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    user = _uuid(_field(data, "user_id"), "user_id")
    return [
        _event(LEADERBOARD, "badge.awarded", data),
        _event(user_channel(user), "badge.awarded", data),
    ]


def _activity(envelope: Envelope, data: dict[str, Any]) -> list[ChannelEvent]:
    return [_event(ACTIVITY, "activity.created", data)]


_ROUTES: Final[dict[str, Callable[[Envelope, dict[str, Any]], list[ChannelEvent]]]] = {
    "posts.post.created": _post,
    "posts.post.updated": _post,
    "posts.post.pinned": _post,
    "posts.post.unpinned": _post,
    "posts.post.deleted": _post_deleted,
    "posts.post.liked": _post_like,
    "posts.post.unliked": _post_like,
    "posts.reply.created": _reply_created,
    "posts.reply.updated": _reply_updated,
    "posts.reply.deleted": _reply_deleted,
    "goals.goal.requested": _review_requested,
    "goals.submission.created": _review_requested,
    "goals.submission.approved": _submission_decided,
    "goals.submission.rejected": _submission_decided,
    "goals.goal.assigned": _goal_assigned,
    "goals.goal.rejected": _goal_rejected,
    "goals.goal.completed": _goal_completed,
    "goals.story.published": _story_published,
    "resources.resource.created": _resource,
    "resources.resource.updated": _resource,
    "resources.resource.deleted": _resource_deleted,
    "resources.resource.downloaded": _resource_stats,
    "resources.resource.rated": _resource_stats,
    "leaderboard.rank.changed": _leaderboard("rank.changed"),
    "leaderboard.top.changed": _leaderboard("top.changed"),
    "leaderboard.badge.awarded": _badge_awarded,
    "leaderboard.badge.revoked": _leaderboard("badge.revoked"),
    "leaderboard.stats.updated": _leaderboard("stats.updated"),
    "leaderboard.activity.recorded": _activity,
}

ROUTED_TYPES: Final = frozenset(_ROUTES)


def route(envelope: Envelope) -> list[ChannelEvent]:
    """The channel events a domain event becomes (the contract's gateway mapping).

    Guarantees: an event type outside the mapping yields `[]`; notifications
    never go to the user who caused them (`actor_id`, or the liker / reply
    author when the envelope has no actor), and a user gets at most one
    notification per event; members-only posts and everything derived from
    them carry audience `members`; review-queue events carry `moderators`.
    Raises `MalformedEvent` when the payload lacks a field the mapping needs;
    fields that are merely passed through are not validated.
    """
    handler = _ROUTES.get(envelope.type)
    if handler is None:
        return []
    try:
        data = msgspec.json.decode(envelope.data)
    except msgspec.DecodeError as exc:
        raise MalformedEvent(f"data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedEvent("data is not an object")
    return handler(envelope, data)


# --------------------------------------------------------------------------- stored form


class ChannelMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A channel event as kept in the channel's JetStream history.

    The stream sequence number of the message is the event's `seq`; `ts` is
    the domain event's `occurred_at`; `key` is the coalesce key, stored so
    that fan-out never has to decode `data`.
    """

    type: str
    data: msgspec.Raw
    ts: str
    audience: str = "public"
    key: str | None = None


_message_encoder = msgspec.json.Encoder()
_message_decoder = msgspec.json.Decoder(ChannelMessage)


def format_ts(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a `Z` (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def encode_channel_message(event: ChannelEvent, ts: str) -> bytes:
    return _message_encoder.encode(
        ChannelMessage(
            type=event.type,
            data=msgspec.Raw(_message_encoder.encode(event.data)),
            ts=ts,
            audience=event.audience,
            key=event.coalesce_key,
        )
    )


def decode_channel_message(payload: bytes) -> ChannelMessage:
    """Raises `msgspec.DecodeError`/`ValidationError` for anything that is not a channel message."""
    return _message_decoder.decode(payload)
