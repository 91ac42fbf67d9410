"""Durations end in ``_seconds``; the old ``_s`` names still load for one release, warned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from hotfolder.config import load_config, validate_config
from hotfolder.errors import ConfigError
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.venice import VeniceSection
from hotfolder_plugins.resolvers import UrlResolver
from hotfolder_sandbox import SandboxConfig
from hotfolder_sandbox.config import RENAMED as SANDBOX_RENAMED
from hotfolder_sandbox.state import SandboxState


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(load_entrypoints=False))


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    yield lines
    logger.remove(sink)


def test_an_old_venice_key_loads_under_its_new_name_with_a_warning(registry, tmp_path, warnings):
    path = tmp_path / "hotfolder.toml"
    path.write_text("[venice]\ntimeout_s = 5\n")
    settings = load_config(path, registry).section(VeniceSection)
    assert settings.timeout_seconds == 5
    assert len(warnings) == 1, warnings
    assert "[venice] timeout_s" in warnings[0] and "timeout_seconds" in warnings[0]


def test_giving_both_the_old_and_the_new_venice_key_is_an_error(registry, tmp_path, warnings):
    path = tmp_path / "hotfolder.toml"
    path.write_text("[venice]\ntimeout_s = 5\ntimeout_seconds = 6\n")
    with pytest.raises(ConfigError, match=r"venice\.timeout_s"):
        load_config(path, registry)


def test_the_new_venice_keys_load_without_a_warning(registry, warnings):
    raw = {"venice": {"timeout_seconds": 5, "backoff_cap_seconds": 3}}
    settings = validate_config(raw, registry).section(VeniceSection)
    assert (settings.timeout_seconds, settings.backoff_cap_seconds) == (5, 3)
    assert warnings == []


@pytest.mark.parametrize(("old", "new"), sorted(VeniceSection.renamed.items()))
def test_every_old_venice_key_names_a_seconds_field(old, new, registry, warnings):
    assert old.endswith("_s") and new == old[:-2] + "_seconds"
    assert new in VeniceSection.model_fields
    settings = validate_config({"venice": {old: 7}}, registry).section(VeniceSection)
    assert getattr(settings, new) == 7
    assert any(new in line for line in warnings), warnings


def test_no_venice_key_ends_in_s_any_more():
    assert not [name for name in VeniceSection.model_fields if name.endswith("_s")]


def test_an_old_url_resolver_key_loads_with_a_warning(registry, warnings):
    raw = {"resolvers": {"url": {"timeout_s": 7, "connect_timeout_s": 2}}}
    params = validate_config(raw, registry).resolver_params["url"]
    assert isinstance(params, UrlResolver.Params)
    assert (params.timeout_seconds, params.connect_timeout_seconds) == (7, 2)
    assert any("connect_timeout_seconds" in line for line in warnings), warnings


def test_giving_both_url_resolver_keys_is_an_error(registry, warnings):
    raw = {"resolvers": {"url": {"timeout_s": 7, "timeout_seconds": 8}}}
    with pytest.raises(ConfigError, match=r"resolvers\.url\.timeout_s"):
        validate_config(raw, registry, path=Path("/etc/hf/test.toml"))


@pytest.mark.parametrize(("old", "new"), sorted(SANDBOX_RENAMED.items()))
def test_the_sandbox_config_still_takes_its_old_names(old, new, warnings):
    assert getattr(SandboxConfig(**{old: 3.0}), new) == 3.0
    assert any(new in line for line in warnings), warnings
    state = SandboxState(SandboxConfig())
    assert getattr(state.configure({old: 4.0}), new) == 4.0  # PATCH /_sandbox/config
