"""End to end, through real ``hotfolder`` subprocesses: ``[plugins.prometheus] port`` is
served by ``hotfolder run`` from start-up until it stops, and by no other command; a typo in
the table fails ``validate`` with a "did you mean"."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from hotfolder_prometheus import PORT_ENV
from prometheus_client.parser import text_string_to_metric_families

from hotfolder.testing import hot_folder, make_image, sandbox
from tests.helpers.cli import hotfolder
from tests.helpers.daemon import Daemon, wait_for

pytestmark = pytest.mark.e2e

FAST = {"rescan_seconds": 1, "grace_seconds": 10, "max_attempts": 1}
REFUSED = "cannot serve Prometheus metrics"


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


def bound(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (a connection is accepted)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def held(port: int) -> Iterator[None]:
    """Listen on the port ourselves: a command that tries to serve there says it cannot."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def test_the_daemon_serves_metrics_of_its_jobs_on_the_configured_port(tmp_path):
    folder = hot_folder(tmp_path)
    port = _free_port()
    folder.write_config(
        [{"op": "venice.upscale", "scale": 2}],
        daemon=FAST,
        venice={"requests_per_minute": 10_000},
        plugins={"prometheus": {"port": port}},
    )
    with sandbox() as venice:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": venice.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            before = wait_for(lambda: _try_scrape(port), 30, f"metrics on port {port}")
            folder.drop("good.png", make_image((300, 260)))
            folder.drop("bad.png", b"this is not an image")
            daemon.wait_states(done=1, failed=1)
            samples = scrape(port)
            assert daemon.stop() == 0
            log = daemon.log()
    assert not bound(port), f"port {port} is still bound after the daemon stopped"
    assert f"serving Prometheus metrics on http://127.0.0.1:{port}/metrics" in log
    assert "deprecated" not in log
    assert ("hotfolder_jobs_in_flight", ()) in before  # served from start-up, before any job
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


def _try_scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        return scrape(port)
    except httpx.HTTPError:
        return None


def test_only_run_binds_the_port(tmp_path):
    """With the port held by the test, a command that tried to serve would log that it
    cannot: ``run`` does (the control), ``validate``, ``status`` and ``plugins`` do not."""
    folder = hot_folder(tmp_path)
    port = _free_port()
    config = folder.write_config(
        [{"op": "resize", "width": 32}], daemon=FAST, plugins={"prometheus": {"port": port}}
    )
    with held(port):
        with Daemon(tmp_path) as daemon:  # the control; it also makes the journal for status
            daemon.start()
            wait_for(lambda: REFUSED in daemon.log(), 30, "run to try the held port")
            assert daemon.stop() == 0
        assert f"{REFUSED} on 127.0.0.1:{port}" in daemon.log()
        for args in (("validate",), ("status", "--state-dir", "state"), ("plugins",)):
            result = hotfolder("--config", str(config), *args, cwd=tmp_path)
            assert result.code == 0, result.output
            assert REFUSED not in result.output, f"{args[0]} tried to serve metrics"
    assert not bound(port)


def test_validate_names_an_unknown_key_with_did_you_mean(tmp_path):
    config = hot_folder(tmp_path).write_config(
        [{"op": "resize", "width": 32}], plugins={"prometheus": {"prot": 9464}, "promethus": {}}
    )
    result = hotfolder("--config", str(config), "validate", cwd=tmp_path)
    assert result.code == 2, result.output
    assert "plugins.prometheus.prot: unknown key; did you mean 'port'?" in result.output
    assert (
        "plugins.promethus: no plugin named 'promethus' is installed that takes settings; "
        "did you mean 'prometheus'?" in result.output
    )


def test_the_deprecated_environment_variable_still_works_with_a_warning(tmp_path):
    hot_folder(tmp_path).write_config([{"op": "resize", "width": 32}], daemon=FAST)
    port = _free_port()
    with Daemon(tmp_path, env={PORT_ENV: str(port)}) as daemon:
        daemon.start()
        samples = wait_for(lambda: _try_scrape(port), 30, f"metrics on port {port}")
        assert daemon.stop() == 0
    assert ("hotfolder_jobs_in_flight", ()) in samples
    log = daemon.log()
    assert f"{PORT_ENV} is deprecated" in log and "[plugins.prometheus]" in log
    assert not bound(port)


def test_a_reload_that_moves_the_port_moves_the_server(tmp_path):
    folder = hot_folder(tmp_path)
    first, second = _free_port(), _free_port()
    folder.write_config([{"op": "resize", "width": 32}], plugins={"prometheus": {"port": first}})
    with Daemon(tmp_path) as daemon:
        daemon.start()
        wait_for(lambda: _try_scrape(first), 30, f"metrics on port {first}")
        folder.write_config(
            [{"op": "resize", "width": 32}], plugins={"prometheus": {"port": second}}
        )
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: _try_scrape(second), 30, f"metrics on port {second} after SIGHUP")
        wait_for(lambda: not bound(first), 30, f"port {first} to be let go")
        assert daemon.stop() == 0
    assert not bound(second)
