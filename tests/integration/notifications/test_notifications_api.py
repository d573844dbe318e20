"""The routes of SPEC §12: subscriptions and preferences, and every way to get them wrong."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import make_user
from tests.integration.notifications.conftest import subscribe_browser
from tests.pushservice import PushService, unb64url


async def test_the_public_key_is_an_uncompressed_p256_point(notifications_client: Any) -> None:
    response = await notifications_client.get("/notifications/vapid-public-key")
    assert response.status_code == 200
    key = response.json()["public_key"]
    raw = unb64url(key)
    assert len(raw) == 65 and raw[0] == 4
    bad = await notifications_client.get(
        "/notifications/vapid-public-key", headers={"Authorization": "Bearer forged"}
    )
    assert bad.status_code == 401


async def test_register_list_reregister_delete(
    notifications_client: Any, push_service: PushService
) -> None:
    owner, other = make_user("student"), make_user("student")
    browser, created = await subscribe_browser(
        notifications_client, push_service, owner, user_agent="Firefox 130"
    )
    assert set(created) == {"id", "endpoint", "user_agent", "created_at", "last_used_at"}
    assert created["endpoint"] == browser.endpoint and created["user_agent"] == "Firefox 130"
    assert created["last_used_at"] is None

    listed = await notifications_client.get(
        "/notifications/push-subscriptions", headers=owner.headers
    )
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["items"]] == [created["id"]]
    assert listed.json()["next_cursor"] is None

    # The same endpoint again: 200, the same subscription.
    again = await notifications_client.post(
        "/notifications/push-subscriptions", json=browser.as_json(), headers=owner.headers
    )
    assert again.status_code == 200 and again.json()["id"] == created["id"]

    # Another user's subscription is 404, like one that does not exist.
    path = f"/notifications/push-subscriptions/{created['id']}"
    assert (await notifications_client.delete(path, headers=other.headers)).status_code == 404
    missing = f"/notifications/push-subscriptions/{uuid.uuid4()}"
    assert (await notifications_client.delete(missing, headers=owner.headers)).status_code == 404
    assert (await notifications_client.delete(path, headers=owner.headers)).status_code == 204
    assert (await notifications_client.delete(path, headers=owner.headers)).status_code == 404
    listed = await notifications_client.get(
        "/notifications/push-subscriptions", headers=owner.headers
    )
    assert listed.json()["items"] == []


async def test_an_idempotency_key_replays_the_first_answer(
    notifications_client: Any, push_service: PushService
) -> None:
    user = make_user("student")
    key = (await notifications_client.get("/notifications/vapid-public-key")).json()["public_key"]
    body = push_service.new_subscription(key).as_json()
    headers = {**user.headers, "Idempotency-Key": uuid.uuid4().hex}
    first = await notifications_client.post(
        "/notifications/push-subscriptions", json=body, headers=headers
    )
    second = await notifications_client.post(
        "/notifications/push-subscriptions", json=body, headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()


def _keys(push_service: PushService) -> dict[str, str]:
    return push_service.new_subscription("k").as_json()["keys"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"endpoint": "not a url"}, "malformed endpoint"),
        ({"endpoint": "https://"}, "no host"),
        ({"endpoint": "http://push.example.com/x"}, "non-https endpoint"),
        ({"endpoint": "ftp://push.example.com/x"}, "not http at all"),
        ({"endpoint": "https://" + "a" * 3000 + ".com/"}, "too long"),
        ({"endpoint": 42}, "not a string"),
        ({"keys": {"p256dh": "!!!", "auth": None}}, "p256dh not base64url"),
        ({"keys": {"p256dh": "BAAA", "auth": None}}, "p256dh too short"),
        ({"keys": {"p256dh": "B" + "A" * 86, "auth": None}}, "p256dh not on the curve"),
        ({"keys": {"p256dh": None, "auth": "AAAA"}}, "auth too short"),
        ({"keys": {"p256dh": None}}, "auth missing"),
        ({"keys": "nope"}, "keys not an object"),
        ({"user_agent": "x" * 600}, "user agent too long"),
    ],
)
async def test_bad_subscriptions_are_400(
    notifications_client: Any, push_service: PushService, change: dict[str, Any], why: str
) -> None:
    user = make_user("student")
    body: dict[str, Any] = {
        "endpoint": f"https://push.example.com/{uuid.uuid4().hex}",
        "keys": _keys(push_service),
    }
    for name, value in change.items():
        if isinstance(value, dict):
            good = body["keys"]
            body[name] = {k: (good[k] if v is None else v) for k, v in value.items()}
        else:
            body[name] = value
    response = await notifications_client.post(
        "/notifications/push-subscriptions", json=body, headers=user.headers
    )
    assert response.status_code == 400, (why, response.text)
    assert response.json()["detail"]


async def test_guests_get_401_on_every_personal_route(notifications_client: Any) -> None:
    routes = [
        ("POST", "/notifications/push-subscriptions"),
        ("GET", "/notifications/push-subscriptions"),
        ("DELETE", f"/notifications/push-subscriptions/{uuid.uuid4()}"),
        ("GET", "/notifications/preferences"),
        ("PUT", "/notifications/preferences"),
    ]
    for method, path in routes:
        response = await notifications_client.request(method, path, json={"push": {}})
        assert response.status_code == 401, (method, path)


async def test_bad_ids_and_limits_are_400(notifications_client: Any) -> None:
    user = make_user("student")
    bad = await notifications_client.delete(
        "/notifications/push-subscriptions/not-a-uuid", headers=user.headers
    )
    assert bad.status_code in (400, 404)  # no route matches a non-UUID id
    for query in ("limit=0", "limit=101", "cursor=%%%"):
        response = await notifications_client.get(
            f"/notifications/push-subscriptions?{query}", headers=user.headers
        )
        assert response.status_code == 400, query


async def test_preferences_default_and_change(notifications_client: Any) -> None:
    student, instructor = make_user("student"), make_user("instructor")
    mine = await notifications_client.get("/notifications/preferences", headers=student.headers)
    assert mine.status_code == 200
    push = mine.json()["push"]
    assert push["like.received"] is False and push["submission.approved"] is True
    assert "review.requested" not in push

    theirs = await notifications_client.get(
        "/notifications/preferences", headers=instructor.headers
    )
    assert theirs.json()["push"]["review.requested"] is True

    changed = await notifications_client.put(
        "/notifications/preferences",
        json={"push": {"like.received": True, "goal.assigned": False}},
        headers=student.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["push"]["like.received"] is True
    assert changed.json()["push"]["goal.assigned"] is False
    assert changed.json()["push"]["submission.approved"] is True
    again = await notifications_client.get("/notifications/preferences", headers=student.headers)
    assert again.json() == changed.json()


@pytest.mark.parametrize(
    "body",
    [
        {"push": {"no.such.event": True}},
        {"push": {"review.requested": True}},  # a student is never sent review requests
        {"push": {"like.received": "yes"}},
        {"push": ["like.received"]},
        {},
        {"push": None},
    ],
)
async def test_bad_preferences_are_400(notifications_client: Any, body: dict[str, Any]) -> None:
    student = make_user("student")
    response = await notifications_client.put(
        "/notifications/preferences", json=body, headers=student.headers
    )
    assert response.status_code == 400, response.text
    after = await notifications_client.get("/notifications/preferences", headers=student.headers)
    assert after.json()["push"]["like.received"] is False  # nothing half-applied


async def test_the_development_key_is_kept_shared_and_never_logged(
    notifications_client: Any, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Without VAPID_PRIVATE_KEY, every instance signs with the key kept in the database
    (browsers subscribed with it), and the key appears in no log line."""
    from community_notifications.config import NotificationsConfig
    from community_notifications.service import load_signer

    runtime = notifications_client.app.state.runtime
    kept = await db.fetchval("SELECT private_key FROM notifications.vapid_key WHERE id = 1")
    served = (await notifications_client.get("/notifications/vapid-public-key")).json()
    with caplog.at_level("DEBUG"):
        another_instance = await load_signer(runtime, NotificationsConfig())
    assert another_instance.public_key == served["public_key"]
    assert "development key" in caplog.text  # the logs were captured
    assert kept not in caplog.text
    assert kept not in repr(another_instance)
