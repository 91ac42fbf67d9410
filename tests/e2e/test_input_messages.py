"""What a user reads about an input, from real runs of ``hotfolder process`` and of the daemon:
every decode error names its file (Pillow's own log lines included: "More samples per pixel
than can be decoded: 303169682" comes from a TIFF whose SamplesPerPixel is absurd, made here
since no file of the shared corpus triggers it with the Pillow we use); every error file has
the same fields and time format, whether the job failed, or a symbolic link, a hard link or an
unmatched file was failed unread; and an animation of which only the first frame was used says
so in its sidecar."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.bad_images import SAMPLES, tiff_with_samples
from tests.helpers.cli import hotfolder
from tests.helpers.corpus import BAD, PHOTOS
from tests.helpers.daemon import FAST_DAEMON, Daemon, cp

pytestmark = pytest.mark.e2e

PILLOW_SAYS = f"More samples per pixel than can be decoded: {SAMPLES}"
#: The time format of every error file (hotfolder.pauses.iso_time).
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")

CHAIN = """
[chains.web]
steps = [
  { op = "resize", width = 64, height = 64, mode = "fit" },
  { op = "convert", format = "png" },
]
outputs = [{ sink = "folder", path = "out", name = "{stem}-{srcext}.{ext}" }, { sink = "sidecar" }]
"""


def _animated_webp(path: Path) -> None:
    frames = [Image.new("RGB", (80, 60), colour) for colour in ("red", "green", "blue")]
    frames[0].save(path, "WEBP", save_all=True, append_images=frames[1:], duration=100)


def test_process_names_the_file_in_every_error_and_notes_first_frames(tmp_path: Path) -> None:
    (tmp_path / "hotfolder.toml").write_text(CHAIN)
    (tmp_path / "samples.tif").write_bytes(tiff_with_samples())
    _animated_webp(tmp_path / "moving.webp")
    for name in ("iss634.gif", "iss634.apng"):
        cp(PHOTOS / name, tmp_path / name)
    inputs = ["samples.tif", "moving.webp", "iss634.gif", "iss634.apng", str(BAD)]
    run = hotfolder("process", *inputs, "--chain", "web", "--all", cwd=tmp_path)
    assert run.code == 1, run.output[-3000:]
    said = [line for line in run.stderr.splitlines() if "More samples per pixel" in line]
    assert len(said) == 1, run.stderr
    assert "ERROR" in said[0] and "samples.tif: a damaged TIFF file" in said[0], said[0]
    assert PILLOW_SAYS in said[0]
    names = ["samples.tif", *(p.name for p in BAD.iterdir())]
    for line in run.stderr.splitlines():
        if " ERROR " in line:
            assert any(name in line for name in names), f"an error without its file: {line}"
    for stem, ext, frames in (
        ("moving", "webp", 3),
        ("iss634", "gif", None),
        ("iss634", "apng", None),
    ):
        sidecar = json.loads((tmp_path / "out" / f"{stem}-{ext}.png.json").read_text())
        notes = sidecar["notes"]
        assert len(notes) == 1 and "only the first frame was used" in notes[0], (ext, notes)
        if frames:
            assert notes[0].startswith(f"the input has {frames} frames"), notes
    still = hotfolder("process", str(PHOTOS / "hopper.jpg"), "--chain", "web", cwd=tmp_path)
    assert still.code == 0, still.output
    assert json.loads((tmp_path / "out" / "hopper-jpg.png.json").read_text())["notes"] == []


def test_daemon_error_files_share_one_shape_and_name_the_file(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = (
        FAST_DAEMON
        + """
[[folders]]
path = "inbox"
chain = "web"
quiet_seconds = 0.2
on_unmatched = "fail"
"""
        + CHAIN
    )
    (tmp_path / "hotfolder.toml").write_text(config)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = tmp_path_factory.mktemp("outside")
    Image.new("RGB", (64, 64), "red").save(outside / "real.png")
    os.symlink(outside / "real.png", inbox / "link.png")
    os.link(outside / "real.png", inbox / "hard.png")
    with Daemon(tmp_path) as daemon:
        daemon.start()
        (inbox / "samples.tif").write_bytes(tiff_with_samples())
        (inbox / "notes.xyz").write_text("not an image")
        cp(PHOTOS / "iss634.gif", inbox / "iss634.gif")
        rows = daemon.wait_states(failed=4, done=1)
        log = daemon.log()
    failed = inbox / ".hotfolder" / "failed"
    errors = {
        r["name"]: json.loads((failed / (r["name"] + ".error.json")).read_text())
        for r in rows
        if r["state"] == "failed"
    }
    assert sorted(errors) == ["hard.png", "link.png", "notes.xyz", "samples.tif"], errors
    shapes = {name: sorted(info) for name, info in errors.items()}
    assert len({tuple(s) for s in shapes.values()}) == 1, shapes
    for name, info in errors.items():
        assert ISO_TIME.match(info["time"]), (name, info["time"])
        assert (info["file"], info["folder"], info["chain"]) == (name, str(inbox), "web"), info
        assert name in info["message"] and info["hint"], info
    assert errors["samples.tif"]["class"] == "InputError"
    assert PILLOW_SAYS in errors["samples.tif"]["message"]
    assert errors["link.png"]["class"] == errors["hard.png"]["class"] == "UnsafeInputError"
    for line in log.splitlines():
        if "More samples per pixel" in line:
            assert "samples.tif" in line, f"a Pillow line without its file: {line}"
    assert any(PILLOW_SAYS in line and " ERROR " in line for line in log.splitlines()), log[-3000:]
    sidecar = json.loads((tmp_path / "out" / "iss634-gif.png.json").read_text())
    assert "only the first frame was used" in sidecar["notes"][0], sidecar["notes"]
