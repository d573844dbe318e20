"""The npm tools in `tools/codegen` (openapi-typescript, tsc, @asyncapi/parser), on demand.

They are installed with `npm ci` from the committed lock file, so every
machine runs the same versions; nothing else is fetched. `ensure_tools`
reinstalls when the lock file changed since the last install.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "codegen"
NODE_MODULES = TOOLS / "node_modules"
INSTALL_TIMEOUT_SECONDS = 300


class ToolsMissing(RuntimeError):
    """Node.js or npm is not installed, or `npm ci` failed."""


def _installed() -> bool:
    # npm ci writes node_modules/.package-lock.json: the lock as installed.
    marker = NODE_MODULES / ".package-lock.json"
    lock = TOOLS / "package-lock.json"
    return marker.is_file() and marker.stat().st_mtime >= lock.stat().st_mtime


def ensure_tools() -> None:
    """Install the locked npm tools unless they already are; raises `ToolsMissing`."""
    if _installed():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise ToolsMissing("Node.js 20+ and npm are needed (e.g. apt-get install nodejs npm)")
    result = subprocess.run(
        [npm, "ci", "--prefix", str(TOOLS)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise ToolsMissing(f"npm ci in {TOOLS} failed:\n{result.stdout}\n{result.stderr}")


def bin_path(name: str) -> Path:
    """An installed tool's executable (after `ensure_tools`)."""
    return NODE_MODULES / ".bin" / name


def run_tool(args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `node` or a tool of `node_modules/.bin` in `tools/codegen`; never raises on failure."""
    ensure_tools()
    program = args[0] if args[0] == "node" else str(bin_path(args[0]))
    return subprocess.run(
        [program, *args[1:]],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
