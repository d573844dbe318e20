"""The fingerprint that tells a retry (same body) from a reused key (another body)."""

from __future__ import annotations

from community_shared.idempotency import fingerprint


def test_the_same_json_value_has_one_fingerprint_whatever_its_spelling() -> None:
    compact = b'{"content":"hi","visibility":"public"}'
    spaced = b'{ "visibility" : "public",\n  "content" : "hi" }'
    assert fingerprint(compact) == fingerprint(spaced)


def test_any_difference_in_value_changes_the_fingerprint() -> None:
    base = fingerprint(b'{"content": "hi"}')
    assert fingerprint(b'{"content": "hi "}') != base
    assert fingerprint(b'{"content": "hi", "visibility": "public"}') != base
    assert fingerprint(b'{"amount": 1}') != fingerprint(b'{"amount": "1"}')


def test_a_body_that_is_not_json_counts_byte_for_byte() -> None:
    assert fingerprint(b"not json") == fingerprint(b"not json")
    assert fingerprint(b"not json") != fingerprint(b"not  json")
    assert fingerprint(b"\xff") != fingerprint(b"")


def test_a_body_too_deep_or_too_large_to_decode_still_has_a_fingerprint() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert fingerprint(deep) == fingerprint(deep)
    assert fingerprint(b'{"a": 1e999}') != fingerprint(b'{"a": 1e998}')
    assert len(fingerprint(b'{"a": 123456789012345678901234567890}')) == 32
