"""The folder and sidecar sinks: atomic, explicit mode, collisions, containment, records."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import hotfolder
from hotfolder import Artifact, Job, Output, SinkContext, StepRecord
from hotfolder.config import validate_config
from hotfolder.errors import ConfigError, SinkError
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder_plugins.sinks import FolderSink, SidecarSink

PHOTOS = Path(__file__).resolve().parents[3] / "shared/corpus/photos"
JPEG = PHOTOS / "hopper.jpg"
ROTATED = PHOTOS / "hopper_orientation_6.jpg"
OTHERS = ("hotfolder_plugins.local_ops", "hotfolder_plugins.venice_ops")
INPUT_SHA = "ab12cd34" + "0" * 56


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    pm = make_plugin_manager(OTHERS, load_entrypoints=False)
    registry = build_registry(pm)
    return Runtime(validate_config({}, registry), pm, registry)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o077)
    yield
    os.umask(old)


def artifact(path: Path = JPEG, name: str = "photo.jpg", **info: Any) -> Artifact:
    made = Artifact.from_bytes(path.read_bytes(), name=name)
    made.info.update(info)
    return made


def context(runtime: Runtime, written: list[Output] | None = None, **job: Any) -> SinkContext:
    steps = [
        StepRecord(0, "auto-orient", {}, seconds=0.01),
        StepRecord(
            1,
            "venice.upscale",
            {"scale": 2},
            paid=True,
            seconds=2.5,
            cost_usd=0.02,
            request_ids=["ray-1"],
        ),
        StepRecord(2, "venice.edit", {}, paid=True, cost_usd=0.04, from_checkpoint=True),
    ]
    the_job = Job(**{"source": "/in/photo.jpg", "chain": "product", "seq": 7} | job)
    return SinkContext(the_job, runtime, steps, list(written or []), INPUT_SHA)


def folder_sink(tmp_path: Path, **params: Any) -> FolderSink:
    values = {"path": "out"} | params
    return FolderSink(FolderSink.Params.model_validate(values, context={"base_dir": tmp_path}))


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- folder -----------------------------------------------------------------------------------


def test_folder_writes_with_the_default_name(tmp_path: Path, runtime: Runtime) -> None:
    (output,) = folder_sink(tmp_path).write(context(runtime), artifact())
    target = tmp_path / "out" / "photo.jpg"
    assert output == Output("folder", str(target.resolve()), JPEG.stat().st_size, "image/jpeg")
    assert target.read_bytes() == JPEG.read_bytes()


def test_folder_template_fields_and_subfolders(tmp_path: Path, runtime: Runtime) -> None:
    sink = folder_sink(tmp_path, name="{chain}/{date}/{n:04d}-{stem}-{hash8}.{ext}")
    (output,) = sink.write(context(runtime), artifact())
    expected = tmp_path / "out" / "product" / date.today().isoformat() / "0007-photo-ab12cd34.jpg"
    assert output.location == str(expected.resolve())
    assert expected.is_file()


def test_folder_sanitises_a_hostile_chain_name(tmp_path: Path, runtime: Runtime) -> None:
    sink = folder_sink(tmp_path, name="{chain}/{stem}.{ext}")
    (output,) = sink.write(context(runtime, chain="../../etc"), artifact())
    assert Path(output.location).is_relative_to((tmp_path / "out").resolve())
    assert files(tmp_path / "out") == ["_.._etc/photo.jpg"]


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../{stem}.{ext}", "'..'"),
        ("/abs/{stem}", "relative"),
        ("{stem.__class__}", "allowed fields"),
        ("{stem!r}.{ext}", "conversions"),
        ("{0}.{ext}", "allowed fields"),
        ("{input}.{ext}", "allowed fields"),
    ],
)
def test_folder_bad_templates_fail_when_the_config_loads(name: str, match: str) -> None:
    pm = make_plugin_manager(OTHERS, load_entrypoints=False)
    raw = {"chains": {"c": {"outputs": [{"sink": "folder", "path": "out", "name": name}]}}}
    with pytest.raises(ConfigError, match=match) as caught:
        validate_config(raw, build_registry(pm))
    assert "chains.c.outputs[0].name" in str(caught.value)


@pytest.mark.parametrize(("mode", "expected"), [(None, 0o644), ("0640", 0o640), (0o600, 0o600)])
def test_folder_mode_is_honoured_whatever_the_umask(
    tmp_path: Path, runtime: Runtime, umask: None, mode: Any, expected: int
) -> None:
    sink = folder_sink(tmp_path, **({} if mode is None else {"mode": mode}))
    (output,) = sink.write(context(runtime), artifact())
    assert os.stat(output.location).st_mode & 0o777 == expected


@pytest.mark.parametrize("mode", [644, "0999", "rw-r--r--", 0o4755])
def test_folder_bad_modes_are_rejected(tmp_path: Path, mode: Any) -> None:
    with pytest.raises(ValueError, match="mode"):
        folder_sink(tmp_path, mode=mode)


@pytest.mark.parametrize(
    ("policy", "failing"), [("overwrite", "replace"), ("overwrite", "fsync"), ("unique", "fsync")]
)
def test_folder_leaves_no_temporary_file_when_the_write_fails(
    tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, policy: str, failing: str
) -> None:
    def fail(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(SinkError, match="No space left"):
        folder_sink(tmp_path, on_collision=policy).write(context(runtime), artifact())
    assert list((tmp_path / "out").iterdir()) == []


def test_folder_leaves_no_staging_file_when_linking_fails(
    tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_link(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "link", failing_link)
    with pytest.raises(SinkError, match="Input/output error"):
        folder_sink(tmp_path).write(context(runtime), artifact())
    assert list((tmp_path / "out").iterdir()) == []


def test_folder_unique_numbers_collisions(tmp_path: Path, runtime: Runtime) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "photo.jpg").write_bytes(b"someone else's photo")
    (tmp_path / "out" / "photo-1.jpg").write_bytes(b"another one")
    sink = folder_sink(tmp_path)
    names = [Path(sink.write(context(runtime), artifact())[0].location).name for _ in range(3)]
    # The first write takes the next free name; writing the same bytes again finds them there.
    assert names == ["photo-2.jpg", "photo-2.jpg", "photo-2.jpg"]
    assert files(tmp_path / "out") == ["photo-1.jpg", "photo-2.jpg", "photo.jpg"]
    assert (tmp_path / "out" / "photo.jpg").read_bytes() == b"someone else's photo"
    assert all(os.stat(tmp_path / "out" / n).st_nlink == 1 for n in set(names))


def test_folder_unique_works_without_hard_links(
    tmp_path: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "photo.jpg").write_bytes(b"someone else's photo")
    sink = folder_sink(tmp_path)
    names = [Path(sink.write(context(runtime), artifact())[0].location).name for _ in range(2)]
    assert names == ["photo-1.jpg", "photo-1.jpg"]
    assert (tmp_path / "out" / "photo-1.jpg").read_bytes() == JPEG.read_bytes()
    assert files(tmp_path / "out") == ["photo-1.jpg", "photo.jpg"]


def test_folder_overwrite_replaces(tmp_path: Path, runtime: Runtime) -> None:
    target = tmp_path / "out" / "photo.jpg"
    target.parent.mkdir()
    target.write_bytes(b"old")
    folder_sink(tmp_path, on_collision="overwrite").write(context(runtime), artifact())
    assert target.read_bytes() == JPEG.read_bytes()
    assert files(tmp_path / "out") == ["photo.jpg"]


def test_folder_overwrite_replaces_a_link_instead_of_writing_through_it(
    tmp_path: Path, runtime: Runtime
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    os.symlink(victim, tmp_path / "out" / "photo.jpg")
    folder_sink(tmp_path, on_collision="overwrite").write(context(runtime), artifact())
    assert victim.read_text() == "precious"
    assert not (tmp_path / "out" / "photo.jpg").is_symlink()


def test_folder_skip_keeps_the_existing_file(tmp_path: Path, runtime: Runtime) -> None:
    target = tmp_path / "out" / "photo.jpg"
    target.parent.mkdir()
    target.write_bytes(b"old")
    assert folder_sink(tmp_path, on_collision="skip").write(context(runtime), artifact()) == []
    assert target.read_bytes() == b"old"
    assert files(tmp_path / "out") == ["photo.jpg"]


def test_folder_refuses_a_symlinked_subfolder_pointing_outside(
    tmp_path: Path, runtime: Runtime
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    os.symlink(outside, tmp_path / "out" / "product")
    sink = folder_sink(tmp_path, name="{chain}/{stem}.{ext}")
    with pytest.raises(SinkError, match="leave the sink folder"):
        sink.write(context(runtime), artifact())
    assert list(outside.iterdir()) == []


# --- sidecar ----------------------------------------------------------------------------------


def sidecar(tmp_path: Path, **params: Any) -> SidecarSink:
    return SidecarSink(SidecarSink.Params.model_validate(params, context={"base_dir": tmp_path}))


def test_sidecar_records_the_output(tmp_path: Path, runtime: Runtime) -> None:
    image = artifact(ROTATED, simulated=True)
    (written,) = folder_sink(tmp_path).write(context(runtime), image)
    (output,) = sidecar(tmp_path).write(context(runtime, [written]), image)
    path = Path(written.location)
    assert output.location == str(path) + ".json"
    record = json.loads(Path(output.location).read_text())
    assert record["output"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["output"]["bytes"] == path.stat().st_size
    with Image.open(path) as shown:
        upright = (shown.height, shown.width)  # orientation 6: turned on display
        assert record["output"]["mode"] == shown.mode
    assert (record["output"]["width"], record["output"]["height"]) == upright
    assert record["output"]["file"] == str(path)
    assert record["output"]["media_type"] == "image/jpeg"
    assert record["hotfolder_version"] == hotfolder.__version__
    assert record["source"] == "/in/photo.jpg"
    assert record["chain"] == "product"
    assert record["input_sha256"] == INPUT_SHA
    assert record["simulated"] is True
    assert record["cost_usd"] == pytest.approx(0.06)
    assert [s["op"] for s in record["steps"]] == ["auto-orient", "venice.upscale", "venice.edit"]
    step = record["steps"][1]
    assert step["request_ids"] == ["ray-1"] and step["paid"] is True and step["seconds"] == 2.5
    assert record["steps"][2]["from_checkpoint"] is True
    assert record["job_id"] and record["created"].endswith("+00:00")


def test_sidecar_mode_and_suffix(tmp_path: Path, runtime: Runtime, umask: None) -> None:
    (written,) = folder_sink(tmp_path).write(context(runtime), artifact())
    (output,) = sidecar(tmp_path, suffix=".meta.json", mode="0600").write(
        context(runtime, [written]), artifact()
    )
    assert output.location.endswith("photo.jpg.meta.json")
    assert os.stat(output.location).st_mode & 0o777 == 0o600


def test_sidecar_without_a_local_file_needs_a_path(tmp_path: Path, runtime: Runtime) -> None:
    remote = Output("webhook", "https://example.com/hook", 10)
    with pytest.raises(SinkError, match="after a folder sink"):
        sidecar(tmp_path).write(context(runtime, [remote]), artifact())
    (output,) = sidecar(tmp_path, path="records").write(context(runtime, [remote]), artifact())
    assert output.location == str((tmp_path / "records" / "photo.json").resolve())
    record = json.loads(Path(output.location).read_text())
    assert record["output"]["file"] is None
    assert record["output"]["sha256"] == hashlib.sha256(JPEG.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", ["", "/x.json", ".json/..", "\x00"])
def test_sidecar_bad_suffixes_are_rejected(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(ValueError, match="suffix"):
        sidecar(tmp_path, suffix=suffix)
