"""The JavaScript client's generated types with the real npm tools (tools/codegen).

Node.js and npm must be installed; the tools themselves are installed from the
committed lock file (`npm ci`) on first use. No server is needed: each
service's OpenAPI document is built in-process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.codegen import rest
from infra.codegen.__main__ import COMMAND, REST_DIR, ROOT
from infra.codegen.node import ToolsMissing, ensure_tools, run_tool

CLIENT = ROOT / "clients" / "js"
TYPES_CHECK = CLIENT / "types-check"


@pytest.fixture(scope="module", autouse=True)
def node_tools() -> None:
    try:
        ensure_tools()
    except ToolsMissing as exc:
        pytest.fail(str(exc))


def _tsc(project: Path) -> tuple[int, str]:
    result = run_tool(["tsc", "-p", str(project / "tsconfig.json")])
    return result.returncode, result.stdout + result.stderr


def test_the_committed_rest_types_are_current() -> None:
    expected = {REST_DIR / f"{service}.ts": text for service, text in rest.render_all().items()}
    stale = [
        str(path.relative_to(ROOT))
        for path, text in expected.items()
        if not path.is_file() or path.read_text() != text
    ]
    leftover = [str(p.relative_to(ROOT)) for p in REST_DIR.glob("*.ts") if p not in expected]
    assert not stale and not leftover, f"stale: {stale + leftover}; regenerate with {COMMAND}"


def test_a_frontend_using_the_generated_types_type_checks() -> None:
    code, output = _tsc(TYPES_CHECK)
    assert code == 0, output


def test_a_renamed_payload_field_fails_the_frontends_type_check(tmp_path: Path) -> None:
    copy = tmp_path / "js"
    shutil.copytree(CLIENT / "src" / "generated", copy / "src" / "generated")
    shutil.copytree(TYPES_CHECK, copy / "types-check")
    events = copy / "src" / "generated" / "events.ts"
    original = (
        "export interface LikesCount {\n  /** Format: uuid */\n  post_id: string;\n  likes_count"
    )
    text = events.read_text()
    assert original in text
    events.write_text(text.replace(original, original.replace("likes_count", "like_count")))

    code, output = _tsc(copy / "types-check")

    assert code != 0
    assert "likes_count" in output and "consumer.ts" in output, output


def test_the_asyncapi_document_is_valid() -> None:
    result = run_tool(["node", "validate-asyncapi.mjs", str(ROOT / "docs" / "asyncapi.yaml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid AsyncAPI 3" in result.stdout
