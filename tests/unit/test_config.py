"""Config validation: key paths, did-you-mean, secrets by reference, discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfolder.config import find_config, load_config, validate_config
from hotfolder.daemon.settings import FolderSection
from hotfolder.errors import ConfigError
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.starter import starter_config


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(load_entrypoints=False))


def _chain(*steps, outputs=None):
    return {"steps": list(steps), "outputs": outputs or [{"sink": "folder", "path": "out"}]}


def _error(raw, registry) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(raw, registry, path=Path("/etc/hf/test.toml"))
    return str(info.value)


def test_starter_config_is_valid(registry, tmp_path):
    path = tmp_path / "hotfolder.toml"
    path.write_text(starter_config())
    config = load_config(path, registry)
    assert set(config.chains) == {"web", "cutout"}
    assert config.sections(FolderSection)[0].path == tmp_path / "inbox"  # relative to the file
    sink = config.chain("web").outputs[0]
    assert sink.params.path == tmp_path / "outbox/web"


def test_misspelt_step_param_names_key_path_and_suggests(registry):
    raw = {"chains": {"product": _chain({"op": "auto-orient"}, {"op": "resize", "widht": 100})}}
    text = _error(raw, registry)
    assert "/etc/hf/test.toml" in text
    assert "chains.product.steps[1].widht: unknown key; did you mean 'width'?" in text


def test_out_of_range_param_shows_value_and_limit(registry):
    raw = {"chains": {"product": _chain({"op": "convert", "format": "jpeg", "quality": 500})}}
    text = _error(raw, registry)
    assert "chains.product.steps[0].quality" in text
    assert "500" in text and "100" in text


def test_unknown_op_and_sink_suggest_the_near_name(registry):
    raw = {"chains": {"c": _chain({"op": "resise"}, outputs=[{"sink": "foldr", "path": "x"}])}}
    text = _error(raw, registry)
    assert "chains.c.steps[0].op: unknown operation 'resise' (did you mean 'resize'?)" in text
    assert "chains.c.outputs[0].sink: unknown sink 'foldr' (did you mean 'folder'?)" in text


def test_misspelt_top_level_and_section_keys(registry):
    text = _error({"venise": {}, "imaging": {"max_pixel": 5}}, registry)
    assert "venise: unknown key; did you mean 'venice'?" in text
    assert "imaging.max_pixel: unknown key; did you mean 'max_pixels'?" in text


def test_every_problem_is_reported_at_once(registry):
    raw = {
        "folders": [{"path": "in", "chain": "nope", "after": "shred"}],
        "chains": {"c": _chain({"op": "resize", "mode": "sideways", "width": 5})},
    }
    text = _error(raw, registry)
    assert "folders[0].after" in text and "'shred'" in text
    assert "chains.c.steps[0].mode" in text
    assert "folders[0].chain: no chain named 'nope'" not in text or "chains.c" in text


def test_folder_with_unknown_chain(registry):
    raw = {
        "folders": [{"path": "in", "chain": "webb"}],
        "chains": {"web": _chain({"op": "auto-orient"})},
    }
    assert "folders[0].chain: no chain named 'webb' (did you mean 'web'?)" in _error(raw, registry)


def test_secret_inline_is_refused_without_echoing_it(registry):
    text = _error({"venice": {"api_key": "sk-live-abcdef123456"}}, registry)
    assert "venice.api_key" in text
    assert "by reference" in text
    assert "sk-live-abcdef123456" not in text


def test_toml_syntax_error_names_file_and_line(registry, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[venice]\nrequests_per_minute = = 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, registry)
    assert str(path) in str(info.value) and "line" in str(info.value)


def test_discovery_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOTFOLDER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with pytest.raises(ConfigError, match="hotfolder init"):
        find_config()
    user = tmp_path / "xdg" / "hotfolder" / "hotfolder.toml"
    user.parent.mkdir(parents=True)
    user.write_text("")
    assert find_config() == user
    (tmp_path / "hotfolder.toml").write_text("")
    assert find_config() == tmp_path / "hotfolder.toml"
    env = tmp_path / "env.toml"
    env.write_text("")
    monkeypatch.setenv("HOTFOLDER_CONFIG", str(env))
    assert find_config() == env
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("")
    assert find_config(explicit) == explicit
