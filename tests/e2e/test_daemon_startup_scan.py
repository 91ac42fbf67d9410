"""Files that sat in the folder while the daemon was down (older than the quiet period, held
open by no program) are taken as soon as the start-up scan finds them; one written just before
the start still waits its quiet period."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest
from PIL import Image

from tests.helpers.daemon import Daemon, convert_to_png_config, files_under

pytestmark = pytest.mark.e2e

#: Far longer than the test: a file taken at all was taken without waiting it.
QUIET_SECONDS = 600
CONFIG = convert_to_png_config().replace("quiet_seconds = 0.2", f"quiet_seconds = {QUIET_SECONDS}")
assert f"quiet_seconds = {QUIET_SECONDS}" in CONFIG


def png() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((64, 48), 50).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.skipif(sys.platform != "linux", reason="file leases are a Linux feature")
def test_old_files_present_at_start_are_taken_without_a_quiet_period(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    an_hour_ago = time.time() - 3600
    for i in range(3):
        path = inbox / f"old-{i}.png"
        path.write_bytes(png())
        os.utime(path, (an_hour_ago, an_hour_ago))
    (inbox / "new.png").write_bytes(png())
    with Daemon(tmp_path) as daemon:
        daemon.start()
        rows = daemon.wait_states(done=3)
        assert sorted(r["name"] for r in rows) == ["old-0.png", "old-1.png", "old-2.png"]
        assert (inbox / "new.png").exists(), (
            f"new.png was written just before the start: it should wait its quiet period "
            f"({QUIET_SECONDS} s); the daemon's log:\n{daemon.log()[-3000:]}"
        )
    outputs = sorted(p.name for p in files_under(tmp_path / "out"))
    assert outputs == ["old-0.png", "old-1.png", "old-2.png"]
