"""Metrics from jobs run through the real engine, scraped over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import hotfolder_prometheus
import httpx
import pytest
from hotfolder_prometheus import (
    ADDR_ENV,
    PORT_ENV,
    Exporter,
    Metrics,
    PrometheusSettings,
    serve,
    where,
)
from prometheus_client.parser import text_string_to_metric_families

from hotfolder.config import validate_config
from hotfolder.errors import ConfigError, InputError, Rejected
from hotfolder.job import Job
from hotfolder.plugins import build_registry, make_plugin_manager, plugin_info
from hotfolder.testing import hot_folder, make_image, make_runtime, run_chain, sandbox

UPSCALE = [{"op": "venice.upscale", "scale": 2}]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at ``http://127.0.0.1:port/metrics``: (name, sorted labels) -> value."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
def metrics() -> Iterator[tuple[Metrics, int]]:
    """A fresh Metrics plugin, served on a free loopback port."""
    fresh = Metrics()
    server = serve(fresh.registry, 0)
    yield fresh, server.server_port
    server.shutdown()
    server.server_close()


def test_the_distribution_is_discovered_through_its_entry_point():
    info = {row["name"]: row for row in plugin_info(make_plugin_manager())}
    assert info["prometheus"]["distribution"] == "hotfolder-prometheus"
    assert "hotfolder_job_succeeded" in info["prometheus"]["hooks"]


def test_a_success_and_a_failure_are_counted(tmp_path, metrics):
    plugin, port = metrics
    folder = hot_folder(tmp_path)
    good, bad = (
        folder.drop("good.png", make_image((300, 260))),
        folder.drop("bad.png", b"not an image at all"),
    )
    with sandbox() as venice:
        result = run_chain(good, UPSCALE, plugins=[plugin], sandbox=venice)
        venice.configure(fault_rates={422: 1.0})
        with pytest.raises(Rejected):
            run_chain(good, UPSCALE, plugins=[plugin], sandbox=venice)
    with pytest.raises(InputError, match=r"bad\.png"):
        run_chain(bad, UPSCALE, plugins=[plugin])

    samples = scrape(port)
    jobs = {
        state: samples[("hotfolder_jobs_total", (("chain", "test"), ("state", state)))]
        for state in ("started", "succeeded", "failed")
    }
    assert jobs == {"started": 3, "succeeded": 1, "failed": 2}
    assert samples[("hotfolder_jobs_in_flight", ())] == 0
    [step] = result.steps
    ok = (("op", "venice.upscale"), ("status", "ok"))
    assert samples[("hotfolder_venice_calls_total", ok)] == len(step.request_ids) >= 1
    assert samples[("hotfolder_venice_calls_total", (("op", "unknown"), ("status", "422")))] == 1
    assert samples[("hotfolder_step_seconds_count", (("op", "venice.upscale"),))] == 1
    spend = samples[("hotfolder_estimated_spend_usd_total", ())]
    simulated = samples[("hotfolder_simulated_spend_usd_total", ())]
    assert spend == result.cost_usd == 0  # the sandbox's answers cost nothing real
    assert simulated == pytest.approx(result.simulated_usd) and simulated > 0


def test_a_job_is_in_flight_between_start_and_end(metrics):
    plugin, port = metrics
    job = Job(source="x.png", chain="c")
    plugin.hotfolder_job_started(job)
    assert scrape(port)[("hotfolder_jobs_in_flight", ())] == 1
    plugin.hotfolder_job_started(job)  # a paused job that runs again is still one job
    assert scrape(port)[("hotfolder_jobs_in_flight", ())] == 1
    plugin.hotfolder_job_failed(job, Rejected("no", status=400))
    assert scrape(port)[("hotfolder_jobs_in_flight", ())] == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CHAINS = {"web": {"outputs": [{"sink": "folder", "path": "out"}]}}


def test_the_config_names_the_port_and_a_typo_gets_a_did_you_mean(tmp_path):
    raw = {"plugins": {"prometheus": {"port": 9464}}, "chains": CHAINS}
    runtime = make_runtime(raw, hotfolder_prometheus, base_dir=tmp_path)
    assert runtime.plugin_settings(PrometheusSettings) == PrometheusSettings(port=9464)
    assert make_runtime({}, hotfolder_prometheus).plugin_settings(PrometheusSettings).port is None

    registry = build_registry(make_plugin_manager())  # installed: named by its entry point
    bad = {"plugins": {"prometheus": {"prot": 9464, "address": ""}}, "chains": CHAINS}
    with pytest.raises(ConfigError) as caught:
        validate_config(bad, registry)
    assert "plugins.prometheus.prot: unknown key; did you mean 'port'?" in str(caught.value)
    assert "plugins.prometheus.address: String should have at least 1 character" in str(
        caught.value
    )
    with pytest.raises(ConfigError, match=r"plugins\.prometheus\.port: .*less than or equal"):
        validate_config({"plugins": {"prometheus": {"port": 70000}}}, registry)


def test_the_exporter_serves_where_the_settings_say_and_stops(monkeypatch):
    monkeypatch.delenv(PORT_ENV, raising=False)
    exporter = Exporter(Metrics())
    exporter.apply(PrometheusSettings())
    assert exporter.server is None  # no port: nothing served

    port = _free_port()
    exporter.apply(PrometheusSettings(port=port))
    try:
        assert ("hotfolder_jobs_in_flight", ()) in scrape(port)
        # A second process with the same setting only warns.
        other = Exporter(Metrics())
        other.apply(PrometheusSettings(port=port))
        assert other.server is None
        moved = _free_port()
        exporter.apply(PrometheusSettings(port=moved))  # a reload that moves the port
        assert ("hotfolder_jobs_in_flight", ()) in scrape(moved)
        with pytest.raises(httpx.ConnectError):
            scrape(port)
    finally:
        exporter.hotfolder_daemon_stopped()
    with pytest.raises(httpx.ConnectError):
        scrape(moved)


def test_the_deprecated_environment_still_names_the_port(monkeypatch):
    monkeypatch.setenv(PORT_ENV, "9464")
    monkeypatch.setenv(ADDR_ENV, "0.0.0.0")
    assert where(PrometheusSettings()) == ("0.0.0.0", 9464)
    # The config wins over the environment.
    assert where(PrometheusSettings(port=9000)) == ("127.0.0.1", 9000)
    monkeypatch.delenv(PORT_ENV)
    assert where(PrometheusSettings()) is None


@pytest.mark.parametrize("value", ["http", "0", "70000"])
def test_a_bad_port_in_the_environment_is_a_warning_not_a_crash(monkeypatch, value):
    monkeypatch.setenv(PORT_ENV, value)
    assert where(PrometheusSettings()) is None


def test_importing_the_plugin_serves_nothing():
    assert hotfolder_prometheus.EXPORTER.server is None


def test_the_installed_plugin_counts_into_the_module_metrics(tmp_path):
    folder = hot_folder(tmp_path)
    before = hotfolder_prometheus.METRICS.registry.get_sample_value(
        "hotfolder_jobs_total", {"chain": "test", "state": "succeeded"}
    )
    run_chain(folder.drop("a.png"), [{"op": "resize", "width": 10}], plugins=[hotfolder_prometheus])
    after = hotfolder_prometheus.METRICS.registry.get_sample_value(
        "hotfolder_jobs_total", {"chain": "test", "state": "succeeded"}
    )
    assert after == (before or 0) + 1
