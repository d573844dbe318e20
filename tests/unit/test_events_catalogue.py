"""docs/events.md is generated from the code's payload types and must be current."""

from __future__ import annotations

import ast
import inspect
from importlib.metadata import entry_points
from pathlib import Path

from community_shared import catalogue
from community_shared.catalogue import ENTRY_POINT_GROUP, render

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


def test_the_catalogue_imports_no_component() -> None:
    """The library knows no consumer: components register their events (entry points)."""
    tree = ast.parse(inspect.getsource(catalogue))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.startswith("community_")} - {
        "community_shared.streams"
    }
    assert "import_module" not in inspect.getsource(catalogue)


def test_every_service_registers_its_events() -> None:
    registered = {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}
    for service in ("posts", "goals", "resources", "leaderboard"):
        assert registered.get(service) == f"community_{service}.events"
    assert [name for name, _module, _types in catalogue.catalogues()][:4] == [
        "posts",
        "goals",
        "resources",
        "leaderboard",
    ]
