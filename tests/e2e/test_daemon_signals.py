"""Signals and instances: SIGHUP reloads (a broken config keeps the old one running), SIGTERM
stops without a half-written output, and a second daemon on the same state dir refuses."""

from __future__ import annotations

import io
import json
import signal
import subprocess

import pytest
from PIL import Image

from tests.helpers.daemon import BIN, FAST_DAEMON, Daemon, files_under, wait_for

pytestmark = pytest.mark.e2e

CONFIG = (
    FAST_DAEMON
    + """
[imaging]
max_bytes = {max_bytes}

[[folders]]
path = "inbox"
chain = "web"
quiet_seconds = 0.2

[chains.web]
steps = [{{ op = "convert", format = "png" }}]
outputs = [{{ sink = "folder", path = "out", name = "{{stem}}.{{ext}}" }}]
"""
)


def _png(path, seed: int, size=(320, 240)) -> int:
    """Write a noise PNG to ``path`` and return its size. The size is not read back from the
    file: in a watched folder the daemon may have claimed it already (it did, once in a while)."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 40 + seed).convert("RGB").save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


@pytest.fixture
def project(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG.format(max_bytes=50_000_000))
    (tmp_path / "inbox").mkdir()
    return tmp_path


def test_sighup_with_a_broken_config_keeps_the_old_one_and_a_good_one_applies(project):
    config = project / "hotfolder.toml"
    with Daemon(project).start() as daemon:
        config.write_text(
            config.read_text().replace('chain = "web"', 'chain = "nope"') + "\n[broken"
        )
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "config reload failed" in daemon.log(), 30, "the reload to be refused")
        _png(project / "inbox" / "a.png", 1)
        daemon.wait_states(done=1)

        # A valid config with a smaller size limit: the next file fails as too large...
        config.write_text(CONFIG.format(max_bytes=1000))
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in daemon.log(), 30, "the reload")
        _png(project / "inbox" / "b.png", 2)
        rows = daemon.wait_states(done=1, failed=1)
        failed = next(r for r in rows if r["state"] == "failed")
        info = json.loads((project / "inbox/.hotfolder/failed/b.png.error.json").read_text())
        assert info["class"] == failed["error"]["class"] and "b.png" in info["message"]

        # ...until the limit is raised again and the failed job is retried.
        config.write_text(CONFIG.format(max_bytes=50_000_000))
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: daemon.log().count("config reloaded") == 2, 30, "the second reload")
        retried = daemon.cli("retry", failed["id"])
        assert retried.returncode == 0, retried.stderr
        daemon.wait_states(done=2)
    assert sorted(p.name for p in files_under(project / "out")) == ["a.png", "b.png"]
    assert files_under(project / "inbox/.hotfolder/failed") == []


def test_sigterm_leaves_no_half_written_output_and_the_rest_queued(project):
    inbox = project / "inbox"
    config = project / "hotfolder.toml"
    text = config.read_text().replace("grace_seconds = 10", "grace_seconds = 0")
    # A job stopped mid-write runs again at the next start; "overwrite" keeps one output each.
    config.write_text(
        text.replace('name = "{stem}.{ext}"', 'name = "{stem}.{ext}", on_collision = "overwrite"')
    )
    for n in range(8):
        _png(project / f"big-{n}.png", n, size=(2400, 1800))
    with Daemon(project).start() as daemon:
        for n in range(8):
            (project / f"big-{n}.png").rename(inbox / f"big-{n}.png")
        wait_for(lambda: daemon.states().get("running"), 30, "a job to run")
        assert daemon.stop(signal.SIGTERM) == 0
        first = daemon.states()
        assert first["running"] == 0 and first["queued"] > 0, first
        assert files_under(project / "out", ".*") == [], "a temp file was left"
        for out in files_under(project / "out"):
            with Image.open(out) as im:
                im.load()  # complete, decodable
        processing = list((inbox / ".hotfolder/processing").iterdir())
        assert len(processing) == first["queued"], (
            first,
            daemon.rows(),
            [p.name for p in processing],
        )
        status = json.loads(daemon.cli("status", "--json").stdout)
        [folder] = status["folders"]
        assert folder["counts"]["queued"] == first["queued"]
        assert folder["counts"]["done"] == len(files_under(inbox / ".hotfolder/archive"))
        assert status["daemon"]["running"] is False

        daemon.start()
        daemon.wait_states(done=8)
    assert len(files_under(project / "out")) == 8


def test_a_second_daemon_on_the_same_state_dir_exits_with_a_clear_message(project):
    with Daemon(project).start() as daemon:
        second = subprocess.run(
            [str(BIN), "--config", str(daemon.config), "run", "--state-dir", str(daemon.state_dir)],
            cwd=project, env=daemon.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"another hotfolder daemon (pid {daemon.proc.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        _png(project / "inbox" / "still.png", 3)
        daemon.wait_states(done=1)


def test_status_json_matches_the_disk(project):
    inbox = project / "inbox"
    with Daemon(project).start() as daemon:
        for n in range(4):
            _png(inbox / f"ok-{n}.png", n)
        (inbox / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10 + b"IEND")
        daemon.wait_states(done=4, failed=1)
        status = json.loads(daemon.cli("status", "--json").stdout)
    [folder] = status["folders"]
    assert folder["path"] == str(inbox.resolve())
    assert folder["counts"]["done"] == len(files_under(inbox / ".hotfolder/archive")) == 4
    failed = [
        p for p in files_under(inbox / ".hotfolder/failed") if not p.name.endswith(".error.json")
    ]
    assert folder["counts"]["failed"] == len(failed) == 1
    assert folder["counts"]["queued"] == folder["counts"]["running"] == 0
    assert [e["name"] for e in folder["last_errors"]] == ["bad.png"]
    assert status["daemon"]["running"] is True
    assert status["spent_today_usd"] == 0
    assert status["paused"] is None
    text = daemon.cli("status")
    assert "4 done, 1 failed" in text.stdout


def test_a_lease_break_does_not_stop_the_daemon(project):
    """The daemon takes a read lease for a moment to tell whether a program holds a file open
    for writing; a program opening the file for writing in that moment makes the kernel send
    the daemon SIGIO, whose default action ends a process. The daemon lets it pass."""
    with Daemon(project).start() as daemon:
        daemon.signal(signal.SIGIO)  # what the kernel sends on a lease break
        _png(project / "inbox" / "a.png", 1)
        daemon.wait_states(done=1)
        assert daemon.proc.poll() is None, f"the daemon ended:\n{daemon.log()}"
    assert [p.name for p in files_under(project / "out")] == ["a.png"]
