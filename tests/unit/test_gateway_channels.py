"""The gateway mapping table, channel names and who may see what (pure, no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from community_gateway.channels import MalformedEvent, can_subscribe, parse_channel, route
from community_shared.auth import GUEST, Identity
from community_shared.channelstreams import (
    ChannelEvent,
    channel_of_subject,
    channel_subject,
    decode_channel_message,
    encode_channel_message,
    may_receive,
    user_channel,
)
from community_shared.events import make_event


def ident(
    role: str = "student", *, member: bool = True, user_id: uuid.UUID | None = None
) -> Identity:
    return Identity(user_id=user_id or uuid.uuid4(), role=role, name="X", member=member)


def routed(type_: str, data: dict[str, Any], actor: uuid.UUID | None = None) -> list[ChannelEvent]:
    return route(make_event(type_, data, source=type_.split(".")[0], actor_id=actor))


def summary(events: list[ChannelEvent]) -> list[tuple[str, str, str]]:
    return [(e.channel, e.type, e.audience) for e in events]


AUTHOR = uuid.uuid4()
LIKER = uuid.uuid4()


def post(visibility: str = "public") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "author": {"id": str(AUTHOR), "name": "A", "role": "student"},
        "content": "hi",
        "visibility": visibility,
        "is_pinned": False,
        "likes_count": 0,
        "replies_count": 0,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "edited": False,
    }


# --------------------------------------------------------------------------- names


def test_channel_names_are_parsed_and_canonical() -> None:
    uid = uuid.uuid4()
    assert parse_channel("feed") == "feed"
    assert parse_channel("reviews") == "reviews"
    assert parse_channel(f"user:{uid}") == f"user:{uid}"
    assert parse_channel(f"user:{str(uid).upper()}") == f"user:{uid}"
    for bad in ("", "Feed", "feeds", "user:", "user:nope", "user:" + "1" * 40, "ch.feed"):
        assert parse_channel(bad) is None


def test_subjects_round_trip() -> None:
    uid = uuid.uuid4()
    for channel in ("feed", "leaderboard", "activity", "resources", "reviews", user_channel(uid)):
        assert channel_of_subject(channel_subject(channel)) == channel
    assert channel_subject("feed") == "ch.feed"
    assert channel_subject(user_channel(uid)) == f"inbox.{uid}"
    assert channel_of_subject("ch.other") is None
    assert channel_of_subject("posts.post.created") is None


# --------------------------------------------------------------------------- authorization


def test_public_channels_are_open_to_everyone() -> None:
    for channel in ("feed", "leaderboard", "activity", "resources"):
        assert can_subscribe(GUEST, channel) is None
        assert can_subscribe(ident(member=False), channel) is None


def test_reviews_are_for_instructors_and_admins() -> None:
    assert can_subscribe(ident("instructor"), "reviews") is None
    assert can_subscribe(ident("admin"), "reviews") is None
    assert can_subscribe(ident("student"), "reviews") == "forbidden"
    assert can_subscribe(GUEST, "reviews") == "forbidden"


def test_user_channel_only_for_its_user() -> None:
    me = ident()
    assert me.user_id is not None
    assert can_subscribe(me, user_channel(me.user_id)) is None
    assert can_subscribe(me, user_channel(uuid.uuid4())) == "forbidden"
    assert can_subscribe(ident("admin"), user_channel(uuid.uuid4())) == "forbidden"
    assert can_subscribe(GUEST, user_channel(uuid.uuid4())) == "forbidden"


def test_unknown_channel() -> None:
    assert can_subscribe(GUEST, "secret") == "unknown_channel"
    assert can_subscribe(ident("admin"), "user:xyz") == "unknown_channel"


def test_members_audience_excludes_guests_and_lapsed_students() -> None:
    assert may_receive(GUEST, "public")
    assert not may_receive(GUEST, "members")
    assert not may_receive(ident(member=False), "members")
    assert may_receive(ident(), "members")
    assert may_receive(ident("instructor"), "members")
    assert not may_receive(ident(), "moderators")
    assert may_receive(ident("admin"), "moderators")
    assert not may_receive(ident(), "something-else")  # unknown: the strictest audience


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize("verb", ["created", "updated", "pinned", "unpinned"])
def test_post_events_go_to_feed_with_the_post(verb: str) -> None:
    data = post()
    [event] = routed(f"posts.post.{verb}", data, AUTHOR)
    assert (event.channel, event.type, event.audience) == ("feed", f"post.{verb}", "public")
    assert event.data == data


def test_members_only_post_has_members_audience() -> None:
    assert summary(routed("posts.post.created", post("members"))) == [
        ("feed", "post.created", "members")
    ]
    deleted = routed(
        "posts.post.deleted",
        {
            "id": "p1",
            "author_id": str(AUTHOR),
            "visibility": "members",
            "removed_by": None,
            "reason": "author",
        },
    )
    assert summary(deleted) == [("feed", "post.deleted", "members")]
    assert deleted[0].data == {"id": "p1"}


def test_unknown_visibility_is_never_public() -> None:
    assert routed("posts.post.created", post("weird"))[0].audience == "members"


def like(likes: int = 3, visibility: str = "public") -> dict[str, Any]:
    return {
        "post_id": "p1",
        "user_id": str(LIKER),
        "user_name": "Liker",
        "likes_count": likes,
        "post_author_id": str(AUTHOR),
        "visibility": visibility,
    }


def test_like_goes_to_feed_and_notifies_the_author() -> None:
    events = routed("posts.post.liked", like(), LIKER)
    assert summary(events) == [
        ("feed", "post.liked", "public"),
        (f"user:{AUTHOR}", "like.received", "public"),
    ]
    assert events[0].data == {"post_id": "p1", "likes_count": 3}
    assert events[0].coalesce_key == "likes:p1"
    assert events[1].data == {
        "post_id": "p1",
        "user_id": str(LIKER),
        "user_name": "Liker",
        "likes_count": 3,
    }


def test_liking_your_own_post_sends_no_notification() -> None:
    data = like() | {"user_id": str(AUTHOR)}
    assert summary(routed("posts.post.liked", data, AUTHOR)) == [("feed", "post.liked", "public")]
    # Without an actor, the liker is the actor.
    assert summary(routed("posts.post.liked", data, None)) == [("feed", "post.liked", "public")]


def test_unlike_only_updates_the_counter() -> None:
    events = routed("posts.post.unliked", like(2, "members"), LIKER)
    assert summary(events) == [("feed", "post.unliked", "members")]
    assert events[0].data == {"post_id": "p1", "likes_count": 2}
    assert events[0].coalesce_key == "likes:p1"


def reply(
    reply_to_author: uuid.UUID | None, author: uuid.UUID, visibility: str = "public"
) -> dict[str, Any]:
    return {
        "id": "r1",
        "post_id": "p1",
        "reply_to_id": "r0" if reply_to_author else None,
        "author": {"id": str(author), "name": "R", "role": "student"},
        "content": "yes",
        "created_at": "2025-01-01T00:00:00Z",
        "edited": False,
        "visibility": visibility,
        "post_author_id": str(AUTHOR),
        "reply_to_author_id": str(reply_to_author) if reply_to_author else None,
        "replies_count": 4,
    }


def test_reply_notifies_post_author_and_replied_to_author() -> None:
    replier, other = uuid.uuid4(), uuid.uuid4()
    events = routed("posts.reply.created", reply(other, replier), replier)
    assert summary(events) == [
        ("feed", "reply.created", "public"),
        (f"user:{AUTHOR}", "reply.received", "public"),
        (f"user:{other}", "reply.received", "public"),
    ]


def test_reply_notifications_skip_the_actor_and_never_repeat() -> None:
    replier = uuid.uuid4()
    # Replying to the post author's own reply: one notification, not two.
    assert summary(routed("posts.reply.created", reply(AUTHOR, replier), replier)) == [
        ("feed", "reply.created", "public"),
        (f"user:{AUTHOR}", "reply.received", "public"),
    ]
    # The author replying under their own post, to someone else.
    other = uuid.uuid4()
    assert summary(routed("posts.reply.created", reply(other, AUTHOR), AUTHOR)) == [
        ("feed", "reply.created", "public"),
        (f"user:{other}", "reply.received", "public"),
    ]
    # The author replying to themselves: no notification at all.
    assert summary(routed("posts.reply.created", reply(AUTHOR, AUTHOR), None)) == [
        ("feed", "reply.created", "public"),
    ]


def test_reply_on_members_post_is_members_only_everywhere() -> None:
    events = routed("posts.reply.created", reply(None, uuid.uuid4(), "members"))
    assert {e.audience for e in events} == {"members"}


def test_reply_updated_and_deleted() -> None:
    assert summary(routed("posts.reply.updated", reply(None, AUTHOR))) == [
        ("feed", "reply.updated", "public")
    ]
    [deleted] = routed(
        "posts.reply.deleted",
        {"id": "r1", "post_id": "p1", "visibility": "public", "replies_count": 2},
    )
    assert (deleted.type, deleted.data) == (
        "reply.deleted",
        {"id": "r1", "post_id": "p1", "replies_count": 2},
    )


def test_reports_are_not_broadcast() -> None:
    assert routed("posts.report.created", {"id": "x", "post_id": "p1"}) == []
    assert routed("learning.video.watched", {"user_id": str(AUTHOR)}) == []


STUDENT = uuid.uuid4()
INSTRUCTOR = uuid.uuid4()


def test_submission_created_is_a_review_request() -> None:
    data = {
        "review_id": "rv1",
        "student_id": str(STUDENT),
        "student_name": "S",
        "track": "agency",
        "goal_slug": "agency-1k",
        "amount": "500.00",
        "proof_url": "https://x",
        "note": None,
        "created_at": "2025-01-01T00:00:00Z",
    }
    [event] = routed("goals.submission.created", data, STUDENT)
    assert (event.channel, event.type, event.audience) == (
        "reviews",
        "review.requested",
        "moderators",
    )
    assert event.data == {
        "review_id": "rv1",
        "kind": "revenue_submission",
        "student": {"id": str(STUDENT), "name": "S"},
        "track": "agency",
        "goal_slug": "agency-1k",
        "amount": "500.00",
        "proof_url": "https://x",
        "note": None,
        "created_at": "2025-01-01T00:00:00Z",
    }


def test_goal_request_is_a_review_request_without_amount() -> None:
    data = {
        "review_id": "rv2",
        "student_id": str(STUDENT),
        "student_name": "S",
        "track": "saas",
        "goal_slug": "saas-1k-mrr",
        "goal_name": "1k MRR",
        "created_at": "2025-01-01T00:00:00Z",
    }
    [event] = routed("goals.goal.requested", data, STUDENT)
    assert event.data["kind"] == "goal_request"
    assert "amount" not in event.data


@pytest.mark.parametrize("verb", ["approved", "rejected"])
def test_submission_decision_resolves_review_and_tells_the_student(verb: str) -> None:
    data = {
        "review_id": "rv1",
        "student_id": str(STUDENT),
        "student_name": "S",
        "amount": "1.00",
        "reason": "no",
        "reviewed_by": str(INSTRUCTOR),
        "reviewed_at": "2025-01-01T00:00:00Z",
    }
    events = routed(f"goals.submission.{verb}", data, INSTRUCTOR)
    assert summary(events) == [
        ("reviews", "review.resolved", "moderators"),
        (f"user:{STUDENT}", f"submission.{verb}", "public"),
    ]
    assert events[0].data == {
        "review_id": "rv1",
        "kind": "revenue_submission",
        "status": verb,
        "reviewed_by": str(INSTRUCTOR),
    }
    assert events[1].data == data


def test_goal_assignment_after_review_and_automatic() -> None:
    base = {
        "student_id": str(STUDENT),
        "student_name": "S",
        "track": "agency",
        "goal_slug": "agency-3k",
        "goal_name": "3k",
        "target": "3000.00",
        "reviewed_by": None,
    }
    reviewed = routed("goals.goal.assigned", base | {"review_id": "rv3"}, INSTRUCTOR)
    assert summary(reviewed) == [
        ("reviews", "review.resolved", "moderators"),
        (f"user:{STUDENT}", "goal.assigned", "public"),
    ]
    assert reviewed[0].data["kind"] == "goal_request"
    assert reviewed[0].data["status"] == "approved"
    automatic = routed("goals.goal.assigned", base | {"review_id": None}, None)
    assert summary(automatic) == [(f"user:{STUDENT}", "goal.assigned", "public")]


def test_goal_rejected_completed_and_story() -> None:
    rejected = routed(
        "goals.goal.rejected",
        {
            "review_id": "rv4",
            "student_id": str(STUDENT),
            "student_name": "S",
            "goal_slug": "agency-1k",
            "reason": "no",
            "reviewed_by": str(INSTRUCTOR),
        },
    )
    assert summary(rejected) == [
        ("reviews", "review.resolved", "moderators"),
        (f"user:{STUDENT}", "goal.rejected", "public"),
    ]
    assert rejected[0].data["status"] == "rejected"
    completed = routed("goals.goal.completed", {"student_id": str(STUDENT), "goal_slug": "x"})
    assert summary(completed) == [(f"user:{STUDENT}", "goal.completed", "public")]
    story = routed(
        "goals.story.published", {"story_id": "s", "author_id": str(STUDENT), "title": "t"}
    )
    assert summary(story) == [(f"user:{STUDENT}", "story.published", "public")]
    assert routed("goals.story.created", {"story_id": "s", "author_id": str(STUDENT)}) == []


def test_resources_only_published_ones() -> None:
    published = {"id": "res1", "title": "T", "published_at": "2025-01-01T00:00:00Z"}
    draft = {"id": "res2", "title": "T", "published_at": None}
    assert summary(routed("resources.resource.created", published)) == [
        ("resources", "resource.created", "public")
    ]
    assert routed("resources.resource.created", draft) == []
    assert routed("resources.resource.updated", draft) == []
    assert summary(routed("resources.resource.updated", published)) == [
        ("resources", "resource.updated", "public")
    ]
    [deleted] = routed("resources.resource.deleted", {"id": "res1"})
    assert (deleted.type, deleted.data) == ("resource.deleted", {"id": "res1"})


@pytest.mark.parametrize("type_", ["resources.resource.downloaded", "resources.resource.rated"])
def test_resource_stats(type_: str) -> None:
    data = {
        "resource_id": "res1",
        "user_id": None,
        "rating": 4,
        "download_count": 7,
        "rating_average": 4.5,
        "rating_count": 2,
    }
    [event] = routed(type_, data)
    assert (event.channel, event.type) == ("resources", "resource.stats")
    assert event.data == {
        "resource_id": "res1",
        "download_count": 7,
        "rating_average": 4.5,
        "rating_count": 2,
    }
    assert event.coalesce_key == "stats:res1"


def test_leaderboard_events() -> None:
    user = uuid.uuid4()
    rank = {"board": "all:all", "user_id": str(user), "old_rank": 3, "new_rank": 2, "points": 10}
    assert summary(routed("leaderboard.rank.changed", rank)) == [
        ("leaderboard", "rank.changed", "public")
    ]
    badge = {"user_id": str(user), "name": "N", "badge": "goal-crusher"}
    assert summary(routed("leaderboard.badge.awarded", badge)) == [
        ("leaderboard", "badge.awarded", "public"),
        (f"user:{user}", "badge.awarded", "public"),
    ]
    assert summary(routed("leaderboard.stats.updated", {"total_students": 1})) == [
        ("leaderboard", "stats.updated", "public")
    ]
    assert summary(routed("leaderboard.activity.recorded", {"id": "a", "type": "post"})) == [
        ("activity", "activity.created", "public")
    ]


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("posts.post.liked", {"post_id": "p1"}),
        ("posts.post.liked", like() | {"post_author_id": "not-a-uuid"}),
        ("goals.submission.approved", {"review_id": "r"}),
        ("leaderboard.badge.awarded", {"badge": "x"}),
        ("posts.post.created", {"content": "no id"}),
    ],
)
def test_malformed_payloads_are_refused(type_: str, data: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent):
        routed(type_, data)


def test_non_object_payload_is_refused() -> None:
    with pytest.raises(MalformedEvent):
        route(make_event("posts.post.created", [1, 2], source="posts", actor_id=None))


def test_channel_message_round_trip() -> None:
    event = ChannelEvent(
        "feed", "post.liked", {"post_id": "p", "likes_count": 2}, "members", "likes:p"
    )
    message = decode_channel_message(encode_channel_message(event, "2025-01-01T00:00:00Z"))
    assert (message.type, message.audience, message.key, message.ts) == (
        "post.liked",
        "members",
        "likes:p",
        "2025-01-01T00:00:00Z",
    )
    assert bytes(message.data) == b'{"post_id":"p","likes_count":2}'
