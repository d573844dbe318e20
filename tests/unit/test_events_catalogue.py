"""docs/events.md is generated from the code's payload types and must be current."""

from __future__ import annotations

from pathlib import Path

from community_shared.catalogue import render

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_committed_catalogue_matches_the_code() -> None:
    assert CATALOGUE.read_text() == render(), (
        "docs/events.md is stale: uv run python -m community_shared.catalogue > docs/events.md"
    )


def test_every_published_subject_is_catalogued() -> None:
    text = render()
    for subject in (
        "posts.post.created",
        "posts.post.liked",
        "posts.reply.created",
        "goals.submission.approved",
        "goals.goal.completed",
        "resources.resource.downloaded",
    ):
        assert f"### `{subject}`" in text
