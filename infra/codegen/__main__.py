"""`./run codegen [--check]`: write the generated files, or name the stale ones and exit 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from community_shared import catalogue

from infra.codegen import asyncapi, rest, typescript
from infra.codegen.node import ROOT

GENERATED = ROOT / "clients" / "js" / "src" / "generated"
REST_DIR = GENERATED / "rest"
COMMAND = "./run codegen"

PURE: dict[Path, Callable[[], str]] = {
    ROOT / "docs" / "events.md": catalogue.render,
    ROOT / "docs" / "asyncapi.yaml": asyncapi.render,
    GENERATED / "events.ts": typescript.render,
}
"""Files generated from the Python types alone (no Node.js needed)."""


def expected_files(*, with_rest: bool = True) -> dict[Path, str]:
    """Every generated file and the text it must have."""
    files = {path: render() for path, render in PURE.items()}
    if with_rest:
        for service, text in rest.render_all().items():
            files[REST_DIR / f"{service}.ts"] = text
    return files


def stale(expected: dict[Path, str], *, with_rest: bool = True) -> list[Path]:
    """Files whose content differs from `expected`, missing ones, and leftover REST files."""
    out = [
        path for path, text in expected.items() if not path.is_file() or path.read_text() != text
    ]
    if with_rest and REST_DIR.is_dir():
        out += [path for path in sorted(REST_DIR.glob("*.ts")) if path not in expected]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument(
        "--no-rest", action="store_true", help="skip the REST types (they need Node.js)"
    )
    args = parser.parse_args(argv)
    with_rest = not args.no_rest
    expected = expected_files(with_rest=with_rest)
    outdated = stale(expected, with_rest=with_rest)
    if args.check:
        for path in outdated:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        if outdated:
            print(f"regenerate with: {COMMAND}", file=sys.stderr)
        return 1 if outdated else 0
    for path in outdated:
        if path in expected:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(expected[path])
            print(f"wrote {path.relative_to(ROOT)}")
        else:
            path.unlink()
            print(f"removed {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
