"""The delivery rules of Web Push (SPEC §12), without I/O."""

from __future__ import annotations

import uuid

import pytest
from community_notifications import rules
from community_notifications.webpush import BadKeys, b64url_encode, check_subscription_keys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st


def test_review_requested_goes_to_instructors_and_admins_only() -> None:
    assert rules.recipients_of("reviews", "review.requested") == rules.Audience(moderators=True)
    assert rules.recipients_of("reviews", "review.resolved") is None
    assert "review.requested" in rules.push_types_for("instructor")
    assert "review.requested" in rules.push_types_for("admin")
    assert "review.requested" not in rules.push_types_for("student")


@pytest.mark.parametrize("event_type", ["submission.approved", "submission.rejected"])
def test_decisions_go_to_the_student(event_type: str) -> None:
    student = uuid.uuid4()
    assert rules.recipients_of(f"user:{student}", event_type) == rules.Audience(user_id=student)


def test_public_channels_and_unknown_types_are_never_pushed() -> None:
    for channel in ("feed", "leaderboard", "activity", "resources"):
        assert rules.recipients_of(channel, "post.created") is None
    assert rules.recipients_of(f"user:{uuid.uuid4()}", "post.created") is None
    assert rules.recipients_of("user:not-a-uuid", "like.received") is None


def test_likes_are_pushed_only_when_the_preference_says_so() -> None:
    assert not rules.wants_event("like.received", {})
    assert rules.wants_event("like.received", {"like.received": True})
    assert rules.wants_event("submission.approved", {})
    assert not rules.wants_event("submission.approved", {"submission.approved": False})


def test_defaults_are_everything_but_likes() -> None:
    prefs = rules.effective_preferences("student", {})
    assert set(prefs) == set(rules.USER_EVENT_TYPES)
    assert [t for t, on in prefs.items() if not on] == ["like.received"]
    assert rules.effective_preferences("instructor", {})["review.requested"] is True


def test_unknown_preference_types_are_named() -> None:
    with pytest.raises(rules.UnknownEventType) as error:
        rules.check_preferences("student", {"review.requested": True, "nope": False})
    assert error.value.names == ["nope", "review.requested"]
    assert rules.check_preferences("admin", {"review.requested": False}) == {
        "review.requested": False
    }


def test_push_only_without_a_foreground_connection() -> None:
    assert rules.wants_push(0)  # no connection, or background ones only
    assert not rules.wants_push(1)


def test_urgency() -> None:
    assert rules.urgency_of("review.requested") == "high"
    assert rules.urgency_of("submission.rejected") == "high"
    assert rules.urgency_of("like.received") == "normal"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, rules.Outcome.DELIVERED),
        (404, rules.Outcome.GONE),
        (410, rules.Outcome.GONE),
        (429, rules.Outcome.RETRY),
        (500, rules.Outcome.RETRY),
        (503, rules.Outcome.RETRY),
        (None, rules.Outcome.RETRY),
        (400, rules.Outcome.REJECTED),
        (413, rules.Outcome.REJECTED),
    ],
)
def test_outcome_of_a_push_service_answer(status: int | None, outcome: rules.Outcome) -> None:
    assert rules.outcome_of(status) is outcome


def test_retry_after_is_honoured() -> None:
    assert rules.retry_delay(1, rules.parse_retry_after("2"), 0.0) == 2.0
    assert rules.retry_delay(1, None, 0.0) == rules.FIRST_RETRY_SECONDS
    assert rules.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert rules.parse_retry_after(" 7 ") == 7.0


def test_backoff_doubles_up_to_its_cap_and_gives_up_after_an_hour() -> None:
    delays = [rules.retry_delay(n, None, 0.0) for n in range(1, 15)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(d for d in delays if d is not None) == rules.MAX_RETRY_SECONDS
    assert rules.retry_delay(3, None, 3599.0) is None
    assert rules.retry_delay(3, 7200.0, 0.0) is None  # a Retry-After beyond the hour


@given(
    attempts=st.integers(min_value=1, max_value=60),
    retry_after=st.none() | st.floats(min_value=0, max_value=4000),
    elapsed=st.floats(min_value=0, max_value=4000),
)
def test_a_retry_never_comes_before_retry_after_nor_after_the_hour(
    attempts: int, retry_after: float | None, elapsed: float
) -> None:
    delay = rules.retry_delay(attempts, retry_after, elapsed)
    if delay is not None:
        assert delay >= (retry_after or 0.0)
        assert elapsed + delay <= rules.RETRY_WINDOW_SECONDS


@pytest.mark.parametrize(
    "endpoint",
    [
        "not a url",
        "ftp://push.example.com/x",
        "http://push.example.com/x",
        "https://",
        "https://user:pw@push.example.com/x",
        "https://push.example.com:notaport/x",
        " https://push.example.com/x",
        "https://push.example.com/x#frag",
        "/relative/path",
        "http://127.0.0.1:9/x",  # loopback, but insecure endpoints not allowed
    ],
)
def test_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(rules.BadEndpoint):
        rules.check_endpoint(endpoint, allow_insecure=False)


def test_good_endpoints() -> None:
    ok = "https://fcm.googleapis.com/fcm/send/abc:def"
    assert rules.check_endpoint(ok, allow_insecure=False) == ok
    assert rules.check_endpoint("http://127.0.0.1:9/x", allow_insecure=True)
    assert rules.check_endpoint("http://localhost:9/x", allow_insecure=True)
    with pytest.raises(rules.BadEndpoint):
        rules.check_endpoint("http://10.0.0.1/x", allow_insecure=True)


@pytest.mark.parametrize(
    ("p256dh", "auth"),
    [
        ("!!!", "AAAAAAAAAAAAAAAAAAAAAA"),
        ("BAAA", "AAAAAAAAAAAAAAAAAAAAAA"),
        ("B" + "A" * 86, "AAAAAAAAAAAAAAAAAAAAAA"),  # 65 bytes but not on the curve
        (None, "AAAA"),  # auth too short (p256dh filled in below)
        (None, "not base64!"),
    ],
)
def test_bad_subscription_keys(p256dh: str | None, auth: str) -> None:
    if p256dh is None:
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        p256dh = b64url_encode(point)
    with pytest.raises(BadKeys):
        check_subscription_keys(p256dh, auth)


def test_vapid_keys_load_from_base64url_or_pem_and_nothing_else() -> None:
    from community_notifications.webpush import (
        generate_private_key,
        load_private_key,
        public_key_b64,
    )
    from cryptography.hazmat.primitives.serialization import (
        Encoding as Enc,
    )
    from cryptography.hazmat.primitives.serialization import (
        NoEncryption,
        PrivateFormat,
    )

    raw = generate_private_key()
    key = load_private_key(raw)
    pem = key.private_bytes(Enc.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    assert public_key_b64(load_private_key(pem)) == public_key_b64(key)
    assert len(public_key_b64(key)) == 87  # 65 bytes, base64url without padding
    for bad in ("", "not a key!", "AAAA", b64url_encode(b"\x00" * 31)):
        with pytest.raises(ValueError):
            load_private_key(bad)
    other_curve = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValueError):
        load_private_key(
            other_curve.private_bytes(Enc.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        )
