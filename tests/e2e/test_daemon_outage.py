"""A Venice outage with the daemon killed again and again: no job fails because of the kills
(a stop while a job only waits is not one of its attempts), and the failed requests of every
incarnation add up in the circuit breaker's memory, so no restart walks into the key lockout.
The real daemon, the real client, the sandbox as an HTTP server with its lockout rule (shrunk:
more than 6 failures in 10 s, against the client's breaker of 4 in 11 s)."""

from __future__ import annotations

import time

import httpx
import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.daemon import Daemon, files_under

pytestmark = pytest.mark.e2e

CONFIG = """
[daemon]
rescan_seconds = 1
grace_seconds = 5
retry_backoff_seconds = 0.5
max_attempts = 5

[venice]
requests_per_minute = 600
cache_dir = "cache"
backoff_base_seconds = 0.5
backoff_cap_seconds = 1
breaker_failures = 4
breaker_window_seconds = 11

[[folders]]
path = "inbox"
chain = "up"
quiet_seconds = 0.2

[chains.up]
steps = [{ op = "venice.upscale", scale = 2 }]
outputs = [{ sink = "folder", path = "out" }]
"""


def test_kills_during_an_outage_fail_no_job_and_trigger_no_lockout(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    outage = SandboxConfig(
        requests_per_minute=600,
        fault_rates={"500": 1.0},
        lockout_failures=6,
        lockout_window_seconds=10,
        lockout_duration_seconds=10,
    )
    with start_sandbox(outage) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            for n in range(3):
                image = Image.effect_noise((320, 240), 70 + n).convert("RGB")
                image.save(tmp_path / "inbox" / f"photo{n}.png")
            for _ in range(5):
                time.sleep(2)
                daemon.kill9()
                daemon.start()
            failed_during_outage = sandbox.stats()["requests_total"]
            httpx.patch(sandbox.admin_url + "/config", json={"fault_rates": {}}).raise_for_status()
            rows = daemon.wait_states(timeout=90, done=3)
        stats = sandbox.stats()
    assert stats["lockouts_triggered"] == 0
    assert failed_during_outage >= 4  # the outage really was met
    assert all(r["attempts"] <= 5 for r in rows)
    assert len(files_under(tmp_path / "out")) == 3
