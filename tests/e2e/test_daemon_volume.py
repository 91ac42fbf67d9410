"""The daemon under volume: 1,000 files dropped at once, plus files present before it started,
are each processed exactly once; the same bytes dropped again are skipped and recorded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.daemon import FAST_DAEMON, Daemon, cp, files_under

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG = (
    FAST_DAEMON
    + """
concurrency = 4

[[folders]]
path = "inbox"
chain = "small"
quiet_seconds = 0.3

[chains.small]
steps = [{ op = "convert", format = "jpeg", quality = 80 }]
outputs = [{ sink = "folder", path = "out", name = "{stem}.{ext}" }]
"""
)


def _image(path: Path, n: int) -> None:
    Image.new("RGB", (24, 16), (n % 256, n // 256 % 256, 99)).save(path)


def test_thousand_dropped_at_once_and_files_present_before_start(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(40):
        _image(inbox / f"before-{n:03d}.png", 5000 + n)
    staging = tmp_path / "staging"
    staging.mkdir()
    for n in range(1000):
        _image(staging / f"drop-{n:04d}.png", n)

    with Daemon(tmp_path).start() as daemon:
        for entry in sorted(staging.iterdir()):  # one rename each: they land all at once
            os.rename(entry, inbox / entry.name)
        rows = daemon.wait_states(timeout=180, done=1040)
        assert daemon.stop() == 0

    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)) == 1040
    assert all(r["attempts"] == 1 for r in rows)
    outputs = files_under(tmp_path / "out")
    assert sorted(p.stem for p in outputs) == sorted(Path(n).stem for n in names)
    archived = files_under(inbox / ".hotfolder" / "archive")
    assert sorted(p.name for p in archived) == sorted(names)
    assert [p.name for p in inbox.iterdir()] == [".hotfolder"]
    assert list((inbox / ".hotfolder" / "processing").iterdir()) == []


def test_same_bytes_again_are_skipped_and_recorded(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _image(tmp_path / "a.png", 1)
    with Daemon(tmp_path).start() as daemon:
        cp(tmp_path / "a.png", inbox / "a.png")
        daemon.wait_states(done=1)
        cp(tmp_path / "a.png", inbox / "a-again.png")
        rows = daemon.wait_states(done=1, skipped=1)
    skipped = next(r for r in rows if r["state"] == "skipped")
    done = next(r for r in rows if r["state"] == "done")
    assert skipped["name"] == "a-again.png"
    assert skipped["key"] == done["key"]
    assert done["id"] in skipped["error"]["message"]
    assert [p.name for p in files_under(tmp_path / "out")] == ["a.jpg"]
    assert sorted(p.name for p in files_under(inbox / ".hotfolder" / "archive")) == [
        "a-again.png",
        "a.png",
    ]
