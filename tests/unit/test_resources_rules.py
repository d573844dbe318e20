"""The resource library's pure rules."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from community_resources import rules
from community_resources.rules import DownloadDecision, download_decision
from hypothesis import given
from hypothesis import strategies as st

# --------------------------------------------------------------------------- access


@pytest.mark.parametrize(
    ("access", "signed_in", "member", "expected"),
    [
        ("free", False, False, DownloadDecision.NEEDS_EMAIL),
        ("free", True, False, DownloadDecision.ALLOWED),
        ("free", True, True, DownloadDecision.ALLOWED),
        ("members", False, False, DownloadDecision.UNAUTHENTICATED),
        ("members", True, False, DownloadDecision.FORBIDDEN),
        ("members", True, True, DownloadDecision.ALLOWED),
    ],
)
def test_who_downloads_what(
    access: str, signed_in: bool, member: bool, expected: DownloadDecision
) -> None:
    assert download_decision(access=access, signed_in=signed_in, member=member) is expected


def test_resources_are_members_only_unless_said_otherwise() -> None:
    assert rules.DEFAULT_ACCESS == "members"


# --------------------------------------------------------------------------- ratings


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(1, 5)), max_size=60))
def test_rating_changes_keep_exact_totals(updates: list[tuple[int, int]]) -> None:
    """Applying each user's change as a delta gives the totals of their final ratings."""
    latest: dict[int, int] = {}
    total, count = 0, 0
    for user, rating in updates:
        sum_delta, count_delta = rules.rating_change(latest.get(user), rating)
        total, count = total + sum_delta, count + count_delta
        latest[user] = rating
    assert (total, count) == (sum(latest.values()), len(latest))


@given(st.lists(st.integers(1, 5), min_size=1, max_size=500))
def test_rating_average_is_the_rounded_mean(ratings: list[int]) -> None:
    average = rules.rating_average(sum(ratings), len(ratings))
    exact = Decimal(sum(ratings)) / len(ratings)
    assert average == float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    assert average is not None and 1.0 <= average <= 5.0


def test_rating_average_edges() -> None:
    assert rules.rating_average(0, 0) is None
    assert rules.rating_average(10, 3) == 3.33
    assert rules.rating_average(11, 8) == 1.38  # 1.375 rounds half up
    assert rules.rating_average(59, 20) == 2.95


# --------------------------------------------------------------------------- badges

NOW = dt.datetime(2025, 6, 15, 12, 0, tzinfo=dt.UTC)


def test_is_new_for_fourteen_days() -> None:
    assert rules.is_new(NOW, NOW)
    assert rules.is_new(NOW - dt.timedelta(days=14), NOW)
    assert not rules.is_new(NOW - dt.timedelta(days=14, seconds=1), NOW)
    assert not rules.is_new(None, NOW)


@pytest.mark.parametrize(
    ("published", "cutoff"),
    [(0, 0), (1, 1), (9, 1), (10, 1), (11, 2), (20, 2), (21, 3), (1000, 100)],
)
def test_top_tenth_places(published: int, cutoff: int) -> None:
    assert rules.popular_rank_cutoff(published) == cutoff


def test_popularity_threshold_has_a_floor_of_ten() -> None:
    assert rules.popularity_threshold(None) is None
    assert rules.popularity_threshold(0) == 10
    assert rules.popularity_threshold(9) == 10
    assert rules.popularity_threshold(42) == 42
    assert rules.is_popular(10, 10) and not rules.is_popular(9, 10)
    assert not rules.is_popular(1000, None)


@given(st.lists(st.integers(0, 60), min_size=1, max_size=80))
def test_popular_is_at_most_the_top_tenth_plus_ties(counts: list[int]) -> None:
    ranked = sorted(counts, reverse=True)
    place = rules.popular_rank_cutoff(len(counts))
    threshold = rules.popularity_threshold(ranked[place - 1])
    popular = [c for c in counts if rules.is_popular(c, threshold)]
    assert all(c >= 10 for c in popular)
    # Everything strictly above the cut-off place's count is in, and nothing below it.
    assert len([c for c in popular if c > ranked[place - 1]]) <= place
    assert all(c >= ranked[place - 1] for c in popular)


def test_the_thirty_day_window() -> None:
    today = dt.date(2025, 6, 30)
    assert rules.first_day_in_window(today) == dt.date(2025, 6, 1)
    late_evening = dt.datetime(2025, 6, 30, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert rules.utc_day(late_evening) == dt.date(2025, 7, 1)


# --------------------------------------------------------------------------- text and values


@pytest.mark.parametrize(
    "email",
    ["ada@example.com", "Ada.Lovelace+news@Mail.Example.co.uk", "o'brien@example.ie", "a@b.io"],
)
def test_valid_emails_are_normalized(email: str) -> None:
    assert rules.normalize_email(f"  {email} ") == email.lower()


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "a b@example.com",
        "ada@exa mple.com",
        ".ada@example.com",
        "ada.@example.com",
        "a..b@example.com",
        "ada@example..com",
        "ada@-example.com",
        "ada@example.com-",
        "ada@127.0.0.1",
        "x" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
        "ada@example.com\x00",
        "ada@exämple.com",
    ],
)
def test_invalid_emails(email: str) -> None:
    with pytest.raises(ValueError):
        rules.normalize_email(email)


@given(st.text(max_size=80))
def test_email_check_never_crashes(text: str) -> None:
    try:
        normalized = rules.normalize_email(text)
    except ValueError:
        return
    assert normalized == normalized.strip().lower() and normalized.count("@") == 1


def test_tags_are_normalized_and_deduplicated() -> None:
    assert rules.normalize_tags([" Cold  Email ", "cold email", "SEO"]) == ["cold email", "seo"]
    with pytest.raises(ValueError):
        rules.normalize_tags(["  "])
    with pytest.raises(ValueError):
        rules.normalize_tags([f"t{i}" for i in range(21)])
    assert len(rules.normalize_tags([f"t{i % 20}" for i in range(40)])) == 20


@pytest.mark.parametrize(
    "url",
    ["https://files.example.com/a.pdf", "HTTPS://example.com", "https://example.com:8443/x?y=1#z"],
)
def test_https_urls(url: str) -> None:
    assert rules.check_https_url(f" {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://example.com/a.pdf",
        "ftp://example.com",
        "https://",
        "https:///path",
        "example.com/a.pdf",
        "https://exa mple.com",
        "https://example.com/\x00",
        "https://example.com:port/",
        "https://[::1",
        "javascript:alert(1)",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_not_https_urls(url: str) -> None:
    with pytest.raises(ValueError):
        rules.check_https_url(url)


def test_clean_text() -> None:
    assert rules.clean_text("  hi  ", "f", max_length=5) == "hi"
    assert rules.clean_text("   ", "f", max_length=5) is None
    with pytest.raises(ValueError):
        rules.clean_text("   ", "f", max_length=5, required=True)
    with pytest.raises(ValueError):
        rules.clean_text("toolong", "f", max_length=5)
    with pytest.raises(ValueError):
        rules.clean_text("a\x00b", "f", max_length=5)


def test_mime_types() -> None:
    assert rules.normalize_mime_type(" Application/PDF ") == "application/pdf"
    assert rules.normalize_mime_type("") is None
    for bad in ("pdf", "application/", "/pdf", "a/b/c", "text/plain; charset=utf-8"):
        with pytest.raises(ValueError):
            rules.normalize_mime_type(bad)


def test_enumerations_match_the_spec() -> None:
    assert set(rules.RESOURCE_TYPES) == {
        "template",
        "guide",
        "checklist",
        "pdf",
        "video",
        "tool",
        "spreadsheet",
        "code",
    }
    assert set(rules.CATEGORIES) == {
        "client-acquisition",
        "development",
        "business",
        "templates",
        "marketing",
    }
    assert set(rules.DIFFICULTIES) == {"beginner", "intermediate", "advanced"}
    assert set(rules.ENTITY_TYPES) == {"community_post", "course_video", "course", "conversation"}
    assert set(rules.SORTS) == {"newest", "popular", "rating", "downloads"}
