"""The engine's promise about paid steps: a result saved once is never paid for again, unless
the step itself changed."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from PIL import Image, ImageOps

import hotfolder
from hotfolder.config import validate_config
from hotfolder.engine import Engine
from hotfolder.errors import InputError
from hotfolder.job import Job
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime

CALLS: list[str] = []


class PaidInvert(hotfolder.Operation):
    name = "paid-invert"
    paid = True

    class Params(hotfolder.Params):
        label: str = "a"

    async def run(self, context, image):
        CALLS.append(self.params.label)
        context.record.cost_usd = 0.5
        return image.with_image(ImageOps.invert(image.image.convert("RGB")), format="PNG")


class Plugin:
    @hotfolder.hookimpl
    def hotfolder_register_operations(self, register):
        register(PaidInvert)


def _run(tmp_path, label: str, checkpoints):
    pm = make_plugin_manager(load_entrypoints=False, extra=[(Plugin(), "paid")])
    registry = build_registry(pm)
    raw = {
        "chains": {
            "c": {
                "steps": [{"op": "resize", "width": 100}, {"op": "paid-invert", "label": label}],
                "outputs": [
                    {"sink": "folder", "path": str(tmp_path / "out"), "name": "{stem}-{n}.{ext}"}
                ],
            }
        }
    }
    engine = Engine(Runtime(validate_config(raw, registry), pm, registry))
    job = Job(
        source=str(tmp_path / "in.png"), chain="c", checkpoint_dir=checkpoints, seq=len(CALLS)
    )
    return asyncio.run(engine.run(job))


def test_a_saved_paid_result_is_reused_and_a_changed_step_runs_again(tmp_path):
    CALLS.clear()
    Image.new("RGB", (300, 200), (10, 20, 30)).save(tmp_path / "in.png")
    checkpoints = tmp_path / "checkpoints"

    first = _run(tmp_path, "a", checkpoints)
    again = _run(tmp_path, "a", checkpoints)
    assert CALLS == ["a"]  # the second run paid nothing
    assert [s.from_checkpoint for s in again.steps] == [False, True]
    assert first.cost_usd == 0.5 and again.cost_usd == 0.0
    with Image.open(again.outputs[0].location) as im:
        assert im.size == (100, 67)
        assert im.convert("RGB").getpixel((5, 5)) == (245, 235, 225)

    _run(tmp_path, "b", checkpoints)  # the step's parameters changed: it runs (and pays) again
    assert CALLS == ["a", "b"]


def test_without_a_checkpoint_folder_every_run_pays(tmp_path):
    CALLS.clear()
    Image.new("RGB", (300, 200), (10, 20, 30)).save(tmp_path / "in.png")
    _run(tmp_path, "a", None)
    _run(tmp_path, "a", None)
    assert CALLS == ["a", "a"]


def _resize_engine(tmp_path):
    pm = make_plugin_manager(load_entrypoints=False, extra=[(Plugin(), "paid")])
    registry = build_registry(pm)
    raw = {
        "chains": {
            "c": {
                "steps": [{"op": "resize", "width": 100}],
                "outputs": [{"sink": "folder", "path": str(tmp_path / "out")}],
            }
        }
    }
    return Engine(Runtime(validate_config(raw, registry), pm, registry))


def test_an_input_resolved_first_is_not_resolved_again(tmp_path, monkeypatch):
    engine = _resize_engine(tmp_path)
    Image.new("RGB", (300, 200), (10, 20, 30)).save(tmp_path / "in.png")
    sha256 = hashlib.sha256((tmp_path / "in.png").read_bytes()).hexdigest()
    job = Job(source=str(tmp_path / "in.png"), chain="c")

    async def resolved_again(*args, **kwargs):
        raise AssertionError("resolved again")

    async def scenario():
        job_input = await engine.resolve(job)
        monkeypatch.setattr(engine.runtime, "resolve", resolved_again)
        return await engine.run(job, job_input=job_input)

    result = asyncio.run(scenario())
    assert result.input_sha256 == sha256
    with Image.open(result.outputs[0].location) as im:
        assert im.size == (100, 67)


def test_a_file_changed_after_it_was_resolved_is_refused_not_used(tmp_path):
    """A resolved local file keeps no copy of its bytes: they are read again when needed, and
    a file that no longer holds them is an input error naming it, never other bytes used."""
    engine = _resize_engine(tmp_path)
    source = tmp_path / "in.png"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(source)
    job = Job(source=str(source), chain="c")

    async def scenario():
        job_input = await engine.resolve(job)
        Image.new("RGB", (300, 200), (200, 20, 30)).save(source)  # same size, other pixels
        return await engine.run(job, job_input=job_input)

    with pytest.raises(InputError) as caught:
        asyncio.run(scenario())
    assert str(source) in caught.value.message
    assert "changed while hotfolder was working on it" in caught.value.message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_failed_resolve_is_reported_as_a_failed_run(tmp_path):
    events = []

    class Observer:
        @hotfolder.hookimpl
        def hotfolder_job_started(self, job):
            events.append("started")

        @hotfolder.hookimpl
        def hotfolder_job_failed(self, job, error):
            events.append(f"failed: {type(error).__name__}")

    pm = make_plugin_manager(load_entrypoints=False, extra=[(Observer(), "observer")])
    registry = build_registry(pm)
    raw = {
        "chains": {
            "c": {
                "steps": [{"op": "auto-orient"}],
                "outputs": [{"sink": "folder", "path": str(tmp_path / "out")}],
            }
        }
    }
    engine = Engine(Runtime(validate_config(raw, registry), pm, registry))
    missing = Job(source=str(tmp_path / "nope.png"), chain="c")
    with pytest.raises(InputError, match="does not exist"):
        asyncio.run(engine.resolve(missing))
    with pytest.raises(InputError, match="does not exist"):
        asyncio.run(engine.run(missing))
    assert events == ["started", "failed: InputError"] * 2
