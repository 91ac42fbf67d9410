"""Config tables owned by plugins: ``hotfolder_register_sections``, through the real plugin
manager, registry and config loader."""

from __future__ import annotations

import pytest
from pydantic import Field

import hotfolder
from hotfolder.config import validate_config
from hotfolder.errors import ConfigError, PluginError
from hotfolder.testing import make_runtime, registry_for


class BlurSection(hotfolder.Section):
    table = "blur"

    radius: float = Field(default=2.0, gt=0)
    timeout_seconds: float = 5.0
    renamed = {"timeout_s": "timeout_seconds"}


class Targets(hotfolder.Section):
    table = "targets"
    array = True
    chain_fields = ("chain",)

    chain: str
    name: str


class BlurPlugin:
    __name__ = "blur_plugin"

    @hotfolder.hookimpl
    def hotfolder_register_sections(self, register):
        register(BlurSection)
        register(Targets)


CHAIN = {"web": {"outputs": [{"sink": "folder", "path": "out"}]}}


def test_a_registered_table_is_validated_and_read_typed(tmp_path):
    raw = {"blur": {"radius": 4}, "targets": [{"chain": "web", "name": "a"}], "chains": CHAIN}
    runtime = make_runtime(raw, BlurPlugin(), base_dir=tmp_path)
    assert runtime.section(BlurSection) == BlurSection(radius=4)
    assert runtime.config.sections(Targets) == [Targets(chain="web", name="a")]


def test_a_table_left_out_reads_as_its_defaults(tmp_path):
    runtime = make_runtime({"chains": CHAIN}, BlurPlugin(), base_dir=tmp_path)
    assert runtime.section(BlurSection).radius == 2.0
    assert runtime.config.sections(Targets) == []


def test_problems_in_a_registered_table_get_key_paths_and_did_you_mean():
    registry = registry_for(BlurPlugin())
    with pytest.raises(ConfigError) as caught:
        validate_config({"blur": {"radiuss": 3, "timeout_s": 1}, "chains": CHAIN}, registry)
    assert "blur.radiuss: unknown key; did you mean 'radius'?" in str(caught.value)
    targets = {"targets": [{"chain": "wbe", "name": "a"}], "chains": CHAIN}
    with pytest.raises(ConfigError) as caught:
        validate_config(targets, registry)
    assert "targets[0].chain: no chain named 'wbe' (did you mean 'web'?)" in str(caught.value)


def test_an_unregistered_table_is_an_unknown_key():
    with pytest.raises(ConfigError, match="blur: unknown key"):
        validate_config({"blur": {"radius": 3}}, registry_for())


def test_two_plugins_registering_one_table_are_both_named():
    class Other:
        __name__ = "other_plugin"

        @hotfolder.hookimpl
        def hotfolder_register_sections(self, register):
            register(BlurSection)

    with pytest.raises(PluginError, match="section 'blur' is registered twice") as caught:
        registry_for(BlurPlugin(), Other())
    assert "'blur_plugin'" in str(caught.value) and "'other_plugin'" in str(caught.value)


def test_a_plugin_cannot_take_a_kernel_table():
    class Imaging(hotfolder.Section):
        table = "chains"

    class Thief:
        __name__ = "thief"

        @hotfolder.hookimpl
        def hotfolder_register_sections(self, register):
            register(Imaging)

    with pytest.raises(PluginError, match=r"'thief' registered the table \[chains\]"):
        validate_config({}, registry_for(Thief()))
