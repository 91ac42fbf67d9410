"""docs/sandbox.md keeps up with the code: every config field, admin route and CLI option."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click
import pytest
from starlette.routing import Route

from hotfolder.cli.commands.sandbox import sandbox as sandbox_command
from hotfolder_sandbox import SandboxConfig
from hotfolder_sandbox.admin import admin_routes

DOC = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text(encoding="utf-8")


def _table_rows() -> dict[str, str]:
    """First cell (without backticks) -> the whole row, for every Markdown table row."""
    rows = {}
    for line in DOC.splitlines():
        match = re.match(r"\|\s*`([^`]+)`\s*\|", line)
        if match:
            rows[match.group(1)] = line
    return rows


@pytest.mark.parametrize("name", sorted(SandboxConfig.model_fields))
def test_every_config_field_has_a_row_with_its_default(name: str) -> None:
    rows = _table_rows()
    assert name in rows, f"docs/sandbox.md has no table row for SandboxConfig.{name}"
    default = SandboxConfig.model_fields[name].default
    if isinstance(default, (bool, int, float)) and name != "version":
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert f"`{shown}`" in rows[name], f"{name}: default {shown} is not in {rows[name]!r}"


def _admin_endpoints() -> list[str]:
    endpoints = []
    for route in admin_routes():
        assert isinstance(route, Route)
        endpoints += [
            f"{m} /_sandbox{route.path}" for m in sorted(route.methods or ()) if m != "HEAD"
        ]
    return endpoints


@pytest.mark.parametrize("endpoint", _admin_endpoints())
def test_every_admin_route_has_a_section_with_a_curl_example(endpoint: str) -> None:
    heading = f"### `{endpoint}`"
    assert heading in DOC, f"docs/sandbox.md has no section {heading}"
    section = DOC.split(heading, 1)[1].split("\n### ", 1)[0]
    method, path = endpoint.split(" ")
    path = path.removeprefix("/_sandbox")
    if method == "GET":
        assert f"curl -s $S{path}" in section
    else:
        assert f"curl -s -X {method} $S{path}" in section


#: The command's own options (the CLI group adds its global ones to every command).
OWN_OPTIONS = [
    param
    for param in sandbox_command.params
    if param.name in inspect.signature(sandbox_command.callback or (lambda: None)).parameters
]


def test_the_command_has_its_options() -> None:
    assert {p.name for p in OWN_OPTIONS} >= {"host", "port", "seed"}


@pytest.mark.parametrize("option", OWN_OPTIONS, ids=lambda p: str(p.name))
def test_every_cli_option_is_documented_with_its_default(option: click.Parameter) -> None:
    opts = option.opts
    default = option.default
    row = next((line for line in DOC.splitlines() if f"| `{opts[0]}` |" in line), None)
    assert row is not None, f"docs/sandbox.md has no row for hotfolder sandbox {opts[0]}"
    assert f"`{default}`" in row
