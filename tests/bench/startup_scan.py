"""Benchmark 6: start-up scan. 10,000 files are in the watched folder before the daemon starts;
the time from launching ``hotfolder run`` until every one is queued in the journal.

Files that sat in the folder while the daemon was down are older than the quiet period (here
their mtime is set an hour back); a second run has them copied in just before the start, so
that they are still within it."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from tests.bench.common import (
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
    wait_for,
)

NUMBER, TITLE = 6, "Start-up scan"
QUIET_S = 2.0
#: How old the files of the main run are: they were there before the daemon stopped.
AGE_S = 3600.0

CONFIG = f"""
[[folders]]
path = "inbox"
chain = "small"
after = "delete"
on_duplicate = "reprocess"
quiet_seconds = {QUIET_S}

[chains.small]
steps = [{{ op = "convert", format = "jpeg", quality = 85 }}]
outputs = [{{ sink = "folder", path = "out", name = "{{stem}}.{{ext}}" }}]
"""


class Runs:
    def __init__(self, bench: Bench, count: int) -> None:
        self.bench = bench
        self.count = count

    def _root(self, files: int, *, aged: bool = False) -> Path:
        root = self.bench.fresh("scan")
        (root / "hotfolder.toml").write_text(CONFIG)
        copies([PHOTOS / "hopper.jpg"], files, root / "inbox")
        if aged:
            then = time.time() - AGE_S
            for path in (root / "inbox").iterdir():
                os.utime(path, (then, then))
            # Files that sat there for an hour were written to disk long ago: the daemon does
            # not start while the kernel writes back the 10,000 just made.
            os.sync()
        return root

    def full(self, *, aged: bool = True) -> dict[str, float]:
        root = self._root(self.count, aged=aged)
        with DaemonProc(root, hotfolder_env(root)).start(wait_ready=False) as daemon:

            def total() -> int:
                daemon.alive()
                return sum(daemon.states().values())

            wait_for(lambda: total() >= 1, 120, "the first claim")
            first = time.time() - daemon.started
            wait_for(lambda: total() >= self.count, 300, "every file to be queued")
            done = time.time() - daemon.started
            (created,) = daemon.query("SELECT MIN(created) FROM jobs")[0]
            return {
                "all": done,
                "first": first,
                "after_watching": float(str(created)) - _watching(daemon),
            }

    def empty(self) -> dict[str, float]:
        root = self._root(0)
        with DaemonProc(root, hotfolder_env(root)).start() as daemon:
            return {"all": time.time() - daemon.started}

    def floor(self) -> dict[str, float]:
        """What listing the folder and looking at each file costs, in this process."""
        root = self._root(self.count)
        started = time.perf_counter()
        with os.scandir(root / "inbox") as entries:
            for entry in entries:
                os.lstat(entry.path)
        return {"all": time.perf_counter() - started}


def _watching(daemon: DaemonProc) -> float:
    """When (epoch seconds) the daemon logged that it watches the folder."""
    line = next((ln for ln in daemon.log().splitlines() if " watching " in ln), None)
    assert line is not None, f"no 'watching' line in {daemon.log_path}"
    return datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def run(bench: Bench) -> Section:
    count = bench.size(10_000, 200)
    runs = Runs(bench, count)
    names = {
        "full": f"hotfolder run, {count:,} files present (an hour old)",
        "fresh": f"hotfolder run, {count:,} files copied in just before the start",
        "empty": "hotfolder run, empty folder (start-up alone)",
        "floor": "floor: `os.scandir` + `lstat` of each file",
    }
    results = alternate(
        bench.reps,
        [
            (names["full"], runs.full),
            (names["fresh"], lambda: runs.full(aged=False)),
            (names["empty"], runs.empty),
            (names["floor"], runs.floor),
        ],
    )
    times = {key: Spread.of([r["all"] for r in results[name]]) for key, name in names.items()}
    firsts = {
        key: Spread.of([r["first"] for r in results[names[key]]]) for key in ("full", "fresh")
    }
    first = firsts["full"]
    table = Table(["run", "time until all queued", "first file queued", "files/s"])
    for key, name in names.items():
        table.rows.append([
            name,
            times[key].fmt(2, "s"),
            firsts[key].fmt(2, "s") if key in firsts else "",
            f"{count / times[key].median:,.0f}" if key != "empty" else "",
        ])  # fmt: skip
    rest = times["full"].median - first.median
    after_start = Spread.of([r["after_watching"] for r in results[names["full"]]]).median
    return Section(
        NUMBER,
        TITLE,
        setup=(
            f"{count:,} copies of `hopper.jpg` in the watched folder before `hotfolder run` "
            f"starts (`quiet_seconds = {QUIET_S:g}`, the default; a one-step local chain, 4 jobs "
            "at once); timed from launching the process until the journal holds a row for "
            'every file. The empty-folder run times launch to "watching"; the floor is '
            "listing the folder and `lstat`-ing each file in the benchmark's own process. No "
            "baseline: `watchmedo` only acts on events and never picks up files that were "
            "there before it started."
        ),
        tables=[table],
        goals=[
            Goal(
                f"{count:,} files present at start: all queued within 2 s of launch",
                f"{times['full'].median:.2f} s",
                times["full"].median <= 2.0,
            ),
            Goal(
                'the first queued within 0.5 s of "watching" (the journal\'s first `created` '
                "against the log line's time)",
                f"{after_start:.2f} s",
                after_start <= 0.5,
            ),
        ],
        notes=[
            "Files found by a scan have no close-write event. One whose mtime is older than the "
            f"quiet period ({QUIET_S:g} s) and that no program holds open for writing (a read "
            "lease is granted) is taken at once; a newer one is taken once unchanged for the "
            "quiet period after it was first looked at (the second run). In the first run the "
            f"first file is queued {after_start:.2f} s after the daemon logs that it watches "
            f"(start-up alone: {times['empty'].median:.2f} s); the rest are claimed (each "
            "renamed into `processing/`, up to 2,000 claims journaled in one transaction) "
            "over the next "
            f"{rest:.1f} s, while the first jobs already run.",
            "The first run's files are older than ten quiet periods, so a helper process "
            "(`daemon/_claim_helper.py`) claims them: the daemon sends it batches of 500 names "
            "while it still lists the folder; the helper looks at each (regular, one link, not "
            "empty, old enough, a read lease granted, no prompt file), renames it and answers "
            "its `lstat`, while the daemon journals the batch before. The second run's files "
            "are too young for it, and take the usual path.",
            "A claim is one rename, into `.hotfolder/processing/` itself: no folder is made "
            "per job (a `mkdir` cost this machine's disk 115-350 µs of kernel time, a rename "
            "15-25 µs). While it works through the backlog the watch does not ask for opens "
            "and closes without writing, which its own look at each file makes. The name "
            "index of the dashboard's "
            "search catches up after the burst, and a job's start and its duplicate key are "
            "committed without waiting for the disk (its end still is). The files of the first "
            "run are written to disk (`sync`) before the daemon starts, as files an hour old "
            "are; the second run's are not.",
        ],
        headline=f"{count:,} files present at start all queued in {times['full'].median:.1f} s",
    )
