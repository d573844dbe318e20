"""The formats the gateway writes and the notifications service reads, pinned to the byte."""

from __future__ import annotations

import datetime as dt
import uuid

from community_shared.channelstreams import (
    CHANNELS_STREAM,
    INBOX_STREAM,
    ChannelEvent,
    channel_of_subject,
    channel_subject,
    decode_channel_message,
    encode_channel_message,
    format_ts,
    parse_user_channel,
    user_channel,
)
from community_shared.presencekeys import PresenceKeys
from community_shared.settings import Settings

USER = uuid.UUID("0b0e5f3c-9d1a-4c2e-8f7a-1234567890ab")


def test_streams_and_subjects() -> None:
    assert (CHANNELS_STREAM, INBOX_STREAM) == ("CHANNELS", "INBOX")
    assert channel_subject("reviews") == "ch.reviews"
    assert channel_subject(user_channel(USER)) == f"inbox.{USER}"
    assert channel_of_subject(f"inbox.{USER.hex.upper()}") == f"user:{USER}"
    assert channel_of_subject("inbox.presence") is None
    assert channel_of_subject("ch.presence") is None


def test_user_channels_are_canonical() -> None:
    assert parse_user_channel(f"user:{USER.hex}") == f"user:{USER}"
    assert parse_user_channel("user:nobody") is None
    assert parse_user_channel("feed") is None


def test_a_stored_message_to_the_byte() -> None:
    liked = ChannelEvent("feed", "post.liked", {"post_id": "p", "likes_count": 2}, "members", "k")
    encoded = encode_channel_message(liked, "2025-01-01T00:00:00Z")
    assert encoded == (
        b'{"type":"post.liked","data":{"post_id":"p","likes_count":2},'
        b'"ts":"2025-01-01T00:00:00Z","audience":"members","key":"k"}'
    )
    plain = encode_channel_message(ChannelEvent("feed", "t", {}), "ts")
    assert plain == b'{"type":"t","data":{},"ts":"ts"}'
    message = decode_channel_message(plain)
    assert (message.audience, message.key, bytes(message.data)) == ("public", None, b"{}")


def test_timestamps_are_utc_with_a_z() -> None:
    assert format_ts(dt.datetime(2025, 1, 1, 12)) == "2025-01-01T12:00:00Z"
    two_hours_ahead = dt.timezone(dt.timedelta(hours=2))
    assert format_ts(dt.datetime(2025, 1, 1, 12, tzinfo=two_hours_ahead)) == "2025-01-01T10:00:00Z"


def test_presence_keys() -> None:
    keys = PresenceKeys(Settings(service="x", redis_key_prefix="p:"))
    assert (keys.instances, keys.online) == ("p:gw:{pres}:instances", "p:gw:{pres}:online")
    assert keys.heartbeat("i") == "p:gw:{pres}:hb:i"
    assert keys.foreground("i") == "p:gw:{pres}:fg:i"
    assert keys.conns("i") == "p:gw:{pres}:conns:i"
    assert keys.hidden("u") == "p:gw:{pres}:hidden:u"
