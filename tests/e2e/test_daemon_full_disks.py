"""Full disks, on real (small tmpfs) file systems, with the real daemon and the sandbox as an
HTTP server: outputs that cannot be written wait and go on once there is room, paying for
nothing twice; a journal that cannot be written stops nothing for good. Needs root to mount
tmpfs; skipped with the reason otherwise."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.daemon import (
    Daemon,
    convert_to_png_config,
    cutout_config,
    files_under,
    noise_photos,
    wait_for,
)

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def resize(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


CUTOUT = cutout_config()


def test_a_full_output_disk_holds_jobs_until_it_grows_and_pays_nothing_twice(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CUTOUT)
    (tmp_path / "inbox").mkdir()
    photos = noise_photos(tmp_path / "staging", 6)
    with (
        tmpfs(tmp_path / "out", "600k"),
        start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox,
        Daemon(
            tmp_path, env={"VENICE_API_KEY": "k", "VENICE_BASE_URL": sandbox.base_url}
        ) as daemon,
    ):
        daemon.start()
        subprocess.run(["cp", *map(str, photos), str(tmp_path / "inbox")], check=True)
        wait_for(lambda: "an output cannot be written" in daemon.log(), 60, "the full disk")
        status = daemon.cli("status")
        assert "jobs WAIT" in status.stdout and "No space left" in status.stdout
        assert daemon.states()["failed"] == 0
        resize(tmp_path / "out", "8m")
        rows = daemon.wait_states(timeout=90, done=6)
        stats = sandbox.stats()
        log = daemon.log()
        outputs = files_under(tmp_path / "out")
        assert len(outputs) == 6
        for output in outputs:
            with Image.open(output) as image:
                assert (image.size, image.mode) == ((320, 240), "RGBA")
    assert stats["paid_total"] == 6  # one background removal per photo, none paid twice
    assert all(r["attempts"] == 1 for r in rows)  # waiting for room used up no attempt
    assert "outputs can be written again" in log


LOCAL = convert_to_png_config()


def test_a_full_state_dir_stops_nothing_for_good(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(LOCAL)
    (tmp_path / "inbox").mkdir()
    photos = noise_photos(tmp_path / "staging", 5, size=(64, 48))
    with tmpfs(tmp_path / "state", "2m") as state, Daemon(tmp_path) as daemon:
        daemon.start()
        subprocess.run(["cp", str(photos[0]), str(tmp_path / "inbox")], check=True)
        daemon.wait_states(done=1)
        filler = state / "filler"
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=64k", "count=64"],
            capture_output=True,
            check=False,
        )  # fills the state dir: dd stops at "No space left"
        subprocess.run(["cp", *map(str, photos[1:]), str(tmp_path / "inbox")], check=True)
        wait_for(lambda: "cannot write the journal" in daemon.log(), 60, "the journal error")
        time.sleep(2)
        assert daemon.proc is not None and daemon.proc.poll() is None  # still running
        filler.unlink()
        daemon.wait_states(timeout=60, done=5)
        log = daemon.log()
    assert "can be written again" in log
    assert sorted(p.name for p in files_under(tmp_path / "out")) == [
        f"photo{n}.png" for n in range(5)
    ]
