"""Paid work is paid once: a job that failed after its paid step keeps the step's result, so
``hotfolder retry`` pays nothing again; identical files dropped together are paid once (the
real daemon, the real client, the sandbox as an HTTP server counting paid calls)."""

from __future__ import annotations

import subprocess

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.daemon import Daemon, cutout_config, files_under, noise_photos

pytestmark = pytest.mark.e2e

CONFIG = cutout_config(
    '{ op = "venice.background-remove" }, { op = "resize", width = 200 }', out="out/cutouts"
)


def test_retry_of_a_job_that_failed_after_its_paid_step_pays_nothing_again(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "out").write_text("a file where the output folder should be")  # the sink fails
    staging = tmp_path / "staging"
    noise_photos(staging, 2, prefix="shot", seed=40)
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            for n in range(2):
                subprocess.run(["cp", str(staging / f"shot{n}.png"), "inbox/"], cwd=tmp_path)
            failed = daemon.wait_states(failed=2)
            paid_before = sandbox.stats()["paid_total"]
            for row in failed:  # the paid result is kept with the failed job
                kept = tmp_path / "inbox/.hotfolder/processing" / row["id"] / "checkpoints"
                assert any(kept.iterdir()), "the failed job's paid result was thrown away"

            (tmp_path / "out").unlink()  # the user fixes the cause
            retried = daemon.cli("retry", "--all-failed")
            assert retried.returncode == 0, retried.stderr
            daemon.wait_states(done=2)
            log = daemon.log()
        stats = sandbox.stats()
    assert paid_before == 2
    assert stats["paid_total"] == 2  # nothing paid again
    assert log.count("reused the saved result") == 2
    outputs = files_under(tmp_path / "out" / "cutouts")
    assert len(outputs) == 2
    for output in outputs:
        with Image.open(output) as image:
            assert image.size == (200, 150) and image.mode == "RGBA"
    assert not list((tmp_path / "inbox/.hotfolder/processing").iterdir())  # done: cleaned up


def test_identical_files_dropped_together_are_paid_once(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    staging = tmp_path / "staging"
    staging.mkdir()
    for n in range(5):
        Image.effect_noise((320, 240), 60 + n).convert("RGB").save(staging / f"twin{n}-a.png")
        (staging / f"twin{n}-b.png").write_bytes((staging / f"twin{n}-a.png").read_bytes())
    with start_sandbox(SandboxConfig(requests_per_minute=600, latency_ms=300)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            names = sorted(p.name for p in staging.iterdir())
            subprocess.run(["cp", *names, str(tmp_path / "inbox")], cwd=staging, check=True)
            rows = daemon.wait_states(done=5, skipped=5)
            log = daemon.log()
        stats = sandbox.stats()
    assert stats["paid_total"] == 5
    assert "waits for that one's outcome" in log  # twins met in flight, not only after
    assert 'skipped (to run it again, set on_duplicate = "reprocess"' in log
    done = {r["name"].split("-")[0] for r in rows if r["state"] == "done"}
    skipped = {r["name"].split("-")[0] for r in rows if r["state"] == "skipped"}
    assert done == skipped == {f"twin{n}" for n in range(5)}  # one of each pair each way
    assert len(files_under(tmp_path / "out" / "cutouts")) == 5
