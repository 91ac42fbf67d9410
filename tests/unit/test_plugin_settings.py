"""A plugin's own table, ``[plugins.NAME]``: declared with ``hotfolder_plugin_settings``,
validated by the real config loader with key paths and "did you mean", read typed at run time;
and the mistakes a plugin can make in declaring it."""

from __future__ import annotations

from typing import Any

import pytest
from loguru import logger
from pydantic import Field

import hotfolder
from hotfolder.config import validate_config
from hotfolder.errors import ConfigError, PluginError
from hotfolder.testing import make_runtime, plugin_manager, registry_for

CHAINS = {"web": {"outputs": [{"sink": "folder", "path": "out"}]}}


class BlurSettings(hotfolder.PluginSettings):
    radius: float = Field(default=2.0, gt=0)
    token: hotfolder.SecretRef = hotfolder.SecretRef(env="BLUR_TOKEN")
    timeout_seconds: float = 5.0
    renamed = {"timeout_s": "timeout_seconds"}


class Declares:
    """A plugin named ``blur`` that declares ``model`` as its settings."""

    def __init__(self, model: Any = BlurSettings, name: str = "blur") -> None:
        self.model = model
        self.__name__ = name

    @hotfolder.hookimpl
    def hotfolder_plugin_settings(self) -> Any:
        return self.model


def test_the_table_is_validated_and_read_typed_with_a_secret_inside(tmp_path, monkeypatch):
    (tmp_path / "token.txt").write_text("s3cret\n")
    raw = {
        "plugins": {"blur": {"radius": 4, "token": {"file": "token.txt"}}},
        "chains": CHAINS,
    }
    runtime = make_runtime(raw, Declares(), base_dir=tmp_path)
    settings = runtime.plugin_settings(BlurSettings)
    assert settings.radius == 4 and settings.timeout_seconds == 5.0
    assert settings.token.file == tmp_path / "token.txt"  # relative to the config's folder
    assert settings.token.reveal() == "s3cret"
    assert runtime.config.plugin_settings(BlurSettings) is settings


def test_a_table_left_out_reads_as_its_defaults():
    runtime = make_runtime({"chains": CHAINS}, Declares())
    assert runtime.plugin_settings(BlurSettings) == BlurSettings()


def test_an_inline_secret_is_refused_without_echoing_it():
    raw = {"plugins": {"blur": {"token": "s3cret-inline"}}, "chains": CHAINS}
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, registry_for(Declares()))
    assert "plugins.blur.token: secrets are given by reference" in str(caught.value)
    assert "s3cret-inline" not in str(caught.value)


def test_unknown_keys_and_plugins_get_key_paths_and_did_you_mean():
    raw = {
        "plugins": {"blur": {"radiuss": 3, "radius": -1}, "blr": {"radius": 1}},
        "chains": CHAINS,
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, registry_for(Declares()))
    text = str(caught.value)
    assert "plugins.blur.radiuss: unknown key; did you mean 'radius'?" in text
    assert "plugins.blur.radius: Input should be greater than 0 (got -1)" in text
    assert (
        "plugins.blr: no plugin named 'blr' is installed that takes settings; "
        "did you mean 'blur'?" in text
    )
    with pytest.raises(ConfigError, match=r"plugins\.disabld: no plugin named 'disabld'"):
        validate_config({"plugins": {"disabld": []}, "chains": CHAINS}, registry_for())


def test_a_renamed_key_still_loads_with_a_warning_naming_the_table():
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        raw = {"plugins": {"blur": {"timeout_s": 9}}, "chains": CHAINS}
        runtime = make_runtime(raw, Declares())
    finally:
        logger.remove(sink)
    assert runtime.plugin_settings(BlurSettings).timeout_seconds == 9
    [warning] = lines
    assert "[plugins.blur] timeout_s is deprecated" in warning and "timeout_seconds" in warning


def test_a_disabled_plugins_table_is_kept_but_ignored(monkeypatch):
    monkeypatch.setenv("HOTFOLDER_DISABLE_PLUGINS", "blur")
    pm = plugin_manager(Declares())
    from hotfolder.plugins import build_registry

    registry = build_registry(pm)
    assert "blur" not in registry.settings
    config = validate_config(
        {"plugins": {"disabled": ["blur"], "blur": {"radius": 3}}, "chains": CHAINS}, registry
    )
    assert config.plugin_settings(BlurSettings) == BlurSettings()


class Required(hotfolder.PluginSettings):
    url: str


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (Declares(model=Required), "Required has fields without a default: ['url']"),
        (Declares(model=dict), "which is not a settings model"),
        (Declares(model=hotfolder.Params), "which is not a settings model"),
        (Declares(name="my-blur"), "[plugins.my-blur] cannot be its table"),
        (Declares(name="disabled"), "[plugins.disabled] cannot be its table"),
    ],
)
def test_a_bad_declaration_is_a_plugin_error_that_names_the_plugin(plugin, message):
    with pytest.raises(PluginError) as caught:
        registry_for(plugin)
    assert message in str(caught.value)
    assert repr(plugin.__name__) in str(caught.value)


def test_a_plugin_that_raises_in_the_hook_is_named():
    class Raises:
        __name__ = "raiser"

        @hotfolder.hookimpl
        def hotfolder_plugin_settings(self) -> Any:
            raise RuntimeError("broken")

    with pytest.raises(PluginError, match="plugin 'raiser' raised in hotfolder_plugin_settings"):
        registry_for(Raises())
