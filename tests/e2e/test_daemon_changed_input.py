"""A claimed file that changes while its job runs, through the real daemon (a subprocess), the
real Venice client and the sandbox as an HTTP server counting requests and payments:

* rewritten after its upload, while a later paid step is in flight: the job's result came from
  bytes that are no longer the file's, so the scheduler queues it again (the attempt not
  counted, its paid results thrown away) and the output is made from the new bytes;
* rewritten after it was hashed, while its upload waits for a free Venice connection: the
  upload's reader sees other bytes than it hashed and breaks the request off before it is
  complete, so the sandbox is paid nothing for it; the job runs again on the new bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from hotfolder.daemon import claim
from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.daemon import Daemon, cutout_config, files_under, noise_photos, wait_for

pytestmark = pytest.mark.e2e

#: Each Venice request takes this long at the sandbox: the window in which the test rewrites.
LATENCY_MS = 2000
OLD_SIZE = (320, 240)
NEW_SIZE = (400, 300)
WAITING_FOR_A_CONNECTION = "a free Venice connection"


def subject_photo(path: Path) -> Path:
    """The new bytes: a red block on white, ``NEW_SIZE`` (the old photos are noise of
    ``OLD_SIZE``), so an output tells by its size and pixels which bytes it was made from."""
    image = Image.new("RGB", NEW_SIZE, "white")
    ImageDraw.Draw(image).rectangle((100, 75, 299, 224), fill=(255, 0, 0))
    image.save(path)
    return path


def assert_made_from_the_new_bytes(output: Path, scale: int) -> None:
    """The background removal of :func:`subject_photo` (× ``scale``): its size, the white
    background cut away, the red subject kept."""
    with Image.open(output) as image:
        image.load()
        size, mode = image.size, image.mode
        corner = image.getpixel((2, 2))
        middle = image.getpixel((NEW_SIZE[0] * scale // 2, NEW_SIZE[1] * scale // 2))
    expected = (NEW_SIZE[0] * scale, NEW_SIZE[1] * scale)
    assert (size, mode) == (expected, "RGBA"), (
        f"{output} is {size} {mode}, not {expected} RGBA: it was not made from the new bytes"
    )
    assert isinstance(corner, tuple) and corner[3] == 0, f"{output}: background kept {corner}"
    assert middle == (255, 0, 0, 255), f"{output}: the red subject is {middle}"


def meta(daemon: Daemon, name: str) -> Any:
    """The journal's meta ``name`` (what ``status`` shows), read as ``status`` reads it."""
    path = daemon.state_dir / "journal.sqlite3"
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()
    return json.loads(row[0]) if row else None


def signature(path: Path) -> str:
    """The journal's ``src_sig`` of ``path``: size:mtime_ns:inode (a rename keeps all three)."""
    st = os.lstat(path)
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_rewritten_while_its_job_runs_is_run_again_on_the_new_bytes(
    tmp_path: Path,
) -> None:
    (tmp_path / "hotfolder.toml").write_text(
        cutout_config('{ op = "venice.background-remove" }, { op = "venice.upscale", scale = 2 }')
    )
    (tmp_path / "inbox").mkdir()
    staging = tmp_path / "staging"
    (old,) = noise_photos(staging, 1, size=OLD_SIZE, seed=81)
    new = subject_photo(staging / "new.png")
    sandbox_config = SandboxConfig(requests_per_minute=600, latency_ms=LATENCY_MS)
    with start_sandbox(sandbox_config) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            subprocess.run(["cp", str(old), str(tmp_path / "inbox/photo.png")], check=True)
            # the background removal of the old bytes is paid; the upscale is in flight now
            # (at least LATENCY_MS at the sandbox), so the job still runs
            wait_for(lambda: sandbox.stats()["paid_total"] == 1, 30, "the first paid step")
            (row,) = daemon.rows()
            assert row["state"] == "running", (
                f"tests/e2e/{Path(__file__).name}: the job was {row['state']} before the file "
                f"could be rewritten under it; raise LATENCY_MS (now {LATENCY_MS})"
            )
            claimed = claim.input_path(tmp_path / "inbox", row["id"], "photo.png")
            claimed_sig = row["src_sig"]
            assert claimed_sig == signature(claimed)
            # rewritten in place (cp keeps the inode), as a writer that still held it open
            subprocess.run(["cp", str(new), str(claimed)], check=True)
            assert sandbox.stats()["paid_total"] == 1, (
                f"{claimed}: the upscale was answered before the file was rewritten, so the "
                f"test did not rewrite it while the job ran; raise LATENCY_MS (now {LATENCY_MS})"
            )
            (done,) = daemon.wait_states(timeout=60, done=1)
            log = daemon.log()
        stats = sandbox.stats()

    # both steps paid for the old bytes, then again for the new: nothing reused from the old
    assert stats["paid_calls"] == {"/image/background-remove": 2, "/image/upscale": 2}, (
        f"photo.png: the sandbox was paid {stats['paid_calls']}, not each step twice (old "
        "bytes, then new); a rerun that reuses the old run's checkpoints pays less: "
        "_again_if_changed in core/hotfolder/daemon/scheduler.py must remove them"
    )
    assert stats["requests"]["/image/background-remove"] == {"200": 2}, stats
    assert stats["requests"]["/image/upscale"] == {"200": 2}, stats

    # the journal: one job, done; its rerun on the new bytes is its only counted attempt, and
    # the output it names is made from the new bytes
    archived = Path(done["place"])
    assert archived.read_bytes() == new.read_bytes(), f"{archived} is not the rewritten file"
    assert (done["attempts"], done["error"]) == (1, None), (
        f"photo.png: journaled with {done['attempts']} attempt(s) and error {done['error']}; "
        "the run on the old bytes must not count (scheduler._again_if_changed)"
    )
    assert done["src_sig"] == signature(archived) != claimed_sig, (
        f"photo.png: journal src_sig {done['src_sig']} is not the rewritten file's "
        f"{signature(archived)} (claimed as {claimed_sig})"
    )
    assert done["key"].startswith(sha256(new) + ":"), (
        f"photo.png: journal key {done['key']} is not keyed by the new bytes' sha256"
    )
    assert (
        f"photo.png (job {done['id']}) changed while it was processed (size:mtime:inode "
        f"{claimed_sig} -> {done['src_sig']}): running it again on the new bytes"
    ) in log, f"the daemon log does not say the job ran again:\n{log[-3000:]}"
    assert not list((tmp_path / "inbox/.hotfolder/processing").iterdir())
    (journaled,) = (Path(o["location"]) for o in done["outputs"])
    assert_made_from_the_new_bytes(journaled, scale=2)

    # and nothing else in out/: the first run's result, made from the old bytes, was never
    # delivered (the engine checks the input before the outputs are written)
    stale = [p.name for p in files_under(tmp_path / "out") if p != journaled]
    assert not stale, f"out/ holds outputs of the old bytes beside {journaled.name}: {stale}"


def test_a_file_changed_before_its_upload_is_not_paid_for_and_runs_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "hotfolder.toml").write_text(
        cutout_config('{ op = "venice.background-remove" }', max_connections=1)
    )
    (tmp_path / "inbox").mkdir()
    staging = tmp_path / "staging"
    photos = noise_photos(staging, 3, size=OLD_SIZE, seed=91)
    new = subject_photo(tmp_path / "new.png")
    sandbox_config = SandboxConfig(requests_per_minute=600, latency_ms=LATENCY_MS)
    with start_sandbox(sandbox_config) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            subprocess.run(["cp", *map(str, photos), str(tmp_path / "inbox")], check=True)

            def waiting() -> list[str]:
                """The jobs waiting for the Venice connection, the first to wait first."""
                waits = meta(daemon, "waits") or {}
                ids = sorted(
                    (w["since"], job) for job, w in waits.items()
                    if w["what"] == WAITING_FOR_A_CONNECTION
                )  # fmt: skip
                return [job for _, job in ids]

            # one job's request is at the sandbox (LATENCY_MS), two wait for the connection:
            # hashed, their upload readers open, nothing of their requests sent
            def two_waiting() -> list[str] | None:
                ids = waiting()
                return ids if len(ids) == 2 else None

            last = wait_for(two_waiting, 30, "two jobs waiting for the one Venice connection")[-1]
            row = next(r for r in daemon.rows() if r["id"] == last)
            assert row["state"] == "running" and row["key"], row
            old_sha = row["key"].split(":")[0]
            claimed = claim.input_path(tmp_path / "inbox", row["id"], row["name"])
            assert sha256(claimed) == old_sha
            claimed_sig = row["src_sig"]
            subprocess.run(["cp", str(new), str(claimed)], check=True)  # in place
            assert last in waiting(), (
                f"{claimed}: its job got the Venice connection before the file was rewritten, "
                f"so the test did not change it before its upload; raise LATENCY_MS (now "
                f"{LATENCY_MS})"
            )
            rows = daemon.wait_states(timeout=60, done=3)
            log = daemon.log()
        stats = sandbox.stats()
    # paid once per job: the request that carried the changed bytes reached the sandbox but
    # was broken off before its body was complete, unpaid and not counted as a failure
    assert stats["paid_calls"] == {"/image/background-remove": 3}, (
        f"{row['name']}: the sandbox was paid {stats['paid_calls']}, not once per file: the "
        "request whose upload read the changed bytes was completed; the upload's reader "
        "(CheckedReader in core/hotfolder/localfiles.py) must fail it at EOF"
    )
    answers = stats["requests"]["/image/background-remove"]
    assert answers == {"200": 3, "disconnected": 1}, (
        f"{row['name']}: the sandbox answered {answers}; expected the three paid requests and "
        "the one broken off after its upload read the changed bytes"
    )

    done = next(r for r in rows if r["id"] == last)
    assert (done["attempts"], done["error"]) == (1, None), (
        f"{row['name']}: journaled with {done['attempts']} attempt(s) and error "
        f"{done['error']}; the broken-off run must not count (scheduler._again_if_changed)"
    )
    assert done["key"].startswith(sha256(new) + ":"), (
        f"{row['name']}: journal key {done['key']} is not keyed by the new bytes' sha256"
    )
    archived = Path(done["place"])
    assert archived.read_bytes() == new.read_bytes(), f"{archived} is not the rewritten file"
    assert done["src_sig"] == signature(archived) != claimed_sig, (
        f"{row['name']}: journal src_sig {done['src_sig']} is not the rewritten file's "
        f"{signature(archived)} (claimed as {claimed_sig})"
    )
    assert (
        f"{row['name']} (job {last}) changed while it was processed (size:mtime:inode "
        f"{claimed_sig} -> {done['src_sig']}): running it again on the new bytes"
    ) in log, f"the daemon log does not say the job ran again:\n{log[-3000:]}"

    # nothing lost: three outputs, the changed file's made from its new bytes, the others from
    # theirs; every original archived as it is now; nothing failed or left in processing
    outputs = {p.name: p for p in files_under(tmp_path / "out")}
    assert sorted(outputs) == sorted(p.name for p in photos), f"out/ holds {sorted(outputs)}"
    assert_made_from_the_new_bytes(outputs[row["name"]], scale=1)
    for name, output in outputs.items():
        if name != row["name"]:
            with Image.open(output) as image:
                assert (image.size, image.mode) == (OLD_SIZE, "RGBA"), output
    for other in rows:
        archived = Path(other["place"])
        source = new if other["id"] == last else staging / other["name"]
        assert archived.read_bytes() == source.read_bytes(), archived
    failed = tmp_path / "inbox/.hotfolder/failed"
    assert not failed.exists() or not any(failed.iterdir()), f"{failed}: {list(failed.iterdir())}"
    assert not list((tmp_path / "inbox/.hotfolder/processing").iterdir())
