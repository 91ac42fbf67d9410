"""What the daemon must never do: feed its own outputs back in, send a bad file to the paid
API, or read through a link. Driven as a subprocess against the Venice sandbox on loopback."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.corpus import BAD
from tests.helpers.daemon import FAST_DAEMON, Daemon, cp, files_under, wait_for

pytestmark = pytest.mark.e2e

CONFIG = (
    FAST_DAEMON
    + """
[venice]
requests_per_minute = 10000

[[folders]]
path = "inbox"
chain = "paid"
recursive = true
quiet_seconds = 0.3

[chains.paid]
steps = [{ op = "auto-orient" }, { op = "venice.upscale", scale = 2 }]
outputs = [
  { sink = "folder", path = "inbox/out", name = "{stem}-up.{ext}" },
  { sink = "sidecar" },
]
"""
)


@pytest.fixture
def sandbox():
    with start_sandbox(
        SandboxConfig(requests_per_minute=10_000, lockout_failures=10_000)
    ) as handle:
        yield handle


@pytest.fixture
def project(tmp_path, sandbox):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
    with Daemon(tmp_path, env=env) as daemon:
        yield tmp_path, daemon


def test_outputs_inside_the_watched_folder_do_not_retrigger(project, sandbox):
    root, daemon = project
    daemon.start()
    for n in range(3):
        Image.new("RGB", (300, 260), (40 * n, 90, 200)).save(root / "inbox" / f"p{n}.png")
    daemon.wait_states(done=3)
    time.sleep(2.5)  # two rescans later, nothing new
    assert dict(daemon.states()) == {"done": 3}
    outputs = files_under(root / "inbox" / "out", "*.png")
    assert sorted(p.name for p in outputs) == ["p0-up.png", "p1-up.png", "p2-up.png"]
    for out in outputs:
        with Image.open(out) as im:
            assert im.size == (600, 520)
    assert sandbox.stats()["paid_total"] == 3


def test_every_bad_file_is_quarantined_with_a_reason_and_no_api_call(project, sandbox):
    root, daemon = project
    config = root / "hotfolder.toml"  # take every name, so that .psd and .j2k meet the gate too
    config.write_text(
        config.read_text().replace("recursive = true", 'recursive = true\ninclude = ["*"]')
    )
    daemon.start()
    names = sorted(p.name for p in BAD.iterdir())
    for name in names:
        cp(BAD / name, root / "inbox" / name)
    rows = daemon.wait_states(timeout=90, failed=len(names))
    failed = root / "inbox" / ".hotfolder" / "failed"
    for row in rows:
        original = failed / row["name"]
        assert original.is_file(), row
        info = json.loads((failed / (row["name"] + ".error.json")).read_text())
        assert info["class"].endswith("InputError"), info
        assert info["message"] and info["attempts"] == 1
    assert sorted(r["name"] for r in rows) == names
    assert sandbox.stats()["requests_total"] == 0


def test_links_fifos_and_hard_links_are_quarantined_unread(project, sandbox, tmp_path_factory):
    root, daemon = project
    outside = tmp_path_factory.mktemp("outside")
    secret = outside / "secret.png"
    Image.new("RGB", (300, 300), "red").save(secret)
    os.mkfifo(outside / "pipe")
    inbox = root / "inbox"
    os.symlink(secret, inbox / "link.png")
    os.symlink(outside / "pipe", inbox / "pipe-link.jpg")  # reading through it would hang
    os.mkfifo(inbox / "fifo.jpg")
    os.link(secret, inbox / "hard.png")
    daemon.start()
    rows = daemon.wait_states(failed=4)
    reasons = {r["name"]: r["error"]["message"] for r in rows}
    assert "symbolic link" in reasons["link.png"]
    assert "symbolic link" in reasons["pipe-link.jpg"]
    assert "FIFO" in reasons["fifo.jpg"]
    assert "hard links" in reasons["hard.png"]
    failed = inbox / ".hotfolder" / "failed"
    assert (failed / "link.png").is_symlink()
    assert json.loads((failed / "link.png.error.json").read_text())["class"] == "UnsafeInputError"
    assert sandbox.stats()["requests_total"] == 0
    assert files_under(inbox / "out") == []
    assert secret.stat().st_nlink == 2  # moved aside, never opened or changed


def test_hard_links_are_processed_when_resolvers_path_allows_them(
    project, sandbox, tmp_path_factory
):
    root, daemon = project
    config = root / "hotfolder.toml"
    config.write_text(config.read_text() + "\n[resolvers.path]\nallow_hardlinks = true\n")
    outside = tmp_path_factory.mktemp("outside")
    shared = outside / "shared.png"
    Image.new("RGB", (300, 260), "red").save(shared)
    inbox = root / "inbox"
    os.link(shared, inbox / "hard.png")
    os.symlink(shared, inbox / "link.png")  # still refused: follow_symlinks is off
    daemon.start()
    rows = daemon.wait_states(done=1, failed=1)
    states = {r["name"]: r["state"] for r in rows}
    assert states == {"hard.png": "done", "link.png": "failed"}
    link = next(r for r in rows if r["name"] == "link.png")
    assert "symbolic link" in link["error"]["message"]
    with Image.open(inbox / "out" / "hard-up.png") as im:
        assert im.size == (600, 520)
    assert sandbox.stats()["paid_total"] == 1
    assert shared.stat().st_nlink == 2  # archived, still the same file


def test_retry_of_a_quarantined_hard_link_honours_a_policy_that_now_allows_it(
    project, sandbox, tmp_path_factory
):
    root, daemon = project
    shared = tmp_path_factory.mktemp("outside") / "shared.png"
    Image.new("RGB", (300, 260), "blue").save(shared)
    os.link(shared, root / "inbox" / "hard.png")
    daemon.start()
    [row] = daemon.wait_states(failed=1)
    assert "hard links" in row["error"]["message"]

    config = root / "hotfolder.toml"
    config.write_text(config.read_text() + "\n[resolvers.path]\nallow_hardlinks = true\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in daemon.log(), 30, "the reload")
    retried = daemon.cli("retry", row["id"])
    assert retried.returncode == 0, retried.stderr
    assert f"queued again: hard.png (job {row['id']})" in retried.stdout
    daemon.wait_states(done=1)
    with Image.open(root / "inbox" / "out" / "hard-up.png") as im:
        assert im.size == (600, 520)
    assert sandbox.stats()["paid_total"] == 1
