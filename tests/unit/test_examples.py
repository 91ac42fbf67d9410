"""Every config the project ships is valid: a user copying one starts from one that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfolder.config import load_config
from hotfolder.daemon.settings import FolderSection
from hotfolder.plugins import build_registry, make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    [ROOT / "config" / "hotfolder.toml", *(ROOT / "config" / "examples").glob("*.toml")]
)
CONFIGS = [p for p in CONFIGS if not p.name.endswith(".job.toml")]


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(load_entrypoints=False))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_is_valid(path, registry):
    config = load_config(path, registry)
    assert config.chains
    for folder in config.sections(FolderSection):
        assert folder.chain in config.chains
