"""Benchmark 8: a fleet. (a) A CPU-bound local chain over the corpus photos, dropped into a
watched folder at once: ``hotfolder run`` with the local executor against a watcher with 1, 2
and 4 ``hotfolder worker`` processes over a real ``redis-server`` on loopback, from the drop
to the last job done. (b) A Venice-bound chain: three workers, each allowed the account's
whole rate, against a sandbox that allows the account that rate: the fleet's send rate, and
whether any request met a 429."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.bench.common import (
    HOTFOLDER,
    PHOTOS,
    Bench,
    DaemonProc,
    Goal,
    Section,
    Spread,
    Table,
    alternate,
    copies,
    hotfolder_env,
    sandbox,
    wait_for,
)
from tests.helpers.fleet import RedisServer

NUMBER, TITLE = 8, "A fleet: workers over Redis"
CORES = os.cpu_count() or 1
ANIMATED = ("iss634.gif", "iss634.apng")
WORKER_COUNTS = (1, 2, 4)
#: The Venice-bound part: the account's limit, the files, the sandbox's latency per call.
RATE_PER_MINUTE = 30
LATENCY_MS = 300

LOCAL = """
[daemon]
rescan_seconds = 1
{executor}
[[folders]]
path = "inbox"
chain = "web"
quiet_seconds = 0.2
after = "delete"
on_duplicate = "reprocess"

[chains.web]
steps = [
  {{ op = "auto-orient" }},
  {{ op = "resize", width = 1024, height = 1024, mode = "fit" }},
  {{ op = "convert", format = "jpeg", quality = 85 }},
]
outputs = [{{ sink = "folder", path = "out", name = "{{stem}}.{{ext}}" }}]
"""

PAID = """
[daemon]
rescan_seconds = 1
[executor]
kind = "dramatiq"
redis_url = "{redis_url}"
heartbeat_seconds = 2
[venice]
requests_per_minute = {rate}
[[folders]]
path = "inbox"
chain = "cutout"
quiet_seconds = 0.2
after = "delete"
on_duplicate = "reprocess"
[chains.cutout]
steps = [{{ op = "venice.background-remove" }}]
outputs = [{{ sink = "folder", path = "out", name = "{{stem}}.{{ext}}" }}]
"""


def _executor(redis_url: str | None) -> str:
    if redis_url is None:
        return ""
    return f'[executor]\nkind = "dramatiq"\nredis_url = "{redis_url}"\nheartbeat_seconds = 2\n'


class _Workers:
    """``processes`` worker processes (one ``hotfolder worker --processes N``)."""

    def __init__(self, root: Path, env: dict[str, str], processes: int, threads: int) -> None:
        log = (root / "worker.log").open("ab")
        self.proc = subprocess.Popen(
            [str(HOTFOLDER), "--config", str(root / "hotfolder.toml"), "worker",
             "--processes", str(processes), "--threads", str(threads)],
            cwd=root, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.log = root / "worker.log"
        wait_for(lambda: self.log.read_text().count("takes jobs from") >= processes, 60,
                 "the workers to start")  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _drop_all(source: Path, inbox: Path) -> float:
    """Move every file into the inbox at once (a rename each); when the drop ended."""
    for path in sorted(source.iterdir()):
        os.rename(path, inbox / path.name)
    return time.monotonic()


class Contenders:
    def __init__(self, bench: Bench, photos: list[Path], count: int, redis: RedisServer) -> None:
        self.bench = bench
        self.photos = photos
        self.count = count
        self.redis = redis

    def run(self, workers: int | None) -> float:
        """Files per second from the drop to the last job done; ``workers`` None: the local
        executor."""
        root = self.bench.fresh("fleet-local" if workers is None else f"fleet-{workers}")
        self.redis.client().flushall()
        url = None if workers is None else self.redis.url
        (root / "hotfolder.toml").write_text(LOCAL.format(executor=_executor(url)))
        (root / "inbox").mkdir()
        staging = root / "staging"
        copies(self.photos, self.count, staging)
        env = hotfolder_env(root)
        pool = _Workers(root, env, workers, 1) if workers else None
        try:
            with DaemonProc(root, env) as daemon:
                daemon.start()
                started = time.monotonic()
                _drop_all(staging, root / "inbox")
                daemon.wait_states("every job done", 600, done=self.count)
                seconds = time.monotonic() - started
        finally:
            if pool is not None:
                pool.stop()
        shutil.rmtree(root / "out", ignore_errors=True)
        return self.count / seconds


def _paid(bench: Bench, redis: RedisServer, files: int) -> dict[str, float]:
    """Three workers, four jobs each at once, each allowed the whole rate, against a sandbox
    that allows the account that rate."""
    root = bench.fresh("fleet-paid")
    redis.client().flushall()
    (root / "hotfolder.toml").write_text(PAID.format(redis_url=redis.url, rate=RATE_PER_MINUTE))
    (root / "inbox").mkdir()
    copies([PHOTOS / "astronaut.png"], files, root / "staging")
    with sandbox(requests_per_minute=RATE_PER_MINUTE, latency_ms=LATENCY_MS) as handle:
        env = hotfolder_env(root, {"VENICE_API_KEY": "bench", "VENICE_BASE_URL": handle.base_url})
        pools = [_Workers(root, env, 1, 4) for _ in range(3)]
        try:
            with DaemonProc(root, env) as daemon:
                daemon.start()
                started = time.monotonic()
                _drop_all(root / "staging", root / "inbox")
                daemon.wait_states("every paid job done", 600, done=files)
                seconds = time.monotonic() - started
        finally:
            for pool in pools:
                pool.stop()
        stats = handle.stats()
    refused = sum(v.get("429", 0) for k, v in stats["requests"].items() if k.startswith("/image"))
    return {"seconds": seconds, "paid": stats["paid_total"], "429": refused}


def run(bench: Bench) -> Section:
    count = bench.size(120, 6)
    photos = [p for p in sorted(PHOTOS.iterdir()) if p.name not in ANIMATED]
    with RedisServer(bench.work / "redis") as redis:
        c = Contenders(bench, photos, count, redis)
        names = {None: "local executor (`hotfolder run`, `[daemon] concurrency` 4)"}
        names |= {n: f"watcher + {n} worker process{'es' * (n > 1)}" for n in WORKER_COUNTS}
        results = alternate(
            bench.reps, [(names[n], lambda n=n: c.run(n)) for n in names]
        )  # fmt: skip
        paid_files = bench.size(2 * RATE_PER_MINUTE - 15, 4)
        paid = _paid(bench, redis, paid_files)
    speed = {name: Spread.of(runs) for name, runs in results.items()}
    one = speed[names[1]].median
    table = Table(["executor", "files/s", "÷ 1 worker process", "÷ local executor"])
    local = speed[names[None]].median
    for n, name in names.items():
        table.rows.append([
            name,
            speed[name].fmt(2),
            "" if n is None else f"{speed[name].median / one:.2f}",
            f"{speed[name].median / local:.2f}",
        ])  # fmt: skip
    windows = math.ceil(paid_files / RATE_PER_MINUTE) - 1
    bound = windows * 61 + LATENCY_MS / 1000
    paid_table = Table(["figure", "value"])
    paid_table.rows += [
        ["files (one paid call each)", f"{paid_files}"],
        ["account limit (sandbox and every worker's config)", f"{RATE_PER_MINUTE}/min"],
        ["wall time, drop to last done", f"{paid['seconds']:.1f} s"],
        ["the limit's bound (full windows of 61 s, then one call)", f"{bound:.1f} s"],
        ["paid calls", f"{paid['paid']:.0f}"],
        ["429 answers", f"{paid['429']:.0f}"],
    ]
    two = speed[names[2]].median / one
    return Section(
        NUMBER,
        TITLE,
        setup=(
            f"(a) The {len(photos)} single-frame corpus photos copied to {count} files, moved "
            "into a watched folder at once; auto-orient, fit inside 1024x1024, JPEG quality 85. "
            "From the drop to the journal's last `done`. The local executor runs the chain in "
            "`hotfolder run`; the fleet rows run it on `hotfolder worker --processes N "
            f"--threads 1` beside the watcher, over `redis-server` on loopback, on this "
            f"{CORES}-core machine (the watcher, Redis and the workers share the cores). "
            f"(b) {paid_files} background removals against a sandbox allowing "
            f"{RATE_PER_MINUTE} image requests a minute with {LATENCY_MS} ms per call; three "
            "workers with four threads each, every one configured with the same "
            f"{RATE_PER_MINUTE}/min (each alone would send at that rate); once."
        ),
        tables=[table, paid_table],
        notes=[
            "Per added machine: a worker process does about "
            f"{one:.1f} files/s of this chain on one core here; on a machine of its own, N "
            f"processes on N cores would add about N x {one:.1f} files/s, until the watcher "
            "(claiming, hashing, journaling) or the shared storage is the limit. On this "
            f"{CORES}-core machine more processes than cores cannot scale.",
        ],
        goals=[
            Goal("2 worker processes faster than 1 (2 cores)", f"{two:.2f}x", two > 1.2),
            Goal(
                "the fleet keeps to the shared limit: no 429",
                f"{paid['429']:.0f} x 429",
                paid["429"] == 0,
            ),
        ],
        headline=(
            f"fleet: {two:.2f}x with 2 worker processes; {paid['429']:.0f} x 429 at the "
            "shared limit"
        ),
    )
