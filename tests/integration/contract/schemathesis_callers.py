"""Schemathesis hook (`SCHEMATHESIS_HOOKS=tests.integration.contract.schemathesis_callers`).

Who sends each request: `CONTRACT_CALLER_TOKENS` lists bearer tokens separated
by commas, an empty one for a guest, and each case goes as one of them, chosen
by a hash of what the case sends, so one run covers every role and the same
case always goes as the same caller, whatever the order or the number of
workers. A case that already carries an `Authorization` header (schemathesis
testing the bearer scheme itself) keeps it.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import schemathesis

_TOKENS = os.environ.get("CONTRACT_CALLER_TOKENS", "").split(",")


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: Any) -> None:
    headers = dict(case.headers or {})
    if any(name.lower() == "authorization" for name in headers):
        return
    sent = repr((case.method, case.path, case.path_parameters, case.query, case.body))
    token = _TOKENS[zlib.crc32(sent.encode()) % len(_TOKENS)]
    if token:
        headers["Authorization"] = f"Bearer {token}"
        case.headers = headers
