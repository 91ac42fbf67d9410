"""Benchmark 7: the dashboard. (a) Page and API latency over a journal of 100,000 jobs, served
by ``hotfolder web`` (the read-only viewer, the same app the daemon serves); (b) the daemon's
drop-to-start latency with the dashboard open and streaming, against the same daemon without
it."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

from hotfolder.daemon.journal import Journal, NewJob
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
    hotfolder_env,
    percentile,
    wait_for,
)

NUMBER, TITLE = 7, "Dashboard"
SAMPLE = PHOTOS / "hopper.jpg"
INTERVAL_S = 0.05

CONFIG = """
[[folders]]
path = "inbox"
chain = "small"
after = "delete"
on_duplicate = "reprocess"
quiet_seconds = 2

[chains.small]
steps = [{ op = "convert", format = "jpeg", quality = 85 }]
outputs = [{ sink = "folder", path = "out", name = "{stem}.{ext}" }]
"""

#: What is asked of the viewer: a name and a path.
ROUTES = (
    ("jobs page 1", "/jobs"),
    ("jobs page 1,000", "/jobs?page=1000"),
    ("jobs, state = failed", "/jobs?state=failed"),
    ("jobs, name search", "/jobs?q=photo-0999"),
    ("/api/jobs page 1", "/api/jobs"),
    ("/api/jobs page 1,500", "/api/jobs?page=1500"),
    ("/api/status", "/api/status"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill_journal(state: Path, folder: Path, rows: int) -> None:
    """``rows`` jobs: 90% done, 5% failed, 5% queued, as a long-running daemon leaves them."""
    state.mkdir(parents=True, exist_ok=True)
    journal = Journal(state / "journal.sqlite3")
    try:
        batch = 10_000
        for start in range(0, rows, batch):
            jobs = [
                NewJob(f"bench-{n:07d}", str(folder), f"photo-{n:07d}.jpg", "small")
                for n in range(start, min(rows, start + batch))
            ]
            done = [j for n, j in enumerate(jobs, start) if n % 20 not in (0, 1)]
            failed = [j for n, j in enumerate(jobs, start) if n % 20 == 0]
            queued = [j for n, j in enumerate(jobs, start) if n % 20 == 1]
            journal.add(done, state="done")
            journal.add(failed, state="failed")
            journal.add(queued, state="queued")
        while journal.index_names(batch):  # the names indexed, as the idle daemon leaves them
            pass
    finally:
        journal.close()


def page_latencies(bench: Bench, rows: int, requests: int) -> dict[str, list[float]]:
    root = bench.fresh("dashboard-pages")
    fill_journal(root / "state", root / "inbox", rows)
    port = free_port()
    log = (root / "web.log").open("wb")
    proc = subprocess.Popen(
        [str(HOTFOLDER), "web", "--state-dir", str(root / "state"),
         "--listen", f"127.0.0.1:{port}"],
        cwd=root, env=hotfolder_env(root), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:

            def up() -> bool:
                try:
                    return client.get("/api/status").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, 60, "the dashboard to answer")
            times: dict[str, list[float]] = {}
            for name, path in ROUTES:
                samples = []
                for _ in range(requests):
                    started = time.perf_counter()
                    response = client.get(path)
                    samples.append(time.perf_counter() - started)
                    response.raise_for_status()
                times[name] = samples
            return times
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


class Streaming:
    """A browser's live connection: reads ``/events`` until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                with httpx.stream("GET", self.url, timeout=None) as response:
                    for line in response.iter_lines():
                        if line.startswith("data:"):
                            self.events += 1
                        if self._stop.is_set():
                            return
            except httpx.HTTPError:
                time.sleep(0.2)

    def __enter__(self) -> Streaming:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def drop_latencies(bench: Bench, count: int, *, web: bool) -> list[float]:
    root = bench.fresh("dashboard-drop-web" if web else "dashboard-drop")
    (root / "inbox").mkdir()
    (root / "hotfolder.toml").write_text(CONFIG)
    port = free_port()
    args = ("--web", f"127.0.0.1:{port}") if web else ()
    data = SAMPLE.read_bytes()
    with DaemonProc(root, hotfolder_env(root), args).start() as daemon:
        stream = Streaming(f"http://127.0.0.1:{port}/events") if web else None
        if stream is not None:
            stream.__enter__()
            httpx.get(f"http://127.0.0.1:{port}/jobs", timeout=30).raise_for_status()
        try:
            closed = {}
            for i in range(count):
                name = f"drop-{i:04d}.jpg"
                with (root / "inbox" / name).open("wb") as f:
                    f.write(data)
                closed[name] = time.time()
                time.sleep(INTERVAL_S)
            sql = "SELECT name, started FROM jobs WHERE started IS NOT NULL"

            def all_started() -> list[tuple[object, ...]] | None:
                rows = daemon.query(sql)
                return rows if len(rows) >= count else None

            rows = wait_for(all_started, 120, "every job to start")
        finally:
            if stream is not None:
                stream.__exit__()
    return [float(str(started)) - closed[str(name)] for name, started in rows]


def run(bench: Bench) -> Section:
    rows = bench.size(100_000, 2_000)
    requests = bench.size(40, 3)
    count = bench.size(100, 10)
    pages = alternate(bench.reps, [("pages", lambda: page_latencies(bench, rows, requests))])
    page_table = Table(["request", "p50", "p99"])
    worst_p99 = 0.0
    for name, _ in ROUTES:
        p50 = Spread.of([percentile(r[name], 50) for r in pages["pages"]])
        p99 = Spread.of([percentile(r[name], 99) for r in pages["pages"]])
        worst_p99 = max(worst_p99, p99.median)
        page_table.rows.append([name, p50.fmt(1, "ms", 1000), p99.fmt(1, "ms", 1000)])
    drops = alternate(
        bench.reps,
        [
            ("hotfolder run", lambda: drop_latencies(bench, count, web=False)),
            (
                "hotfolder run --web, a page open and streaming",
                lambda: drop_latencies(bench, count, web=True),
            ),
        ],
    )
    drop_table = Table(["daemon", "drop-to-start p50", "p99"])
    medians = {}
    for name, results in drops.items():
        p50 = Spread.of([percentile(r, 50) for r in results])
        p99 = Spread.of([percentile(r, 99) for r in results])
        medians[name] = p50.median
        drop_table.rows.append([name, p50.fmt(0, "ms", 1000), p99.fmt(0, "ms", 1000)])
    plain, served = (
        medians["hotfolder run"],
        medians["hotfolder run --web, a page open and streaming"],
    )
    return Section(
        NUMBER,
        TITLE,
        setup=(
            f"(a) A journal of {rows:,} jobs (90% done, 5% failed, 5% queued) served by "
            f"`hotfolder web` on loopback; each request {requests} times in a row from one "
            "client; p50/p99 per run, the median over runs. (b) The drop-to-start latency of "
            f"benchmark 2 ({count} copies of `hopper.jpg`, {INTERVAL_S * 1000:.0f} ms apart, "
            "native observer) for a daemon without the dashboard and one with `--web`, a jobs "
            "page fetched and a client reading `/events` all along."
        ),
        tables=[page_table, drop_table],
        goals=[
            Goal(
                "every page and API request: p99 < 100 ms",
                f"{worst_p99 * 1000:.0f} ms",
                worst_p99 < 0.1,
            ),
            Goal(
                "the dashboard adds < 10 ms to drop-to-start p50",
                f"{(served - plain) * 1000:+.0f} ms",
                served - plain < 0.01,
            ),
        ],
    )
