"""kill -9 at random moments while 200 files go through a paid step, five times, then a clean
run: every input ends archived or failed, each output exists once, no temp file is left, and
the sandbox was paid at most once more per kill than there were inputs. A temporary file a
writer killed in the middle of a write left in ``out/`` is removed by the daemon's first write
there."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.daemon import FAST_DAEMON, Daemon, convert_to_png_config, cp, files_under

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FILES = 200
KILLS = 5
CONFIG = (
    FAST_DAEMON
    + """
max_attempts = 10

[venice]
requests_per_minute = 10000

[[folders]]
path = "inbox"
chain = "paid"
quiet_seconds = 0.2
# One paid call in flight at a time, so a kill can waste at most one.
concurrency = 1

[chains.paid]
steps = [{ op = "auto-orient" }, { op = "venice.upscale", scale = 2 }]
outputs = [{ sink = "folder", path = "out", name = "{stem}-up.{ext}", on_collision = "overwrite" }]
"""
)


def test_kill_9_at_random_moments_loses_nothing_and_pays_at_most_once_more_per_kill(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    inbox, staging = tmp_path / "inbox", tmp_path / "staging"
    inbox.mkdir()
    staging.mkdir()
    names = [f"img-{n:03d}.png" for n in range(FILES)]
    for n, name in enumerate(names):
        Image.new("RGB", (256, 256), (n, 255 - n, (7 * n) % 256)).save(staging / name)

    def drop() -> None:  # the files arrive while the daemon runs and is killed
        for i, name in enumerate(names[:-1]):
            os.rename(staging / name, inbox / name)
            if i % 20 == 19:
                time.sleep(0.3)

    rng = random.Random(20261121)
    config = SandboxConfig(requests_per_minute=100_000, lockout_failures=100_000)
    with start_sandbox(config) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        daemon = Daemon(tmp_path, env=env)
        dropper = threading.Thread(target=drop)
        for kill in range(KILLS):
            daemon.start()
            if kill == 0:
                dropper.start()
            time.sleep(rng.uniform(0.3, 2.5))
            daemon.kill9()
        dropper.join()
        with daemon.start():
            os.rename(staging / names[-1], inbox / names[-1])  # a write into out/ after the kills
            rows = daemon.wait_states(timeout=180, done=FILES)
            assert daemon.stop() == 0
        paid = sandbox.stats()["paid_total"]

    assert sorted(r["name"] for r in rows) == names
    archived = files_under(inbox / ".hotfolder" / "archive")
    assert sorted(p.name for p in archived) == names
    assert [p.name for p in inbox.iterdir()] == [".hotfolder"]
    assert list((inbox / ".hotfolder" / "processing").iterdir()) == []
    # A kill during an output's atomic write leaves its temporary file (never a half-written
    # NAME); the first write into out/ after the restart removed it.
    outputs = files_under(tmp_path / "out")
    assert sorted(p.name for p in outputs) == sorted(n.replace(".png", "-up.png") for n in names)
    for out in outputs[:: FILES // 10]:
        with Image.open(out) as im:
            im.load()
            assert im.size == (512, 512)
    assert FILES <= paid <= FILES + KILLS, f"{paid} paid calls for {FILES} files and {KILLS} kills"
    assert "running when the daemon stopped" in daemon.log()


KILLED_WRITER = """
import os, sys
from pathlib import Path
from hotfolder.fsutil import write_temp
print(write_temp(Path(sys.argv[1]), b"the first half of an image"), flush=True)
os.kill(os.getpid(), 9)  # between the temporary file and its rename
"""


def test_a_temporary_file_of_a_killed_writer_goes_with_the_next_write(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(convert_to_png_config())
    (tmp_path / "inbox").mkdir()
    (tmp_path / "out").mkdir()
    writer = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "out/photo.png")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    left = Path(writer.stdout.strip())
    assert left.is_file() and left.parent == tmp_path / "out"
    Image.new("RGB", (40, 30), "navy").save(tmp_path / "photo.jpg")
    with Daemon(tmp_path).start() as daemon:
        cp(tmp_path / "photo.jpg", tmp_path / "inbox/photo.jpg")
        daemon.wait_states(done=1)
        log = daemon.log()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["photo.png"]
    with Image.open(tmp_path / "out/photo.png") as out:
        assert (out.format, out.size) == ("PNG", (40, 30))
    assert f"removed 1 temporary file(s) left by a write that was cut short ({left.name})" in log
