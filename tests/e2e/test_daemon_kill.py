"""kill -9 at random moments while 200 files go through a paid step, five times, then a clean
run: every input ends archived or failed, each output exists once, no temp file is left, and
the sandbox was paid at most once more per kill than there were inputs."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.daemon import FAST_DAEMON, Daemon, files_under

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
        for i, name in enumerate(names):
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
            rows = daemon.wait_states(timeout=180, done=FILES)
            assert daemon.stop() == 0
        paid = sandbox.stats()["paid_total"]

    assert sorted(r["name"] for r in rows) == names
    archived = files_under(inbox / ".hotfolder" / "archive")
    assert sorted(p.name for p in archived) == names
    assert [p.name for p in inbox.iterdir()] == [".hotfolder"]
    assert list((inbox / ".hotfolder" / "processing").iterdir()) == []
    written = files_under(tmp_path / "out")
    # A kill during an output's atomic write leaves its temporary file (``.NAME.XXXX.tmp``,
    # never a half-written NAME): at most one per kill. Nothing removes such files yet.
    outputs = [p for p in written if not p.name.startswith(".")]
    left = [p.name for p in written if p.name.startswith(".")]
    assert all(n.endswith(".tmp") for n in left) and len(left) <= KILLS, left
    assert sorted(p.name for p in outputs) == sorted(n.replace(".png", "-up.png") for n in names)
    for out in outputs[:: FILES // 10]:
        with Image.open(out) as im:
            im.load()
            assert im.size == (512, 512)
    assert FILES <= paid <= FILES + KILLS, f"{paid} paid calls for {FILES} files and {KILLS} kills"
    assert "running when the daemon stopped" in daemon.log()
