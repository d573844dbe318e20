"""Every service app declares its routes' parameters as Litestar wants them today.

Litestar deprecates parameters whose kind it must infer (a bare query
parameter with a default); such a declaration stops working in its next major
version. Building each app with that warning as an error keeps them declared.
"""

from __future__ import annotations

import importlib
import warnings

import pytest
from litestar.exceptions import LitestarDeprecationWarning

SERVICES = ["goals", "leaderboard", "notifications", "posts", "resources"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_app_builds_and_documents_itself_without_a_deprecation(service: str) -> None:
    module = importlib.import_module(f"community_{service}.app")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LitestarDeprecationWarning)
        app = module.create_app()
        assert app.openapi_schema.paths
