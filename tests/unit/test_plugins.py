"""The plugin engine: built-ins as plugins, entry points, blocking, duplicates, bad plugins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

import hotfolder
from hotfolder.config import validate_config
from hotfolder.engine import Engine
from hotfolder.errors import ConfigError, PluginError
from hotfolder.job import Job
from hotfolder.plugins import DEFAULT_PLUGINS, build_registry, make_plugin_manager, plugin_info
from hotfolder.runtime import Runtime


class Twice(hotfolder.Operation):
    name = "twice"

    def run(self, context, image):
        return image


class Boom(hotfolder.Operation):
    name = "boom"

    def run(self, context, image):
        raise ZeroDivisionError("plugin bug")


class _Plugin:
    def __init__(self, *classes):
        self.classes = classes

    @hotfolder.hookimpl
    def hotfolder_register_operations(self, register):
        for cls in self.classes:
            register(cls)


def test_builtins_are_registered_as_plugins_under_their_module_names():
    pm = make_plugin_manager(load_entrypoints=False)
    names = {name for name, _ in pm.list_name_plugin()}
    assert set(DEFAULT_PLUGINS) <= names
    registry = build_registry(pm)
    assert registry.operations["resize"].plugin == "hotfolder_plugins.local_ops"
    assert registry.sinks["folder"].plugin == "hotfolder_plugins.sinks"
    assert registry.resolvers["path"].plugin == "hotfolder_plugins.resolvers"


def test_entry_point_plugin_is_discovered():
    pm = make_plugin_manager()
    info = {row["name"]: row for row in plugin_info(pm)}
    assert info["template"]["distribution"] == "hotfolder-template"
    assert "hotfolder_register_operations" in info["template"]["hooks"]
    assert "template.sepia" in build_registry(pm).operations


def test_blocked_by_config_and_by_environment(monkeypatch):
    pm = make_plugin_manager(["hotfolder_plugins.venice_ops"], load_entrypoints=False)
    assert pm.get_plugin("hotfolder_plugins.venice_ops") is None
    assert "venice.edit" not in build_registry(pm).operations

    monkeypatch.setenv("HOTFOLDER_DISABLE_PLUGINS", "template, hotfolder_plugins.sinks")
    pm = make_plugin_manager()
    assert pm.get_plugin("template") is None
    sinks = build_registry(pm).sinks
    assert "folder" not in sinks and "sidecar" not in sinks


def test_duplicate_name_names_both_plugins():
    class Resize(hotfolder.Operation):
        name = "resize"

    pm = make_plugin_manager(load_entrypoints=False, extra=[(_Plugin(Resize), "my-plugin")])
    with pytest.raises(PluginError) as info:
        build_registry(pm)
    assert "'hotfolder_plugins.local_ops'" in str(info.value)
    assert "'my-plugin'" in str(info.value)
    assert "HOTFOLDER_DISABLE_PLUGINS" in str(info.value)


def test_misspelt_hook_fails_loudly():
    class Typo:
        @hotfolder.hookimpl
        def hotfolder_register_operation(self, register):  # missing "s"
            pass

    with pytest.raises(PluginError, match="does not exist"):
        make_plugin_manager(load_entrypoints=False, extra=[(Typo(), "typo")])


def test_registering_a_non_operation_is_a_clear_error():
    pm = make_plugin_manager(load_entrypoints=False, extra=[(_Plugin(dict), "weird")])
    with pytest.raises(PluginError, match="not a subclass"):
        build_registry(pm)


def _runtime(tmp_path: Path, *plugins, observers=()):
    pm = make_plugin_manager(
        load_entrypoints=False,
        extra=[(_Plugin(*plugins), "test-ops"), *[(o, f"obs{i}") for i, o in enumerate(observers)]],
    )
    registry = build_registry(pm)
    raw = {
        "chains": {
            "ok": {
                "steps": [{"op": "twice"}],
                "outputs": [{"sink": "folder", "path": str(tmp_path / "out")}],
            },
            "bad": {
                "steps": [{"op": "boom"}],
                "outputs": [{"sink": "folder", "path": str(tmp_path / "out")}],
            },
        }
    }
    return Runtime(validate_config(raw, registry), pm, registry)


def _image(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    Image.new("RGB", (300, 300), (200, 10, 10)).save(path)
    return path


def test_a_plugin_that_raises_fails_that_job_only(tmp_path):
    events = []

    class Observer:
        @hotfolder.hookimpl
        def hotfolder_job_succeeded(self, job, result):
            events.append(("ok", Path(job.source).name, len(result.outputs)))

        @hotfolder.hookimpl
        def hotfolder_job_failed(self, job, error):
            events.append(("failed", Path(job.source).name, type(error).__name__))

    class RaisingObserver:
        @hotfolder.hookimpl
        def hotfolder_job_started(self, job):
            raise RuntimeError("observer bug")

    runtime = _runtime(tmp_path, Twice, Boom, observers=[Observer(), RaisingObserver()])
    engine = Engine(runtime)
    a, b = _image(tmp_path, "a.png"), _image(tmp_path, "b.png")

    async def both():
        return await asyncio.gather(
            engine.run(Job(source=str(a), chain="bad")),
            engine.run(Job(source=str(b), chain="ok")),
            return_exceptions=True,
        )

    bad, good = asyncio.run(both())
    assert isinstance(bad, PluginError)
    assert "'boom'" in str(bad) and "plugin bug" in str(bad)
    assert isinstance(good, hotfolder.JobResult)
    assert (tmp_path / "out" / "b.png").is_file()
    assert sorted(events) == [("failed", "a.png", "PluginError"), ("ok", "b.png", 1)]


def test_a_step_past_its_time_limit_is_a_retryable_step_timeout(tmp_path):
    from hotfolder.errors import StepTimeout

    class Slow(hotfolder.Operation):
        name = "slow"

        async def run(self, context, image):
            await asyncio.sleep(5)
            return image

    pm = make_plugin_manager(load_entrypoints=False, extra=[(_Plugin(Slow), "slow-ops")])
    registry = build_registry(pm)
    raw = {
        "chains": {"c": {"steps": [{"op": "slow"}], "outputs": [{"sink": "folder", "path": "o"}]}}
    }
    engine = Engine(Runtime(validate_config(raw, registry), pm, registry), step_timeout=0.2)
    with pytest.raises(StepTimeout) as info:
        asyncio.run(engine.run(Job(source=str(_image(tmp_path, "a.png")), chain="c")))
    assert info.value.retryable
    assert "step 0 (slow) took longer than 0.2s" in str(info.value)
    assert info.value.step == "0:slow"


def test_an_operation_of_a_disabled_plugin_says_the_plugin_is_disabled():
    from hotfolder.plugins import build_registry, make_plugin_manager

    pm = make_plugin_manager(["hotfolder_plugins.venice_ops"], load_entrypoints=False)
    registry = build_registry(pm)
    with pytest.raises(ConfigError) as caught:
        registry.operation("venice.edit")
    assert "unknown operation 'venice.edit'" in caught.value.message
    assert "disabled and one may provide it: hotfolder_plugins.venice_ops" in caught.value.hint
