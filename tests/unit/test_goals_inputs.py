"""Input checks of the goals API and the stable ids of the seeded catalogue (no I/O)."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from community_goals.schemas import (
    SubmissionIn,
    clean_amount,
    clean_proof_url,
    clean_text,
)
from community_shared.errors import InvalidInput

MIGRATION = Path(__file__).resolve().parents[2] / "services/goals/migrations/0001_goals.sql"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/proof.png",
        "https://stripe.com/dashboard?x=1#y",
        "HTTPS://Example.COM/a",
        "https://example.com:8443/a",
        "https://" + "a" * 2000 + ".com",
    ],
)
def test_https_urls_are_accepted(url: str) -> None:
    assert clean_proof_url(f"  {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "http://example.com/proof.png",
        "ftp://example.com/a",
        "example.com/proof.png",
        "not a url",
        "https://",
        "https:///path-only",
        "https://exa mple.com/",
        "https://example.com/\nnext",
        "https://example.com:99999/",
        "https://[::1/",
        "javascript:alert(1)",
        "https://" + "a" * 2050 + ".com",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        clean_proof_url(url)


def _amount(raw: bytes) -> Decimal:
    body = b'{"amount": ' + raw + b', "proof_url": "https://x.io"}'
    return clean_amount(msgspec.json.decode(body, type=SubmissionIn).amount)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"1", "1.00"),
        (b"0.01", "0.01"),
        (b"1000.5", "1000.50"),
        (b'"1500.00"', "1500.00"),
        (b"10000000", "10000000.00"),
        (b'"10000000.00"', "10000000.00"),
        (b"1.230", "1.23"),
    ],
)
def test_amounts_accepted_exactly(raw: bytes, expected: str) -> None:
    assert str(_amount(raw)) == expected


@pytest.mark.parametrize(
    "raw",
    [b"0", b"-1", b"10000000.01", b"1.234", b'"NaN"', b'"Infinity"', b"1e400", b'"-0"'],
)
def test_amounts_refused(raw: bytes) -> None:
    with pytest.raises(InvalidInput):
        _amount(raw)


@pytest.mark.parametrize("raw", [b"true", b"null", b"[]", b"{}", b'"abc"', b'""'])
def test_amounts_of_the_wrong_type_do_not_decode(raw: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        _amount(raw)


def test_text_is_trimmed_and_bounded() -> None:
    assert clean_text("  hi  ", "note", max_length=5, required=False) == "hi"
    assert clean_text("   ", "note", max_length=5, required=False) is None
    assert clean_text(None, "note", max_length=5, required=False) is None
    with pytest.raises(InvalidInput):
        clean_text("   ", "reason", max_length=5, required=True)
    with pytest.raises(InvalidInput):
        clean_text("toolong", "note", max_length=5, required=False)


def test_seeded_ids_are_derived_from_slugs() -> None:
    """Ids in the seed migration are uuid5 of the slug, the same in every deployment."""
    namespace = uuid.uuid5(uuid.NAMESPACE_DNS, "goals.community-live")
    sql = MIGRATION.read_text()
    rows = re.findall(r"\('([0-9a-f-]{36})', '([a-z0-9-]+)'", sql)
    kinds = {"agency": "track", "saas": "track"}
    assert len(rows) == 9
    for seeded_id, slug in rows:
        kind = kinds.get(slug, "goal")
        assert uuid.UUID(seeded_id) == uuid.uuid5(namespace, f"{kind}:{slug}"), slug
