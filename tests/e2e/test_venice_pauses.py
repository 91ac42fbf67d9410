"""Venice work that pauses and resumes, through every real layer: the daemon (a subprocess, or
in-process where the clock must be injected), the real Venice client, and the sandbox as an
HTTP server whose balance, keys and counters the tests script and read. No fake raises the
errors: the sandbox answers 402 and 401 and the client's own pause holds the work.

Each test keeps the pause on for longer than ``step_timeout_seconds × max_attempts``, so a
pause that ran down attempts or step timeouts would fail the jobs."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hotfolder.config import load_config
from hotfolder.daemon import claim
from hotfolder.daemon.service import Daemon as InProcessDaemon
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder.venice import SERVICE, VeniceClient, VeniceSection
from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.cli import hotfolder
from tests.helpers.daemon import Daemon, files_under, wait_for

pytestmark = pytest.mark.e2e

STEP_TIMEOUT_SECONDS = 2
MAX_ATTEMPTS = 2
REPROBE_SECONDS = 1.5
#: Longer than every attempt's step timeout together: a pause that used them up would fail.
PAUSED_FOR_SECONDS = STEP_TIMEOUT_SECONDS * MAX_ATTEMPTS + 2

CONFIG = f"""
[daemon]
rescan_seconds = 1
grace_seconds = 10
retry_backoff_seconds = 0.2
step_timeout_seconds = {{step_timeout}}
max_attempts = {MAX_ATTEMPTS}
reprobe_seconds = {REPROBE_SECONDS}
concurrency = 16

[venice]
requests_per_minute = 600
cache_dir = "cache"
{{venice_extra}}

[[folders]]
path = "inbox"
chain = "paid"
quiet_seconds = 0.2

[chains.paid]
steps = {{steps}}
outputs = [{{{{ sink = "folder", path = "out", name = "{{{{stem}}}}.{{{{ext}}}}" }}}}]
"""
TWO_PAID_STEPS = '[{ op = "venice.background-remove" }, { op = "venice.upscale", scale = 2 }]'


def write_config(
    root: Path,
    steps: str = TWO_PAID_STEPS,
    venice_extra: str = "",
    step_timeout: float = STEP_TIMEOUT_SECONDS,
) -> None:
    config = CONFIG.format(steps=steps, venice_extra=venice_extra, step_timeout=step_timeout)
    (root / "hotfolder.toml").write_text(config)
    (root / "inbox").mkdir()
    (root / "staging").mkdir()


def drop_photos(root: Path, count: int) -> None:
    """Noise PNGs written outside the inbox, then copied in with cp."""
    for n in range(count):
        buffer = io.BytesIO()
        Image.effect_noise((320, 240), 30 + 7 * n).convert("RGB").save(buffer, format="PNG")
        staged = root / "staging" / f"photo{n}.png"
        staged.write_bytes(buffer.getvalue())
        subprocess.run(["cp", str(staged), str(root / "inbox" / staged.name)], check=True)


def admin(sandbox: Any, method: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.request(method, sandbox.admin_url + route, json=body, timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def status_json(daemon: Daemon) -> dict[str, Any]:
    done = daemon.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def settled_paused(daemon: Daemon, total: int) -> bool:
    """At least one job paused, none running, none failed: the rest done, or queued and held
    back (a job that was not dispatched yet when the pause began is not started)."""
    counts = daemon.states()
    held = counts["paused"] + counts["queued"]
    return counts["paused"] > 0 and held + counts["done"] == total


def assert_outputs(root: Path, count: int, size: tuple[int, int]) -> None:
    outputs = files_under(root / "out", "*.png")
    assert len(outputs) == count
    for path in outputs:
        with Image.open(path) as image:
            assert (image.size, image.mode) == (size, "RGBA")


def test_an_empty_balance_pauses_every_job_and_a_top_up_resumes_them(tmp_path):
    """(a) Balance too low mid-batch, for longer than the attempts' step timeouts: nothing
    fails, the jobs stay claimed, and after a top-up every job is done within the re-probe
    interval plus a few seconds, with no paid call made twice."""
    write_config(tmp_path)
    with (
        start_sandbox(SandboxConfig(balance_usd=0.07, requests_per_minute=600)) as sandbox,
        Daemon(
            tmp_path, env={"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        ) as daemon,
    ):
        daemon.start()
        drop_photos(tmp_path, 3)
        wait_for(lambda: settled_paused(daemon, 3), 30, "the jobs to pause")
        status = status_json(daemon)
        assert status["paused"]["kind"] == "balance"
        assert "venice.ai/settings/api" in status["paused"]["hint"]
        assert status["paused"]["next_probe"]
        paused_rows = [r for r in daemon.rows() if r["state"] == "paused"]
        assert all(r["attempts"] == 0 for r in paused_rows)  # a pause uses up no attempt
        for row in paused_rows:  # still claimed: the original waits in processing/
            assert claim.input_path(tmp_path / "inbox", row["id"], row["name"]).is_file()

        time.sleep(PAUSED_FOR_SECONDS)
        assert daemon.states()["failed"] == 0
        charged_while_paused = sandbox.stats()["paid_total"]

        admin(sandbox, "POST", "/balance", {"add_usd": 5})
        topped_up = time.monotonic()
        daemon.wait_states(timeout=REPROBE_SECONDS + 15, done=3)
        took = time.monotonic() - topped_up

        stats = sandbox.stats()
    assert_outputs(tmp_path, 3, (640, 480))
    # two paid steps per photo, each paid once: the steps done before the pause were reused
    assert stats["paid_total"] == 6 and stats["paid_total"] > charged_while_paused
    refused = sum(v.get("402", 0) for k, v in stats["requests"].items() if k.startswith("/image"))
    assert 1 <= refused <= 4  # only what was in flight when the pause began
    assert stats["requests"]["/billing/balance"]["200"] >= 2  # the probes, spaced out
    log = daemon.log()
    assert "Venice work paused (balance)" in log and "Venice work resumes" in log
    print(f"resumed {took:.1f}s after the top-up")


def test_a_refused_key_pauses_and_work_resumes_when_it_is_accepted_again(tmp_path):
    """(b) The sandbox refuses the key for longer than the attempts' step timeouts, then
    accepts it: the jobs pause, then finish without SIGHUP or a restart."""
    write_config(tmp_path)
    key = "sk-revoked-for-a-while-0042"
    config = SandboxConfig(valid_keys=frozenset({"another-key"}), requests_per_minute=600)
    with (
        start_sandbox(config) as sandbox,
        Daemon(tmp_path, env={"VENICE_API_KEY": key, "VENICE_BASE_URL": sandbox.base_url}) as d,
    ):
        d.start()
        drop_photos(tmp_path, 2)
        wait_for(lambda: settled_paused(d, 2) and not d.states()["done"], 30, "the pause")
        text = d.cli("status")
        assert "PAUSED (auth)" in text.stdout and "fix:" in text.stdout
        assert "VENICE_API_KEY" in text.stdout

        time.sleep(PAUSED_FOR_SECONDS)
        assert settled_paused(d, 2) and not d.states()["done"]
        probes_refused = sandbox.stats()["requests"]["/billing/balance"].get("401", 0)

        admin(sandbox, "PATCH", "/config", {"valid_keys": ["another-key", key]})
        d.wait_states(timeout=REPROBE_SECONDS + 15, done=2)
        stats = sandbox.stats()
        log = d.log()
    assert_outputs(tmp_path, 2, (640, 480))
    assert stats["paid_total"] == 4
    refused = sum(v.get("401", 0) for k, v in stats["requests"].items() if "balance" not in k)
    assert 1 <= refused <= 2  # the jobs' requests in flight; none sent while paused
    assert probes_refused >= 2  # re-probed while refused, every reprobe_seconds
    assert "SIGHUP" not in log and key not in log


def _journal_counts(state_dir: Path) -> Counter[str]:
    path = state_dir / "journal.sqlite3"
    if not path.exists():
        return Counter()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return Counter(state for (state,) in db.execute("SELECT state FROM jobs"))
    except sqlite3.OperationalError:
        return Counter()
    finally:
        db.close()


def test_the_daily_budget_pauses_mid_batch_and_the_next_day_resumes(tmp_path):
    """(c) The real daemon in-process, so the client's clock can be moved to the next day:
    with ``max_usd_per_day`` for two upscales, the third waits, paused; the next day it runs."""
    write_config(
        tmp_path,
        steps='[{ op = "venice.upscale", scale = 2 }]',
        venice_extra="max_usd_per_day = 0.05",
    )
    clock = {"offset": 0.0}
    state_dir = tmp_path / "state"

    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        pm = make_plugin_manager(load_entrypoints=False)
        registry = build_registry(pm)
        config = load_config(tmp_path / "hotfolder.toml", registry)

        def make_runtime(cfg: Any) -> Runtime:
            runtime = Runtime(cfg, pm, registry)
            client = VeniceClient(
                base_url=sandbox.base_url,
                api_key="test-key",
                settings=cfg.section(VeniceSection),
                clock=lambda: time.time() + clock["offset"],
                persist=False,
            )
            runtime.set_service(SERVICE, client)
            return runtime

        daemon = InProcessDaemon(config, make_runtime, registry, state_dir)

        async def until(predicate: Any, timeout: float, what: str) -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                await asyncio.sleep(0.05)

        async def scenario() -> tuple[Counter[str], Counter[str]]:
            running = asyncio.create_task(daemon.run())
            try:
                await asyncio.sleep(0.5)
                await asyncio.to_thread(drop_photos, tmp_path, 3)
                counts = lambda: _journal_counts(state_dir)  # noqa: E731
                await until(lambda: counts() == Counter(done=2, paused=1), 30, "the budget pause")
                await asyncio.sleep(PAUSED_FOR_SECONDS)
                same_day = counts()
                clock["offset"] = 24 * 3600.0  # the next day
                await until(lambda: counts() == Counter(done=3), REPROBE_SECONDS + 10, "resume")
                return same_day, counts()
            finally:
                daemon._stop.set()
                await running

        same_day, next_day = asyncio.run(scenario())
        stats = sandbox.stats()
    assert same_day == Counter(done=2, paused=1)
    assert next_day == Counter(done=3)
    assert stats["paid_total"] == 3  # the paused job was never sent over the budget
    assert_outputs_rgb(tmp_path, 3, (640, 480))


def assert_outputs_rgb(root: Path, count: int, size: tuple[int, int]) -> None:
    outputs = files_under(root / "out", "*.png")
    assert len(outputs) == count
    for path in outputs:
        with Image.open(path) as image:
            assert image.size == size


def test_process_gives_up_after_wait_paused_and_a_rerun_pays_only_for_the_rest(tmp_path):
    """``hotfolder process`` with too little balance: it waits ``--wait-paused`` seconds, exits
    1 naming the pause and the fix, keeps the paid steps' results; after a top-up the same
    command finishes and pays only for the steps not done yet."""
    write_config(tmp_path)
    photos = tmp_path / "staging"
    for n in range(2):
        Image.effect_noise((320, 240), 50 + n).convert("RGB").save(photos / f"p{n}.png")
    args = ("--config", "hotfolder.toml", "process", "staging", "--chain", "paid")
    # one background removal ($0.03) can be paid, nothing more
    with start_sandbox(SandboxConfig(balance_usd=0.035, requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        started = time.monotonic()
        first = hotfolder(*args, "--wait-paused", "3", cwd=tmp_path, env=env)
        took = time.monotonic() - started
        paid_first = sandbox.stats()["paid_total"]
        admin(sandbox, "POST", "/balance", {"add_usd": 5})
        second = hotfolder(*args, cwd=tmp_path, env=env)
        stats = sandbox.stats()
    assert first.code == 1, first.output
    assert took < 3 + 30  # gave up after --wait-paused (plus start-up), not never
    assert "paused (balance)" in first.stderr and "venice.ai/settings/api" in first.stderr
    assert "run the same command again" in first.stderr
    assert paid_first >= 1  # something was paid before the pause: its result is kept
    assert second.code == 0, second.output
    assert "reused the saved result" in second.stderr
    assert stats["paid_total"] == 4  # 2 photos x 2 paid steps, none paid twice
    assert_outputs(tmp_path, 2, (640, 480))
    assert list((tmp_path / "cache" / "checkpoints").iterdir()) == []  # done: cleaned up


def test_process_wait_paused_0_does_not_wait(tmp_path):
    write_config(tmp_path)
    Image.effect_noise((320, 240), 9).convert("RGB").save(tmp_path / "staging" / "p.png")
    with start_sandbox(SandboxConfig(balance_usd=0, requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        run = hotfolder(
            "--config", "hotfolder.toml", "process", "staging", "--chain", "paid",
            "--wait-paused", "0", cwd=tmp_path, env=env,
        )  # fmt: skip
        stats = sandbox.stats()
    assert run.code == 1
    assert "1 input(s) left undone" in run.stderr
    assert "/billing/balance" not in stats["requests"]  # no probe: it did not wait


def test_waits_for_a_slot_are_shown_apart_and_do_not_run_down_the_step_timeout(tmp_path):
    """One connection to a sandbox that takes 0.5 s per answer, 12 jobs at once: the last
    ones queue for the connection longer than ``step_timeout_seconds`` (4 s, 8 answers). The
    wait is shown by ``status --json`` and logged apart from the time on the wire, and no step
    times out. (The rate limiter's waits go through the same report: test_venice_limiter.py.)"""
    step_timeout = 4.0
    write_config(
        tmp_path,
        steps='[{ op = "venice.upscale", scale = 2 }]',
        venice_extra="max_connections = 1",
        step_timeout=step_timeout,
    )
    config = SandboxConfig(requests_per_minute=600, latency_ms=500)
    with (
        start_sandbox(config) as sandbox,
        Daemon(
            tmp_path, env={"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        ) as daemon,
    ):
        daemon.start()
        drop_photos(tmp_path, 12)

        def a_wait() -> dict[str, Any] | None:
            # The first jobs may wait for the model list another job is fetching (also shown
            # apart); the wait this test is about is the one for the single connection.
            for folder in status_json(daemon)["folders"]:
                for job in folder["in_flight"]:
                    if (job["waiting"] or {}).get("what") == "a free Venice connection":
                        return dict(job["waiting"])
            return None

        wait = wait_for(a_wait, 30, "status to show a job waiting for the Venice connection")
        rows = daemon.wait_states(timeout=90, done=12)
        stats = sandbox.stats()
    assert wait["what"] == "a free Venice connection" and wait["since"]
    assert all(r["attempts"] == 1 for r in rows)  # no step timed out while it queued
    assert stats["paid_total"] == 12
    log = daemon.log()
    assert "took longer than" not in log
    queued = [line for line in log.splitlines() if "for a slot" in line]
    assert len(queued) >= 3, log[-3000:]
    longest = 0.0
    for line in queued:  # "200 in 0.51s on the wire, queued 4.44s for a slot"
        wire = float(line.split(" 200 in ")[1].split("s on the wire")[0])
        waited = float(line.split(", queued ")[1].split("s for a slot")[0])
        assert 0.5 <= wire < step_timeout
        longest = max(longest, waited)
    assert longest > step_timeout  # queued longer than a step may take


def test_without_a_key_the_daemon_says_at_start_which_chains_wait(tmp_path):
    """No key at all: the start-up log names the chains that will wait; their jobs pause (no
    request is sent, nothing fails), local chains go on, and status says what ends it."""
    write_config(tmp_path, steps='[{ op = "venice.upscale", scale = 2 }]')
    config = (tmp_path / "hotfolder.toml").read_text()
    (tmp_path / "hotfolder.toml").write_text(
        config
        + '\n[[folders]]\npath = "local"\nchain = "local"\nquiet_seconds = 0.2\n\n'
        + '[chains.local]\nsteps = [{ op = "convert", format = "png" }]\n'
        + 'outputs = [{ sink = "folder", path = "out-local" }]\n'
    )
    (tmp_path / "local").mkdir()
    with (
        start_sandbox(SandboxConfig()) as sandbox,
        Daemon(tmp_path, env={"VENICE_BASE_URL": sandbox.base_url}) as daemon,
    ):
        daemon.start()
        log = daemon.log()
        drop_photos(tmp_path, 1)
        subprocess.run(["cp", str(tmp_path / "staging" / "photo0.png"), "local/"], cwd=tmp_path)
        wait_for(
            lambda: daemon.states() == Counter(paused=1, done=1), 30, "the pause and the local job"
        )
        text = daemon.cli("status").stdout
        stats = sandbox.stats()
    assert "no Venice API key" in log and "the chains paid will wait" in log
    assert "PAUSED (auth)" in text and "reload (SIGHUP) or a restart" in text
    assert stats["requests_total"] == 0


def test_a_reloaded_config_starts_afresh_and_paused_jobs_go_on(tmp_path):
    """Probes far apart (10 min): the key is accepted again, and a SIGHUP (a new runtime with
    a new, unpaused client) lets the paused jobs go on at once."""
    write_config(tmp_path)
    config = tmp_path / "hotfolder.toml"
    config.write_text(
        config.read_text().replace(f"reprobe_seconds = {REPROBE_SECONDS}", "reprobe_seconds = 600")
    )
    key = "sk-accepted-after-a-reload-0077"
    sandbox_config = SandboxConfig(valid_keys=frozenset({"another-key"}), requests_per_minute=600)
    with (
        start_sandbox(sandbox_config) as sandbox,
        Daemon(tmp_path, env={"VENICE_API_KEY": key, "VENICE_BASE_URL": sandbox.base_url}) as d,
    ):
        d.start()
        drop_photos(tmp_path, 1)
        wait_for(lambda: d.states() == Counter(paused=1), 30, "the pause")
        admin(sandbox, "PATCH", "/config", {"valid_keys": ["another-key", key]})
        d.signal(signal.SIGHUP)
        d.wait_states(timeout=30, done=1)
        stats = sandbox.stats()
    assert "/billing/balance" not in stats["requests"]  # no probe: the reload did it
    assert stats["paid_total"] == 2
