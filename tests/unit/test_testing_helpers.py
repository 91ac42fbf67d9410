"""hotfolder.testing: the helpers plugin authors test with do what docs/plugins.md says."""

from __future__ import annotations

import io
import tomllib

import pytest
from PIL import Image

import hotfolder
from hotfolder.errors import ConfigError, OperationError, PluginError, Unavailable
from hotfolder.testing import (
    CHAIN,
    hot_folder,
    make_image,
    make_runtime,
    plugin_manager,
    registry_for,
    run_chain,
    sandbox,
)


class Flip(hotfolder.Operation):
    name = "test.flip"

    def run(self, context, image):
        return image.with_image(image.image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))


class Refuse(hotfolder.Operation):
    name = "test.refuse"

    def run(self, context, image):
        msg = f"{image.name}: refused on purpose"
        raise OperationError(msg)


class Buggy(hotfolder.Operation):
    name = "test.buggy"

    def run(self, context, image):
        return 1 / 0


class FlipPlugin:
    __name__ = "flip-plugin"

    @hotfolder.hookimpl
    def hotfolder_register_operations(self, register):
        register(Flip)
        register(Refuse)
        register(Buggy)


PLUGIN = FlipPlugin()


def test_plugin_manager_has_the_builtins_and_the_plugin_but_no_entry_points():
    names = {name for name, _ in plugin_manager(PLUGIN).list_name_plugin()}
    assert {"flip-plugin", "hotfolder_plugins.local_ops"} <= names
    assert "template" not in names, "installed entry points stay out unless asked for"
    assert "template" in {n for n, _ in plugin_manager(entrypoints=True).list_name_plugin()}


def test_registry_for_without_builtins_holds_only_the_plugins_components():
    registry = registry_for(PLUGIN, builtins=False)
    assert set(registry.operations) == {"test.flip", "test.refuse", "test.buggy"}
    assert registry.operations["test.flip"].plugin == "flip-plugin"
    assert registry.sinks == {}


def test_make_runtime_from_a_dict_toml_text_or_a_file(tmp_path):
    config = {
        "chains": {
            "c": {"steps": [{"op": "test.flip"}], "outputs": [{"sink": "folder", "path": "out"}]}
        }
    }
    runtime = make_runtime(config, PLUGIN, base_dir=tmp_path)
    assert runtime.config.chain("c").outputs[0].params.path == tmp_path / "out"
    assert "path" in config["chains"]["c"]["outputs"][0], "the caller's dict is left alone"

    text = '[chains.c]\noutputs = [{ sink = "folder", path = "o" }]\n'
    assert (
        make_runtime(text, base_dir=tmp_path).config.chain("c").outputs[0].params.path
        == tmp_path / "o"
    )

    file = tmp_path / "sub" / "hotfolder.toml"
    file.parent.mkdir()
    file.write_text(text)
    runtime = make_runtime(file)
    assert runtime.config.path == file
    assert runtime.config.chain("c").outputs[0].params.path == file.parent / "o"


def test_make_runtime_reports_a_bad_config_like_the_cli():
    with pytest.raises(ConfigError, match=r"unknown operation 'test\.flip'"):
        make_runtime(
            {
                "chains": {
                    "c": {
                        "steps": [{"op": "test.flip"}],
                        "outputs": [{"sink": "folder", "path": "o"}],
                    }
                }
            }
        )


def test_hot_folder_drops_complete_images_and_writes_a_daemon_config(tmp_path):
    folder = hot_folder(tmp_path)
    assert folder.inbox.is_dir() and folder.outbox.is_dir()
    jpeg = folder.drop("a.jpg")
    with Image.open(jpeg) as im:
        assert (im.format, im.size) == ("JPEG", (64, 48))
    assert folder.drop("raw.bin", b"xyz").read_bytes() == b"xyz"
    with pytest.raises(ValueError, match="cannot tell an image format"):
        folder.drop("notes.txt")
    assert list(folder.inbox.glob(".*")) == [], "no temporary files left behind"

    path = folder.write_config([{"op": "resize", "width": 10}], daemon={"rescan_seconds": 1})
    raw = tomllib.loads(path.read_text())
    assert raw["folders"] == [{"path": "inbox", "chain": CHAIN}]
    runtime = make_runtime(path)
    assert runtime.config.chain(CHAIN).outputs[0].params.path == folder.outbox
    assert runtime.config.file.daemon.rescan_seconds == 1


def test_make_image_marks_its_top_left_corner():
    with Image.open(io.BytesIO(make_image((20, 10), (255, 255, 255), "WEBP"))) as im:
        assert (im.format, im.size) == ("WEBP", (20, 10))
        assert im.convert("RGB").getpixel((0, 0))[0] < 60 < im.convert("RGB").getpixel((19, 9))[0]


def test_run_chain_runs_the_real_engine_and_returns_the_result(tmp_path):
    photo = hot_folder(tmp_path).drop("photo.png")
    result = run_chain(photo, [{"op": "test.flip"}], plugins=[PLUGIN])
    [output] = result.outputs
    assert output.location == str(tmp_path / "inbox" / "out" / "photo.png")
    assert [s.op for s in result.steps] == ["test.flip"]
    with Image.open(output.location) as im:
        assert im.convert("RGB").getpixel((63, 0))[0] < 60, "the dark corner moved right"


def test_run_chain_with_outputs_or_a_named_chain_from_config(tmp_path):
    photo = hot_folder(tmp_path).drop("photo.png")
    outputs = [
        {"sink": "folder", "path": str(tmp_path / "x"), "name": "{stem}-{n}.{ext}"},
        {"sink": "sidecar"},
    ]
    result = run_chain(photo, [], outputs=outputs)
    assert [o.sink for o in result.outputs] == ["folder", "sidecar"]
    assert result.outputs[0].location == str(tmp_path / "x" / "photo-1.png")

    config = """
[chains.web]
steps = [{ op = "convert", format = "jpeg" }]
outputs = [{ sink = "folder", path = "web" }]
"""
    (tmp_path / "hotfolder.toml").write_text(config)
    result = run_chain(photo, "web", config=tmp_path / "hotfolder.toml")
    assert result.outputs[0].location == str(tmp_path / "web" / "photo.jpg")


def test_run_chain_raises_the_jobs_error(tmp_path):
    photo = hot_folder(tmp_path).drop("photo.png")
    with pytest.raises(OperationError, match="refused on purpose"):
        run_chain(photo, [{"op": "test.refuse"}], plugins=[PLUGIN])
    with pytest.raises(PluginError, match=r"'test\.buggy' failed unexpectedly"):
        run_chain(photo, [{"op": "test.buggy"}], plugins=[PLUGIN])


def test_sandbox_faults_are_scripted_and_can_be_changed_while_it_runs(tmp_path):
    photo = hot_folder(tmp_path).drop("photo.jpg", make_image((256, 256), format="JPEG"))
    steps = [{"op": "venice.upscale", "scale": 2}]
    fast = {"venice": {"max_attempts": 2, "backoff_base_seconds": 0, "backoff_cap_seconds": 0}}
    with sandbox(faults={503: 1.0}) as venice:
        with pytest.raises(Unavailable):
            run_chain(photo, steps, config=fast, sandbox=venice)
        assert venice.stats()["requests"]["/image/upscale"] == {"503": 2}

        venice.configure(fault_rates={})
        result = run_chain(photo, steps, config=fast, sandbox=venice)
    assert result.steps[0].request_ids and result.steps[0].cost_usd
    with Image.open(result.outputs[0].location) as im:
        assert im.size == (512, 512)


def test_sandbox_takes_reset_as_a_fault_and_other_settings():
    with sandbox(faults={"reset": 0.25, 500: 0.5}, seed=7, balance_usd=3) as venice:
        config = venice.state.config
        assert (config.reset_rate, config.fault_rates, config.seed) == (0.25, {500: 0.5}, 7)
        assert config.balance_usd == 3
