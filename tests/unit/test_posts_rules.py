"""The posts rules, pure: content, search text, who may see, edit and remove."""

from __future__ import annotations

import uuid

import pytest
from community_posts import rules
from community_shared.auth import GUEST, Identity
from hypothesis import given
from hypothesis import strategies as st


def person(role: str = "student", *, member: bool = True) -> Identity:
    return Identity(user_id=uuid.uuid4(), role=role, name="x", member=member)


@given(st.text())
def test_clean_content_is_trimmed_and_bounded_or_refused(raw: str) -> None:
    try:
        content = rules.clean_content(raw)
    except rules.InvalidInput:
        stripped = raw.strip()
        assert (
            not stripped
            or len(stripped) > rules.MAX_CONTENT_CHARS
            or "\x00" in raw
            or any(0xD800 <= ord(c) <= 0xDFFF for c in raw)
        )
    else:
        assert content == raw.strip()
        assert 1 <= len(content) <= rules.MAX_CONTENT_CHARS
        assert content.encode("utf-8")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "must not be empty"),
        (" \n\t\u3000", "must not be empty"),
        ("x" * 5001, "at most 5000"),
        ("a\x00b", "NUL"),
        ("\ud800", "not valid Unicode"),
    ],
)
def test_clean_content_refusals_say_why(raw: str, message: str) -> None:
    with pytest.raises(rules.InvalidInput, match=message):
        rules.clean_content(raw)


def test_clean_content_boundaries() -> None:
    assert rules.clean_content("  " + "y" * 5000 + "\n") == "y" * 5000
    assert rules.clean_content(" a ") == "a"
    assert rules.clean_content("😀" * 5000) == "😀" * 5000  # characters, not bytes


def test_details_and_query() -> None:
    assert rules.clean_details(None) is None
    assert rules.clean_details("   ") is None
    assert rules.clean_details(" spam link ") == "spam link"
    with pytest.raises(rules.InvalidInput):
        rules.clean_details("d" * 1001)
    assert rules.clean_query(None) is None
    assert rules.clean_query("  ") is None
    assert rules.clean_query(" cold email ") == "cold email"
    with pytest.raises(rules.InvalidInput):
        rules.clean_query("q" * 201)
    with pytest.raises(rules.InvalidInput):
        rules.clean_query("\x00")


def test_who_sees_a_post() -> None:
    author = person()
    assert author.user_id is not None
    for visibility in ("public", "members"):
        assert rules.may_see(author, visibility=visibility, author_id=author.user_id)
    other = uuid.uuid4()
    assert rules.may_see(GUEST, visibility="public", author_id=other)
    assert not rules.may_see(GUEST, visibility="members", author_id=other)
    assert not rules.may_see(person(member=False), visibility="members", author_id=other)
    assert rules.may_see(person(), visibility="members", author_id=other)
    assert rules.may_see(person("instructor"), visibility="members", author_id=other)
    lapsed = person(member=False)
    assert lapsed.user_id is not None
    assert rules.may_see(lapsed, visibility="members", author_id=lapsed.user_id)


def test_who_edits_and_removes() -> None:
    author = person()
    assert author.user_id is not None
    assert rules.may_edit(author, author_id=author.user_id)
    for someone in (person(), person("instructor"), person("admin"), GUEST):
        assert not rules.may_edit(someone, author_id=author.user_id)
    assert rules.may_remove(author, author_id=author.user_id)
    assert rules.may_remove(person("instructor"), author_id=author.user_id)
    assert rules.may_remove(person("admin"), author_id=author.user_id)
    assert not rules.may_remove(person(), author_id=author.user_id)
    assert not rules.may_remove(GUEST, author_id=author.user_id)


def test_deletion_reason() -> None:
    author = person("instructor")
    assert author.user_id is not None
    assert rules.deletion_reason(author, author_id=author.user_id) == "author"
    assert rules.deletion_reason(person("admin"), author_id=author.user_id) == "moderator"
