"""Benchmark 2: drop-to-start latency. Files are written into a watched folder one at a time;
for each, the time from the writer closing it to its job starting.

The writer is this process (``time.time()`` just after ``close()``); hotfolder's start is the
journal's ``started`` (also ``time.time()``, set as the job is dispatched) and its claim the
journal's ``created``. The baseline is ``watchmedo shell-command`` whose command, in bash,
records ``$EPOCHREALTIME`` as it starts: on the ``closed`` event with the native observer, on
the first event with the polling one (which sees no close).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.bench.common import (
    PHOTOS,
    Bench,
    DaemonProc,
    Goal,
    Section,
    Spread,
    Table,
    Watchmedo,
    alternate,
    hotfolder_env,
    percentile,
    wait_for,
)

NUMBER, TITLE = 2, "Drop-to-start latency"
SAMPLE = PHOTOS / "hopper.jpg"
#: Pause between two files: each is alone in flight, as with a user or scanner dropping them.
INTERVAL_S = 0.05

CONFIG = """
[[folders]]
path = "inbox"
chain = "small"
after = "delete"
on_duplicate = "reprocess"
observer = "{observer}"
quiet_seconds = {quiet}
poll_seconds = {poll}

[chains.small]
steps = [{{ op = "convert", format = "jpeg", quality = 85 }}]
outputs = [{{ sink = "folder", path = "out", name = "{{stem}}.{{ext}}" }}]
"""

MARK = (
    'n="${{watch_src_path}}"; m="{marks}/${{n##*/}}"; '
    '[ -e "$m" ] || printf %s "$EPOCHREALTIME" > "$m"'
)
ON_CLOSE = '[ "${watch_event_type}" = closed ] || exit 0; '

Latencies = dict[str, list[float]]  # "start" (and "claim") -> seconds per file


class Contenders:
    def __init__(self, bench: Bench, count: int, quiet: float, poll: float) -> None:
        self.bench = bench
        self.count = count
        self.quiet = quiet
        self.poll = poll
        self.data = SAMPLE.read_bytes()

    def _write_all(self, inbox: Path) -> dict[str, float]:
        closed = {}
        for i in range(self.count):
            name = f"drop-{i:04d}.jpg"
            with (inbox / name).open("wb") as f:
                f.write(self.data)
            closed[name] = time.time()
            time.sleep(INTERVAL_S)
        return closed

    def hotfolder(self, observer: str) -> Latencies:
        root = self.bench.fresh(f"latency-hotfolder-{observer}")
        (root / "inbox").mkdir()
        config = CONFIG.format(observer=observer, quiet=self.quiet, poll=self.poll)
        (root / "hotfolder.toml").write_text(config)
        with DaemonProc(root, hotfolder_env(root)).start() as daemon:
            closed = self._write_all(root / "inbox")
            sql = "SELECT name, created, started FROM jobs WHERE started IS NOT NULL"

            def all_started() -> list[tuple[object, ...]] | None:
                rows = daemon.query(sql)
                return rows if len(rows) >= self.count else None

            rows = wait_for(all_started, 60 + self.poll + self.quiet, "every job to start")
        return {
            "start": [float(str(started)) - closed[str(name)] for name, _, started in rows],
            "claim": [float(str(created)) - closed[str(name)] for name, created, _ in rows],
        }

    def watchmedo(self, observer: str) -> Latencies:
        root = self.bench.fresh(f"latency-watchmedo-{observer}")
        inbox, marks = root / "inbox", root / "marks"
        inbox.mkdir()
        marks.mkdir()
        command = MARK.format(marks=marks)
        if observer == "native":
            command = ON_CLOSE + command
        with Watchmedo(inbox, command, polling=self.poll if observer == "polling" else None):
            closed = self._write_all(inbox)
            wait_for(
                lambda: len(list(marks.iterdir())) >= self.count,
                60 + self.poll,
                "watchmedo to run for every file",
            )
            time.sleep(0.1)  # the last mark's printf may still be writing
        return {"start": [float(p.read_text()) - closed[p.name] for p in marks.iterdir()]}


def run(bench: Bench) -> Section:
    count = bench.size(200, 10)
    quiet = bench.size(2.0, 0.5)
    poll = bench.size(5.0, 0.5)
    c = Contenders(bench, count, quiet, poll)
    rows = [
        ("hotfolder run, native", lambda: c.hotfolder("native")),
        ("watchmedo, native (on close)", lambda: c.watchmedo("native")),
        ("hotfolder run, polling", lambda: c.hotfolder("polling")),
        ("watchmedo, polling (on first event)", lambda: c.watchmedo("polling")),
    ]
    #: Each hotfolder row is compared with watchmedo on the same observer.
    baseline = {rows[0][0]: rows[1][0], rows[2][0]: rows[3][0]}
    results = alternate(bench.reps, rows)

    def per_run(name: str, q: float, key: str = "start") -> Spread:
        return Spread.of([percentile(r[key], q) for r in results[name]])

    table = Table(["contender", "p50", "p99", "max", "hotfolder claim p50", "p50 ÷ watchmedo"])
    for name, _ in rows:
        ours = name in baseline
        table.rows.append([
            name,
            per_run(name, 50).fmt(0, "ms", 1000),
            per_run(name, 99).fmt(0, "ms", 1000),
            per_run(name, 100).fmt(0, "ms", 1000),
            per_run(name, 50, "claim").fmt(0, "ms", 1000) if ours else "",
            f"{per_run(name, 50).median / per_run(baseline[name], 50).median:.2f}" if ours else "",
        ])  # fmt: skip
    native = per_run("hotfolder run, native", 50).median
    return Section(
        NUMBER,
        TITLE,
        setup=(
            f"{count} copies of `hopper.jpg` (6 KB) written into the watched folder one at a "
            f"time, {INTERVAL_S * 1000:.0f} ms apart; time from the writer's `close()` to the job "
            "starting (hotfolder: the journal's `started`; watchmedo: its command starting). "
            f"hotfolder: `quiet_seconds = {quiet:g}`, `poll_seconds = {poll:g}` (the "
            "defaults in a full run), a one-step local chain (`convert` to JPEG). watchmedo: "
            f"the same observers (`--debug-force-polling --interval {poll:g}` for polling). "
            "p50/p99/max are per run; the figure is their median over the runs (spread in "
            "brackets). The claim column is when the file was renamed into the job's folder "
            "and queued."
        ),
        tables=[table],
        goals=[
            Goal(
                f"native close-write: p50 < 100 ms beyond the quiet period ({quiet:g} s)",
                f"{native * 1000:.0f} ms",
                native < quiet + 0.1,
            ),
            Goal(
                "native close-write: p50 ≤ 10 ms (no quiet period applies)",
                f"{native * 1000:.0f} ms",
                native <= 0.01,
            ),
        ],
        notes=[
            "On close-write (and on a rename into the folder) hotfolder takes the file at once "
            "(the event wakes its loop; it does not wait for the next 50 ms tick); "
            "the quiet period only applies when no such event comes, as with polling, where "
            "a file is taken once it was unchanged for the quiet period after a poll saw it.",
            "watchmedo's polling row starts the command on the first event, before anything "
            "says the file is complete; it does no readiness check at all.",
        ],
        headline=f"drop-to-start p50 {native * 1000:.0f} ms with native close-write",
    )
