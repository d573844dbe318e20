"""REST types of the JavaScript client: `clients/js/src/generated/rest/<service>.ts`.

Each service's OpenAPI document is built in-process from its Litestar app
(`create_app(settings)` starts nothing; the schema needs no database, NATS or
Redis) and handed to openapi-typescript, the npm generator locked in
`tools/codegen`. The documents themselves are served at
`GET /schema/openapi.json`; they are what these files are generated from.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from community_shared.settings import Settings
from litestar.serialization import encode_json

from infra.codegen.node import ROOT, run_tool

SERVICES_DIR = ROOT / "services"


def services() -> list[str]:
    """The services of the workspace that have an app, in name order."""
    return sorted(
        path.name
        for path in SERVICES_DIR.iterdir()
        if (path / "src" / f"community_{path.name}" / "app.py").is_file()
    )


def openapi_document(service: str) -> dict[str, Any]:
    """The service's OpenAPI document, as `GET /schema/openapi.json` serves it."""
    module = importlib.import_module(f"community_{service}.app")
    app = module.create_app(Settings.from_env(service, 0))
    # Through Litestar's own encoder, as the route serves it (examples hold structs).
    document: dict[str, Any] = msgspec.json.decode(encode_json(app.openapi_schema.to_schema()))
    return document


def render_all() -> dict[str, str]:
    """`{service: TypeScript}` for every service, by one run of openapi-typescript."""
    names = services()
    with tempfile.TemporaryDirectory(prefix="openapi-") as tmp:
        folder = Path(tmp)
        apis = {}
        for service in names:
            (folder / f"{service}.json").write_text(json.dumps(openapi_document(service), indent=2))
            apis[service] = {"root": f"{service}.json", "x-openapi-ts": {"output": f"{service}.ts"}}
        # JSON is YAML: the redocly config names every document and its output file.
        config = folder / "redocly.yaml"
        config.write_text(json.dumps({"apis": apis}, indent=2))
        result = run_tool(["openapi-typescript", "--redocly", str(config)])
        if result.returncode != 0:
            raise RuntimeError(f"openapi-typescript failed:\n{result.stdout}\n{result.stderr}")
        return {service: (folder / f"{service}.ts").read_text() for service in names}
