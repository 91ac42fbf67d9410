"""Names at the file system's limit, through the real daemon: a photo whose name is 245 or 255
bytes of UTF-8 is done, a broken one is failed with its error file, and none is left running
(issue: probing ``<name>.error.json`` or ``<stem>.<job-id><suffix>`` raised ENAMETOOLONG and
left the job running forever)."""

from __future__ import annotations

import io
import json
import os
import subprocess

import pytest
from PIL import Image

from tests.helpers.daemon import Daemon, convert_to_png_config, files_under

pytestmark = pytest.mark.e2e

CONFIG = convert_to_png_config()


def name_of(total_bytes: int, ext: str = ".png") -> str:
    """A name of exactly ``total_bytes`` UTF-8 bytes: Japanese (3 bytes a character)."""
    body = "夏休みの写真" * 20
    name = ""
    for char in body:
        if len((name + char + ext).encode()) > total_bytes:
            break
        name += char
    name += "x" * (total_bytes - len((name + ext).encode()))
    assert len((name + ext).encode()) == total_bytes
    return name + ext


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((64, 48), 20 + seed).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def test_names_of_245_and_255_bytes_finish_and_never_stay_running(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    good = [name_of(245), name_of(255)]
    broken = name_of(250)
    for n, name in enumerate(good):
        (staging / name).write_bytes(png(n))
    (staging / broken).write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    with Daemon(tmp_path) as daemon:
        daemon.start()
        for name in [*good, broken]:
            subprocess.run(["cp", str(staging / name), str(tmp_path / "inbox")], check=True)
        # the same names again: the archive and failed places now hold them, so the second
        # ones need a job id in their names, and still fit
        daemon.wait_states(done=2, failed=1)
        for n, name in enumerate(good):
            (staging / name).write_bytes(png(10 + n))
            subprocess.run(["cp", str(staging / name), str(tmp_path / "inbox")], check=True)
        subprocess.run(["cp", str(staging / broken), str(tmp_path / "inbox")], check=True)
        rows = daemon.wait_states(done=4, failed=2)
        assert daemon.cli("status").returncode == 0

    assert all(len(os.fsencode(os.path.basename(r["place"]))) <= 255 for r in rows)
    outputs = files_under(tmp_path / "out")
    assert len(outputs) == 4  # the second runs got free names beside the first ones
    for output in outputs:
        assert len(os.fsencode(output.name)) <= 255
        with Image.open(output) as image:
            assert (image.format, image.size) == ("PNG", (64, 48))
    archived = files_under(tmp_path / "inbox" / ".hotfolder" / "archive")
    assert len(archived) == 4
    failed = files_under(tmp_path / "inbox" / ".hotfolder" / "failed")
    originals = [p for p in failed if not p.name.endswith(".error.json")]
    errors = [p for p in failed if p.name.endswith(".error.json")]
    assert len(originals) == 2 and len(errors) == 2
    for error in errors:
        info = json.loads(error.read_text())
        assert info["file"] == broken and info["class"] == "InputError"
        assert (error.parent / error.name.removesuffix(".error.json")).is_file()
    assert not list((tmp_path / "inbox" / ".hotfolder" / "processing").iterdir())
