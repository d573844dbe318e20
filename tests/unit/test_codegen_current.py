"""The generated client types and docs/asyncapi.yaml match the code (no Node.js needed).

The REST types need openapi-typescript: tests/integration/clients checks them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.codegen import asyncapi, typescript
from infra.codegen.__main__ import COMMAND, PURE, ROOT


@pytest.mark.parametrize("path", sorted(PURE), ids=lambda path: str(path.relative_to(ROOT)))
def test_the_committed_file_is_current(path: Path) -> None:
    assert path.is_file() and path.read_text() == PURE[path](), (
        f"{path.relative_to(ROOT)} is stale: regenerate with {COMMAND}"
    )


def test_the_asyncapi_yaml_reads_back_as_the_document() -> None:
    assert yaml.safe_load(asyncapi.render()) == asyncapi.document()


def test_every_channel_kind_of_the_contract_is_in_the_typescript_map() -> None:
    text = typescript.render()
    for kind in ("feed", "leaderboard", "activity", "resources", "reviews", "user"):
        assert f"\n  {kind}: {{\n" in text


def test_a_schema_the_converter_does_not_know_is_an_error() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        typescript.ts_type({"type": "string", "patternProperties": {}})
    with pytest.raises(ValueError, match="unsupported"):
        typescript.ts_type({"type": "tuple"})
