"""Checks that a service's OpenAPI document is true, shared by every service's tests.

- `served_alone` serves a fresh app of a service on a loopback port, on the
  test's loop, with its own database and its own NATS and Redis prefixes, so
  whatever a fuzzer creates, pins or rate-limits stays out of the other tests'
  data.
- `run_schemathesis` runs the schemathesis command line against it (bounded
  and deterministic: the same cases on every run), each case as one of the
  given callers (`schemathesis_callers`), and returns what it printed; it fails on
  a 5xx, a status code, content type, header or body the document does not
  declare, a wrong `Allow` on `OPTIONS` or a 405 without one.
- `undeclared` compares the statuses a document declares with those SPEC says
  each operation can answer; `probes_for` and `provoked_statuses` compare them
  with what the code answers to requests built to draw errors out.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from community_shared.settings import Settings
from litestar import Litestar

from tests.conftest import RUN_ID, Infra, User, fresh_database
from tests.harness import nats_hooks_ran

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
    "allow_header_conformance",
)
"""What every run checks: no 5xx, and nothing answered that the document does not declare."""

MAX_EXAMPLES = 5
"""Generated cases per operation in the fuzzing phase (the coverage phase adds its own)."""
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass
class ServedApp:
    app: Litestar
    settings: Settings
    base_url: str


@contextlib.asynccontextmanager
async def served_alone(
    service: str, infra: Infra, settings_for: Callable[..., Settings]
) -> AsyncIterator[ServedApp]:
    """A fresh app of `service` served by uvicorn on 127.0.0.1, alone in its data."""
    tag = f"contract{uuid.uuid4().hex[:6]}"
    async with fresh_database(infra) as database_url:
        settings = settings_for(
            service,
            database_url=database_url,
            nats_subject_prefix=f"{RUN_ID}.{tag}.",
            redis_key_prefix=f"{RUN_ID}:{tag}:",
        )
        app = importlib.import_module(f"community_{service}.app").create_app(settings)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                if task.done() or time.monotonic() > deadline:
                    raise AssertionError(f"{service} did not start")
                await asyncio.sleep(0.05)
            await nats_hooks_ran(app)
            yield ServedApp(app=app, settings=settings, base_url=f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=30)
            sock.close()


async def run_schemathesis(
    target: ServedApp, callers: list[User | None], *, max_examples: int = MAX_EXAMPLES
) -> tuple[int, str]:
    """Run schemathesis against `target`, each case sent as one of `callers`
    (None: a guest). Returns the exit status (0: no failure) and what it printed.
    """
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{target.base_url}/schema/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(max_examples),
        # The same cases on every run (no random seed, no example database).
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--no-color",
        "--output-truncate",
        "true",
    ]
    tokens = ",".join("" if caller is None else caller.token for caller in callers)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "SCHEMATHESIS_HOOKS": "tests.integration.contract.schemathesis_callers",
            "CONTRACT_CALLER_TOKENS": tokens,
        },
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


# --------------------------------------------------------------------------- the document


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`"METHOD /path"` → operation, for every operation of the document."""
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def declared_statuses(document: dict[str, Any]) -> dict[str, set[int]]:
    return {
        name: {int(code) for code in operation["responses"]}
        for name, operation in operations(document).items()
    }


def undeclared(document: dict[str, Any], expected: dict[str, set[int]]) -> dict[str, set[int]]:
    """What each operation of `expected` can answer but its document does not declare;
    `expected` must name every operation of the document, and only those."""
    declared = declared_statuses(document)
    assert set(declared) == set(expected), set(declared) ^ set(expected)
    return {
        name: statuses - declared[name]
        for name, statuses in expected.items()
        if statuses - declared[name]
    }


def error_bodies_are_described(document: dict[str, Any]) -> list[str]:
    """Operations whose error responses lack the error body, or a 429/503 its `Retry-After`."""
    wrong: list[str] = []
    for name, operation in operations(document).items():
        for code, response in operation["responses"].items():
            if int(code) < 400:
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != "#/components/schemas/ErrorBody":
                wrong.append(f"{name} {code}: no error body")
            if int(code) in (429, 503) and "Retry-After" not in response.get("headers", {}):
                wrong.append(f"{name} {code}: no Retry-After")
    return wrong


def security_of(document: dict[str, Any]) -> dict[str, list[dict[str, list[str]]]]:
    return {name: operation.get("security") for name, operation in operations(document).items()}


Probe = tuple[str, str, dict[str, str] | None, Any]
"""`(operation, url, headers, json body)`."""


def probes_for(document: dict[str, Any], callers: list[dict[str, str] | None]) -> list[Probe]:
    """Requests that change nothing: every operation as each caller (their headers;
    None for a guest), on ids that do not exist, with an empty body where it
    takes one, and lists with a limit out of range."""
    probes: list[Probe] = []
    for name, operation in operations(document).items():
        path = name.split(" ", 1)[1]
        url = path
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                value = parameter["schema"].get("enum", [str(uuid.uuid4())])[0]
                url = url.replace("{" + parameter["name"] + "}", str(value))
        body = {} if "requestBody" in operation else None
        for headers in callers:
            probes.append((name, url, headers, body))
            if "limit" in query:
                probes.append((name, f"{url}?limit=0", headers, body))
    return probes


async def provoked_statuses(
    client: httpx.AsyncClient, document: dict[str, Any], probes: list[Probe]
) -> list[str]:
    """Send each probe `(operation, url, headers, json body)`; the answers whose status
    the operation does not declare."""
    declared = declared_statuses(document)
    wrong: list[str] = []
    for name, url, headers, body in probes:
        method = name.split(" ", 1)[0]
        response = await client.request(method, url, headers=headers, json=body)
        if response.status_code not in declared[name]:
            wrong.append(f"{name} ({url}) answered {response.status_code}: {response.text[:200]}")
    return wrong
