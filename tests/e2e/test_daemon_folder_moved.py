"""A watched folder moved away and a new one made at its path (``mv inbox inbox-old; mkdir
inbox``): the daemon says so, watches and locks the new folder, takes its files, and a second
daemon with another state dir is refused the folder."""

from __future__ import annotations

import subprocess

import pytest
from PIL import Image

from tests.helpers.daemon import Daemon, convert_to_png_config, wait_for

pytestmark = pytest.mark.e2e

CONFIG = convert_to_png_config()


def test_a_folder_moved_away_and_made_again_is_watched_and_locked_again(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    for n in range(2):
        Image.effect_noise((64, 48), 10 + n).convert("RGB").save(staging / f"p{n}.png")
    with Daemon(tmp_path) as daemon:
        daemon.start()
        subprocess.run(["cp", str(staging / "p0.png"), "inbox/"], cwd=tmp_path, check=True)
        daemon.wait_states(done=1)
        subprocess.run(["mv", "inbox", "inbox-old"], cwd=tmp_path, check=True)
        subprocess.run(["mkdir", "inbox"], cwd=tmp_path, check=True)
        wait_for(
            lambda: (tmp_path / "inbox" / ".hotfolder" / "lock").exists(),
            10,
            "the new folder to be locked",
        )
        subprocess.run(["cp", str(staging / "p1.png"), "inbox/"], cwd=tmp_path, check=True)
        daemon.wait_states(done=2)
        log = daemon.log()

        second = Daemon(tmp_path)
        second.state_dir = tmp_path / "another-state"
        second.log_path = tmp_path / "second.log"
        second.start(wait_ready=False)
        assert second.proc is not None
        code = second.proc.wait(timeout=30)
        refused = second.log()
    assert "no longer the folder that was watched" in log
    assert (tmp_path / "out" / "p1.png").is_file()
    assert code != 0
    assert "already watched by another hotfolder daemon" in refused
