"""Files that sat in the folder while the daemon was down (older than the quiet period, held
open by no program) are taken as soon as the start-up scan finds them; one written just before
the start still waits its quiet period."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from hotfolder.daemon import backlog, claim
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


@pytest.mark.skipif(sys.platform != "linux", reason="file leases are a Linux feature")
def test_an_old_image_and_its_old_prompt_file_are_taken_together_at_start(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    image, prompt = inbox / "old.png", inbox / "old.prompt.txt"
    image.write_bytes(png())
    prompt.write_text("a watercolour")
    an_hour_ago = time.time() - 3600
    for path in (image, prompt):
        os.utime(path, (an_hour_ago, an_hour_ago))
    with Daemon(tmp_path) as daemon:
        daemon.start()
        # within the wait, far shorter than the quiet period the prompt file would otherwise
        # have to be still for (600 s)
        (row,) = daemon.wait_states(done=1)
    assert row["name"] == "old.png"
    assert not image.exists() and not prompt.exists()
    archived = sorted(p.name for p in files_under(inbox / ".hotfolder" / "archive"))
    assert archived == ["old.png", "old.prompt.txt"]
    assert [p.name for p in files_under(tmp_path / "out")] == ["old.png"]


#: Copies of one image are each a job of their own.
COPIES_CONFIG = convert_to_png_config(on_duplicate="reprocess").replace(
    "quiet_seconds = 0.2", f"quiet_seconds = {QUIET_SECONDS}"
)


def _helpers(pid: int) -> list[int]:
    """The claim helpers process ``pid`` started that are still running (not, say, the
    ``ldconfig`` that ctypes runs to find a library)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = []
    for child in children:
        try:
            if b"_claim_helper.py" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
        except OSError:
            continue  # ended meanwhile
    return found


#: Older than ten quiet periods: taken without a look at the file's end (see readiness.py).
A_DAY_AGO = time.time() - 86400


def _old_pngs(inbox: Path, count: int) -> tuple[list[str], int]:
    """``count`` copies of one PNG, a day old; their names and size."""
    inbox.mkdir(exist_ok=True)
    data = png()
    names = []
    for i in range(count):
        path = inbox / f"old-{i:04d}.png"
        path.write_bytes(data)
        os.utime(path, (A_DAY_AGO, A_DAY_AGO))
        names.append(path.name)
    return names, len(data)


@pytest.mark.skipif(sys.platform != "linux", reason="file leases are a Linux feature")
def test_a_backlog_is_claimed_by_a_helper_process_and_each_file_once(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(COPIES_CONFIG)
    inbox = tmp_path / "inbox"
    names, size = _old_pngs(inbox, backlog.MIN_FILES + 150)
    (inbox / "new.png").write_bytes(png())  # young: it waits its quiet period
    held = inbox / "held.png"
    with held.open("wb") as writer, Daemon(tmp_path) as daemon:  # a program still writes it
        writer.write(png()[:100])  # old, but open for writing: the lease says so
        writer.flush()
        os.utime(held, (A_DAY_AGO, A_DAY_AGO))
        daemon.start()
        rows = daemon.wait_states(done=len(names), timeout=120)
        log = daemon.log()
        assert f"{len(names) + 1} file(s) were there already; a helper process" in log, log[-3000:]
        assert sorted(r["name"] for r in rows) == names  # each once, and nothing else
        assert held.exists() and (inbox / "new.png").exists()
        assert not _helpers(daemon.proc.pid), "the helper runs only while a backlog is claimed"
        assert {r["src_sig"].split(":")[0] for r in rows} == {str(size)}  # as claimed
    outputs = sorted(files_under(tmp_path / "out"))
    assert [p.name for p in outputs] == names
    for path in outputs[:: len(outputs) // 10]:
        with Image.open(path) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (64, 48), "RGB")
    processing = claim.processing_root(inbox)
    assert not [p for p in processing.iterdir() if p.is_file()]


@pytest.mark.skipif(sys.platform != "linux", reason="file leases are a Linux feature")
def test_the_helper_killed_midway_loses_nothing_and_takes_nothing_twice(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(COPIES_CONFIG)
    inbox = tmp_path / "inbox"
    names, _ = _old_pngs(inbox, 1200)
    processing = claim.processing_root(inbox)
    with Daemon(tmp_path) as daemon:
        daemon.start(wait_ready=False)
        assert daemon.proc is not None
        helper = None
        deadline = time.monotonic() + 30
        while helper is None and time.monotonic() < deadline:
            for helper in _helpers(daemon.proc.pid):
                os.kill(helper, signal.SIGSTOP)  # as soon as it is seen: midway, mostly
            time.sleep(0.001)
        assert helper is not None, f"no helper process was started:\n{daemon.log()[-3000:]}"
        unclaimed = sum(1 for p in inbox.iterdir() if p.is_file())
        os.kill(helper, signal.SIGKILL)  # between a request and its answer
        rows = daemon.wait_states(done=len(names), timeout=120)
        log = daemon.log()
        if unclaimed:  # it had files left: the daemon took them itself
            assert "claim helper failed" in log, log[-3000:]
        assert sorted(r["name"] for r in rows) == names
        assert len({r["id"] for r in rows}) == len(names)
    assert sorted(p.name for p in files_under(tmp_path / "out")) == names
    assert not any(inbox.glob("*.png"))
    assert not [p for p in processing.iterdir() if p.is_file()]
