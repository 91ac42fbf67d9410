"""End to end: ``hotfolder run`` serves metrics from start-up; a scrape counts its jobs."""

from __future__ import annotations

import socket

import httpx
import pytest
from hotfolder_prometheus import PORT_ENV
from prometheus_client.parser import text_string_to_metric_families

from hotfolder.testing import hot_folder, make_image, sandbox
from tests.helpers.daemon import Daemon

pytestmark = pytest.mark.e2e


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_daemon_serves_metrics_of_its_jobs(tmp_path):
    folder = hot_folder(tmp_path)
    folder.write_config(
        [{"op": "venice.upscale", "scale": 2}],
        daemon={"rescan_seconds": 1, "grace_seconds": 10, "max_attempts": 1},
        venice={"requests_per_minute": 10_000},
    )
    port = _free_port()
    with sandbox() as venice:
        env = {
            "VENICE_API_KEY": "test-key",
            "VENICE_BASE_URL": venice.base_url,
            PORT_ENV: str(port),
        }
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            before = scrape(port)  # served from start-up, before any job
            folder.drop("good.png", make_image((300, 260)))
            folder.drop("bad.png", b"this is not an image")
            daemon.wait_states(done=1, failed=1)
            samples = scrape(port)
    assert ("hotfolder_jobs_in_flight", ()) in before
    jobs = {
        state: samples.get(("hotfolder_jobs_total", (("chain", "test"), ("state", state))))
        for state in ("started", "succeeded", "failed")
    }
    assert jobs == {"started": 2, "succeeded": 1, "failed": 1}
    assert samples[("hotfolder_jobs_in_flight", ())] == 0
    assert (
        samples[("hotfolder_venice_calls_total", (("op", "venice.upscale"), ("status", "ok")))] == 1
    )
    assert samples[("hotfolder_step_seconds_count", (("op", "venice.upscale"),))] == 1
    assert samples[("hotfolder_estimated_spend_usd_total", ())] == 0  # the sandbox: simulated
    assert samples[("hotfolder_simulated_spend_usd_total", ())] > 0
