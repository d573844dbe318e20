"""The sender's messages as a push service sees them: VAPID verified, payload decrypted."""

from __future__ import annotations

import json
import time

from community_notifications.webpush import (
    PushSender,
    Subscription,
    VapidSigner,
    generate_private_key,
    load_private_key,
    public_key_b64,
)

from tests.pushservice import PushService


async def test_a_push_is_signed_and_readable_only_by_the_browser(push_service: PushService) -> None:
    key = load_private_key(generate_private_key())
    sender = PushSender(VapidSigner(key, "mailto:ops@example.com"))
    browser = push_service.new_subscription(public_key_b64(key))
    target = Subscription(browser.endpoint, browser.p256dh, browser.as_json()["keys"]["auth"])
    body = json.dumps({"type": "review.requested", "seq": 7}).encode()

    answer = await sender.send(target, body, ttl=86400, urgency="high")

    assert answer.status == 201, push_service.refused
    [delivery] = push_service.received(browser)
    assert delivery.payload == {"type": "review.requested", "seq": 7}
    assert (delivery.ttl, delivery.urgency) == (86400, "high")
    await sender.aclose()


async def test_a_push_signed_with_another_key_is_refused(push_service: PushService) -> None:
    ours, theirs = (load_private_key(generate_private_key()) for _ in range(2))
    sender = PushSender(VapidSigner(theirs, "mailto:ops@example.com"))
    browser = push_service.new_subscription(public_key_b64(ours))
    target = Subscription(browser.endpoint, browser.p256dh, browser.as_json()["keys"]["auth"])

    answer = await sender.send(target, b"{}", ttl=60, urgency="normal")

    assert answer.status == 401
    assert push_service.count(browser) == 0
    await sender.aclose()


def test_the_jwt_is_reused_per_origin_and_renewed_before_it_expires() -> None:
    signer = VapidSigner(load_private_key(generate_private_key()), "mailto:ops@example.com")
    now = time.time()
    first = signer.authorization("https://push.example.com/a", now)
    assert signer.authorization("https://push.example.com/b", now + 60) == first
    assert signer.authorization("https://other.example.com/a", now) != first
    assert signer.authorization("https://push.example.com/a", now + 11.5 * 3600) != first
    assert "private" not in repr(signer)
