"""Shared fixtures for contract tests: Venice's OpenAPI spec, loaded so that it is usable.

``openapi_spec`` is the parsed ``openapi.yaml`` (aspect ratios as strings, see ``spec.py``).
Validate requests and responses with ``spec.validate_request`` / ``spec.validate_response``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.spec import SPEC_PATH, load_spec


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, Any]:
    """The spec as a dict. Shared across the session: do not mutate it."""
    if not SPEC_PATH.is_file():
        pytest.fail(f"the Venice spec is missing at {SPEC_PATH}; check out shared/ beside the repo")
    return load_spec()
