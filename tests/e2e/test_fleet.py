"""A fleet through every real layer: a real ``redis-server`` on loopback (random port, no
persistence), one ``hotfolder run`` and several ``hotfolder worker`` processes, the sandbox as
an HTTP server with a real rate limit, files copied in with cp. The tests count what the
sandbox was asked and paid, and what landed on disk."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.cli import hotfolder
from tests.helpers.daemon import Daemon, files_under, noise_photos, wait_for
from tests.helpers.fleet import RedisServer, Worker, settle

pytestmark = pytest.mark.e2e

HEARTBEAT_SECONDS = 2
REPROBE_SECONDS = 1.5


def fleet_config(redis_url: str, *, requests_per_minute: int = 600, steps: str = "") -> str:
    """One folder, ``inbox``, whose chain resizes (a local step) and removes the background
    (a paid step) into ``out/``; chains run on the fleet's workers."""
    steps = steps or '{ op = "resize", width = 400 }, { op = "venice.background-remove" }'
    return f"""
[daemon]
rescan_seconds = 1
grace_seconds = 10
retry_backoff_seconds = 0.2
reprobe_seconds = {REPROBE_SECONDS}
max_attempts = 5

[executor]
kind = "dramatiq"
redis_url = "{redis_url}"
heartbeat_seconds = {HEARTBEAT_SECONDS}

[venice]
requests_per_minute = {requests_per_minute}
cache_dir = "cache"

[[folders]]
path = "inbox"
chain = "cutout"
quiet_seconds = 0.2

[chains.cutout]
steps = [{steps}]
outputs = [{{ sink = "folder", path = "out", name = "{{stem}}.{{ext}}" }}]
"""


class Fleet:
    """A watcher and ``workers`` workers over ``root``, against ``sandbox`` and ``redis``."""

    def __init__(
        self, root: Path, sandbox: Any, redis: RedisServer, config: str, *, web: str = ""
    ) -> None:
        self.root = root
        self.sandbox = sandbox
        self.redis = redis
        (root / "inbox").mkdir(exist_ok=True)
        (root / "hotfolder.toml").write_text(config)
        self.env = {"VENICE_API_KEY": "fleet-key", "VENICE_BASE_URL": sandbox.base_url}
        self.stack = ExitStack()
        args = ("--web", web) if web else ()
        self.watcher = self.stack.enter_context(Daemon(root, env=self.env, args=args))
        self.workers: list[Worker] = []
        self.started = 0

    def start(self, workers: int, threads: int = 2) -> Fleet:
        self.watcher.start()
        for _ in range(workers):
            self.add_worker(threads)
        return self

    def add_worker(self, threads: int = 2) -> Worker:
        self.started += 1
        worker = Worker(self.root, f"worker{self.started}", env=self.env,
                        args=("--threads", str(threads)))  # fmt: skip
        self.stack.enter_context(worker)
        self.workers.append(worker.start())
        return worker

    def drop(self, count: int, *, prefix: str = "photo", seed: int = 20) -> list[Path]:
        photos = noise_photos(self.root / "staging", count, prefix=prefix, seed=seed)
        for photo in photos:
            subprocess.run(["cp", str(photo), str(self.root / "inbox" / photo.name)], check=True)
        return photos

    def status(self) -> dict[str, Any]:
        done = self.watcher.cli("status", "--json")
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def logs(self) -> str:
        return self.watcher.log() + "".join(w.log() for w in self.workers)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get_json(url: str) -> dict[str, Any]:
    done = subprocess.run(["curl", "-sf", url], capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def image_requests(stats: dict[str, Any], status: str) -> int:
    return sum(v.get(status, 0) for k, v in stats["requests"].items() if k.startswith("/image"))


def assert_each_output_once(root: Path, photos: list[Path]) -> None:
    outputs = files_under(root / "out")
    assert sorted(p.name for p in outputs) == sorted(p.name for p in photos)  # none twice
    for path in outputs:
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((400, 300), "RGBA")


def test_three_workers_do_300_files_each_exactly_once(tmp_path):
    web = f"127.0.0.1:{free_port()}"
    with (
        RedisServer(tmp_path / "redis") as redis,
        start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox,
        Fleet(tmp_path, sandbox, redis, fleet_config(redis.url), web=web) as fleet,
    ):
        fleet.start(workers=3)
        photos = fleet.drop(300)
        rows = fleet.watcher.wait_states(timeout=240, done=300)
        stats = sandbox.stats()
        status = wait_for(
            lambda: (s := fleet.status())["fleet"] and sum(
                w["done"] for w in s["fleet"]["workers"]) == 300 and s,
            3 * HEARTBEAT_SECONDS + 10, "the workers' counts in status",
        )  # fmt: skip
        text = fleet.watcher.cli("status").stdout
        # the dashboard shows the same fleet (its status refreshes every second)
        api = wait_for(lambda: (a := _get_json(f"http://{web}/api/status"))["fleet"] and sum(
            w["done"] for w in a["fleet"]["workers"]) == 300 and a, 30,
            "the dashboard's status to show the workers' counts")  # fmt: skip
        page = subprocess.run(["curl", "-sf", f"http://{web}/"], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
    assert_each_output_once(tmp_path, photos)
    assert len(api["fleet"]["workers"]) == 3
    assert 'id="fleet"' in page and "3 worker(s) seen" in page
    assert stats["paid_total"] == 300 and image_requests(stats, "429") == 0
    assert len({r["id"] for r in rows}) == 300
    workers = status["fleet"]["workers"]
    assert len(workers) == 3 and all(w["done"] > 0 for w in workers)  # the work was shared
    assert "fleet: 3 worker(s) seen" in text


def test_killed_workers_lose_nothing_and_pay_at_most_once_more_per_kill(tmp_path):
    """Two workers (one job at a time each) are killed with SIGKILL at random moments
    mid-batch and replaced: every file is done, no output is written twice, and each kill
    costs at most one paid call more (the one on the wire when it landed)."""
    rng = random.Random(7)
    with (
        RedisServer(tmp_path / "redis") as redis,
        start_sandbox(SandboxConfig(requests_per_minute=600, latency_ms=150)) as sandbox,
        Fleet(tmp_path, sandbox, redis, fleet_config(redis.url)) as fleet,
    ):
        fleet.start(workers=3, threads=1)
        photos = fleet.drop(80)
        for victim in rng.sample(range(3), 2):
            done_before = fleet.watcher.states()["done"]
            at = done_before + rng.randint(5, 20)
            wait_for(lambda at=at: fleet.watcher.states()["done"] >= at, 120, f"{at} done")
            fleet.workers[victim].kill9()
            fleet.add_worker(threads=1)
        fleet.watcher.wait_states(timeout=240, done=80)
        stats = sandbox.stats()
        logs = fleet.logs()
    assert_each_output_once(tmp_path, photos)
    assert 80 <= stats["paid_total"] <= 82
    assert image_requests(stats, "429") == 0
    assert "Traceback" not in logs


def test_the_fleet_keeps_to_one_accounts_rate_limit(tmp_path):
    """Every worker alone may send 20 image requests a minute, and the sandbox allows the
    account 20: three workers together never get a 429, because they share the limit."""
    with (
        RedisServer(tmp_path / "redis") as redis,
        start_sandbox(SandboxConfig(requests_per_minute=20)) as sandbox,
        Fleet(tmp_path, sandbox, redis, fleet_config(redis.url, requests_per_minute=20)) as f,
    ):
        f.start(workers=3, threads=4)
        photos = f.drop(26)
        full = wait_for(
            lambda: "20 of 20 image requests in the last minute (the fleet's, shared); the "
            "next slot is free in" in (text := f.watcher.cli("status").stdout) and text,
            60, "status to show the spent window",
        )  # fmt: skip
        f.watcher.wait_states(timeout=150, done=26)
        stats = sandbox.stats()
    assert_each_output_once(tmp_path, photos)
    assert stats["paid_total"] == 26
    assert image_requests(stats, "429") == 0  # 20 in the first minute, the rest after it
    assert "fleet: 3 worker(s) seen" in full


def test_a_402_seen_by_one_worker_pauses_all_and_a_top_up_resumes_all(tmp_path):
    with (
        RedisServer(tmp_path / "redis") as redis,
        start_sandbox(SandboxConfig(requests_per_minute=600, balance_usd=0.1)) as sandbox,
        Fleet(tmp_path, sandbox, redis, fleet_config(redis.url)) as fleet,
    ):
        fleet.start(workers=3)
        photos = fleet.drop(12)
        wait_for(lambda: (fleet.status()["paused"] or {}).get("kind") == "balance", 60,
                 "the fleet to pause")  # fmt: skip
        settle(3 * REPROBE_SECONDS)
        paused = fleet.watcher.states()
        charged = sandbox.stats()["paid_total"]
        refused_while_paused = image_requests(sandbox.stats(), "402")
        settle(2 * REPROBE_SECONDS)
        assert image_requests(sandbox.stats(), "402") == refused_while_paused  # none sent
        httpx.post(sandbox.admin_url + "/balance", json={"add_usd": 5}, timeout=10)
        fleet.watcher.wait_states(timeout=60, done=12)
        stats = sandbox.stats()
        logs = fleet.logs()
    assert paused["failed"] == 0 and paused["paused"] + paused["queued"] > 0
    assert charged == 3  # $0.10 pays three background removals
    assert_each_output_once(tmp_path, photos)
    assert stats["paid_total"] == 12
    assert 1 <= refused_while_paused <= 6  # what the workers had in flight (3 x 2 threads)
    assert "Venice work paused (balance)" in logs and "Venice work resumes" in logs


def test_redis_stopped_for_20_seconds_mid_batch_loses_nothing(tmp_path):
    """Redis (without persistence: it comes back empty) stops mid-batch for 20 s: the watcher
    keeps claiming, the workers wait, and once it is back every file is done, once."""
    with (
        RedisServer(tmp_path / "redis") as redis,
        start_sandbox(SandboxConfig(requests_per_minute=600, latency_ms=100)) as sandbox,
        Fleet(tmp_path, sandbox, redis, fleet_config(redis.url)) as fleet,
    ):
        fleet.start(workers=2)
        photos = fleet.drop(40)
        wait_for(lambda: fleet.watcher.states()["done"] >= 10, 120, "10 done")
        redis.stop()
        more = fleet.drop(10, prefix="later", seed=900)
        settle(20)
        during = fleet.watcher.states()
        redis.start()
        fleet.watcher.wait_states(timeout=180, done=50)
        stats = sandbox.stats()
        logs = fleet.logs()
    assert during["failed"] == 0
    assert_each_output_once(tmp_path, photos + more)
    assert 50 <= stats["paid_total"] <= 54  # at most what was on the wire when it stopped
    assert "Redis is not reachable" in logs
    assert Counter(p.name for p in files_under(tmp_path / "out")).most_common(1)[0][1] == 1


def test_jobs_waiting_on_a_worker_show_in_the_watchers_status(tmp_path):
    """One worker running 4 jobs at once, one Venice connection, 1.5 s an answer: three jobs
    queue on the worker for the connection. The watcher's ``status`` shows each such job as
    waiting, for what and on which worker, as it shows a local daemon's waits; once all are
    done, no wait is left."""
    with (
        RedisServer(tmp_path / "redis") as redis,
        start_sandbox(SandboxConfig(requests_per_minute=600, latency_ms=1500)) as sandbox,
    ):
        config = fleet_config(redis.url).replace("[venice]\n", "[venice]\nmax_connections = 1\n")
        with Fleet(tmp_path, sandbox, redis, config) as fleet:
            fleet.start(workers=1, threads=4)
            fleet.drop(4)

            def waiting() -> list[dict[str, Any]]:
                jobs = [job for folder in fleet.status()["folders"] for job in folder["in_flight"]]
                return [job for job in jobs if job["waiting"]]

            waits = wait_for(lambda: len(found := waiting()) >= 2 and found, 60,
                             "status to show jobs waiting on the worker")  # fmt: skip
            text = fleet.watcher.cli("status").stdout
            fleet.watcher.wait_states(timeout=60, done=4)
            after = wait_for(lambda: not waiting() and fleet.status(), 10, "the waits to end")
            paid = sandbox.stats()["paid_total"]
    for job in waits:
        assert job["waiting"]["what"] == "a free Venice connection", job
        assert job["waiting"]["since"] and job["waiting"]["worker"], job
    assert "waiting for a free Venice connection since" in text and " on worker " in text, text
    assert all(f["in_flight"] == [] for f in after["folders"])
    assert paid == 4


def test_a_worker_with_another_config_refuses_the_jobs_and_they_fail_visibly(tmp_path):
    """The worker's chain differs from the watcher's (another width): it refuses every job
    with an error saying so; the jobs are tried again and end in the failed folder with that
    error, their originals kept."""
    with (
        RedisServer(tmp_path / "redis") as redis,
        start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox,
        Fleet(tmp_path, sandbox, redis, fleet_config(redis.url)) as fleet,
    ):
        other = tmp_path / "other.toml"
        other.write_text(fleet_config(redis.url).replace("width = 400", "width = 500"))
        fleet.watcher.start()
        fleet.stack.enter_context(Worker(tmp_path, "stale", env=fleet.env, config=other)).start()
        photos = fleet.drop(2)
        rows = fleet.watcher.wait_states(timeout=60, failed=2)
        stats = sandbox.stats()
    assert stats["paid_total"] == 0 and not (tmp_path / "out").exists()
    for row, photo in zip(sorted(rows, key=lambda r: r["name"]), photos, strict=True):
        assert "another config for chain 'cutout'" in row["error"]["message"]
        failed = tmp_path / "inbox/.hotfolder/failed" / photo.name
        assert failed.read_bytes() == photo.read_bytes()
        error = json.loads(failed.with_name(photo.name + ".error.json").read_text())
        assert "hotfolder.toml" in error["hint"] and error["attempts"] == 5


def test_worker_processes_are_supervised_and_restarted(tmp_path):
    """``--processes 2``: two worker processes; one killed is replaced; SIGTERM stops all."""
    with RedisServer(tmp_path / "redis") as redis, start_sandbox(SandboxConfig()) as sandbox:
        (tmp_path / "hotfolder.toml").write_text(fleet_config(redis.url))
        env = {"VENICE_BASE_URL": sandbox.base_url}
        worker = Worker(tmp_path, "pool", env=env, args=("--processes", "2"))
        with worker:
            worker.start(count=2)
            children = wait_for(lambda: _children(worker.proc.pid), 10, "two children")
            assert len(children) == 2
            os.kill(children[0], signal.SIGKILL)
            wait_for(lambda: worker.log().count("takes jobs from") >= 3, 30, "a replacement")
            assert "ended (-9); starting another" in worker.log()
            now = wait_for(lambda: len(c := _children(worker.proc.pid)) == 2 and c, 10, "two")
            assert children[0] not in now
            assert worker.stop() == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in now)  # stopped with it


def test_a_local_config_has_no_work_for_a_worker(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(fleet_config("redis://127.0.0.1:1/0").replace(
        'kind = "dramatiq"', 'kind = "local"'))  # fmt: skip
    done = hotfolder("--config", str(tmp_path / "hotfolder.toml"), "worker", cwd=tmp_path)
    assert done.code == 2
    assert '[executor] kind is "local"' in done.output and "scale-out.md" in done.output


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_worker_started_before_redis_waits_for_it(tmp_path):
    """A worker whose Redis is not up yet keeps trying; once Redis starts it takes jobs."""
    redis = RedisServer(tmp_path / "redis")
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        fleet = Fleet(tmp_path, sandbox, redis, fleet_config(redis.url))
        with fleet:
            early = fleet.stack.enter_context(Worker(tmp_path, "early", env=fleet.env))
            early.start()
            wait_for(lambda: "Redis is not reachable" in early.log(), 30, "the worker to wait")
            with redis:
                fleet.watcher.start()
                photos = fleet.drop(3)
                fleet.watcher.wait_states(timeout=60, done=3)
                log = early.log()
    assert_each_output_once(tmp_path, photos)
    assert log.count("done in") == 3 and "Redis is reachable again" in log
