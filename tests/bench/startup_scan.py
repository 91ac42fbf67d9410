"""Benchmark 6: start-up scan. 10,000 files are in the watched folder before the daemon starts;
the time from launching ``hotfolder run`` until every one is queued in the journal."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.bench.common import (
    PHOTOS,
    Bench,
    DaemonProc,
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

    def _root(self, files: int) -> Path:
        root = self.bench.fresh("scan")
        (root / "hotfolder.toml").write_text(CONFIG)
        copies([PHOTOS / "hopper.jpg"], files, root / "inbox")
        return root

    def full(self) -> dict[str, float]:
        root = self._root(self.count)
        with DaemonProc(root, hotfolder_env(root)).start(wait_ready=False) as daemon:

            def total() -> int:
                daemon.alive()
                return sum(daemon.states().values())

            wait_for(lambda: total() >= 1, 120, "the first claim")
            first = time.time() - daemon.started
            wait_for(lambda: total() >= self.count, 300, "every file to be queued")
            return {"all": time.time() - daemon.started, "first": first}

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


def run(bench: Bench) -> Section:
    count = bench.size(10_000, 200)
    runs = Runs(bench, count)
    names = {
        "full": f"hotfolder run, {count:,} files present",
        "empty": "hotfolder run, empty folder (start-up alone)",
        "floor": "floor: `os.scandir` + `lstat` of each file",
    }
    results = alternate(
        bench.reps,
        [(names["full"], runs.full), (names["empty"], runs.empty), (names["floor"], runs.floor)],
    )
    times = {key: Spread.of([r["all"] for r in results[name]]) for key, name in names.items()}
    first = Spread.of([r["first"] for r in results[names["full"]]])
    table = Table(["run", "time until all queued", "first file queued", "files/s"])
    for key, name in names.items():
        table.rows.append([
            name,
            times[key].fmt(2, "s"),
            first.fmt(2, "s") if key == "full" else "",
            f"{count / times[key].median:,.0f}" if key != "empty" else "",
        ])  # fmt: skip
    rest = times["full"].median - first.median
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
        notes=[
            "Files found by a scan have no close-write event, so each is taken once unchanged "
            f"for the quiet period ({QUIET_S:g} s) after it was first looked at, however old it "
            f"is: the first file is queued after start-up ({times['empty'].median:.1f} s) plus "
            f"that wait; the rest are claimed (each renamed into its job folder and journaled, "
            f"at most 200 per 50 ms tick) over the next {rest:.1f} s, while the first jobs "
            "already run.",
        ],
        headline=f"{count:,} files present at start all queued in {times['full'].median:.1f} s",
    )
