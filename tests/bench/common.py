"""What every benchmark shares: sizes, alternation, statistics, the report's pieces, and
driving ``hotfolder``, the sandbox and the baselines as processes."""

from __future__ import annotations

import math
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from PIL import Image

from hotfolder_sandbox import SandboxConfig, SandboxHandle, start_sandbox
from tests.helpers.cli import HOTFOLDER
from tests.helpers.corpus import PHOTOS
from tests.helpers.daemon import base_env, wait_for

__all__ = [
    "HOTFOLDER",
    "PHOTOS",
    "REPO",
    "STOPS",
    "Bench",
    "Benchmark",
    "DaemonProc",
    "Goal",
    "Section",
    "Spread",
    "Table",
    "Timed",
    "Watchmedo",
    "alternate",
    "copies",
    "hotfolder_env",
    "noise_png",
    "percentile",
    "run_timed",
    "sandbox",
    "venice_photos",
    "wait_for",
]

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

#: Corpus photos Venice takes as they are (JPEG/PNG, 65,536 to 33,177,600 pixels, one frame),
#: so that every contender of the Venice benchmarks sends the same bytes and none is refused.
VENICE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "exif-72dpi-int.jpg",
    "flower.jpg",
    "flower2.jpg",
    "hubble_deep_field.jpg",
    "logo.png",
    "rocket.jpg",
    "xmp_test.jpg",
)


def venice_photos() -> list[Path]:
    return [PHOTOS / name for name in VENICE_PHOTOS]


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Bench:
    """One benchmark's run: quick or full, how many repetitions, and a scratch folder."""

    quick: bool
    reps: int
    work: Path

    def fresh(self, name: str) -> Path:
        """An empty folder ``work/name`` (emptied if it was used before)."""
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def size(self, full: T, quick: T) -> T:
        return quick if self.quick else full


class Benchmark(Protocol):
    """A benchmark module: its number and title in the report, and ``run``."""

    NUMBER: int
    TITLE: str

    def run(self, bench: Bench) -> Section: ...


def alternate(reps: int, contenders: Sequence[tuple[str, Callable[[], T]]]) -> dict[str, list[T]]:
    """Run every contender once per repetition, in turn (A B C A B C ...)."""
    results: dict[str, list[T]] = {name: [] for name, _ in contenders}
    for rep in range(reps):
        for name, run in contenders:
            started = time.monotonic()
            results[name].append(run())
            print(f"    [{rep + 1}/{reps}] {name}: {time.monotonic() - started:.1f}s", flush=True)
    return results


# --- statistics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Repeated measurements of one figure: the median and the spread (min to max)."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    def fmt(self, digits: int = 2, unit: str = "", scale: float = 1.0) -> str:
        """``12.3 s (11.9-12.8)``; a single value (or no spread) shows alone."""

        def num(value: float) -> str:
            return f"{value * scale:,.{digits}f}"

        text = num(self.median) + (f" {unit}" if unit else "")
        if len(self.values) > 1 and num(self.lo) != num(self.hi):
            text += f" ({num(self.lo)}-{num(self.hi)})"
        return text


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


# --- the report ------------------------------------------------------------------------------


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Goal:
    """One of the issue's goals, the figure it is judged on, and whether it is met."""

    what: str
    figure: str
    met: bool

    @property
    def verdict(self) -> str:
        return "met" if self.met else "**missed**"


@dataclass
class Section:
    """What one benchmark reports."""

    number: int
    title: str
    setup: str
    tables: list[Table] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    headline: str = ""
    seconds: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    error: str = ""


# --- processes -------------------------------------------------------------------------------


def hotfolder_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a ``hotfolder`` process working under ``root``."""
    env = base_env(root, extra)
    env["HOTFOLDER_CACHE_DIR"] = str(root / ".cache")
    return env


@dataclass(frozen=True)
class Timed:
    """A finished command: wall seconds, CPU seconds (it and its children), its output."""

    wall: float
    cpu: float
    output: str


def run_timed(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: str = "",
    timeout: float = 600,
) -> Timed:
    """Run ``cmd`` to completion and time it; a non-zero exit raises, with its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        list(cmd), cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        msg = f"{cmd[0]} exited with {proc.returncode}:\n{output[-3000:]}"
        raise RuntimeError(msg)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, output)


def copies(sources: Sequence[Path], count: int, dest: Path) -> None:
    """``count`` copies of ``sources`` (cycled) in ``dest``, each under its own name."""
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        source = sources[i % len(sources)]
        shutil.copyfile(source, dest / f"{source.stem}-{i:05d}{source.suffix}")


def noise_png(path: Path, size: int) -> Path:
    """An RGB PNG of random pixels of about ``size`` bytes (noise does not compress)."""
    side = math.isqrt(size // 3)
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(
        path, "PNG", compress_level=1
    )
    return path


@contextmanager
def sandbox(**config: object) -> Iterator[SandboxHandle]:
    """A fresh Venice sandbox (clean counters and rate windows) for one contender's run."""
    handle = start_sandbox(SandboxConfig.model_validate(config))
    try:
        yield handle
    finally:
        handle.stop()


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in bytes (``VmHWM`` is the peak RSS, ``VmRSS`` now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    msg = f"no {key} in /proc/{pid}/status"
    raise RuntimeError(msg)


def inotify_ready(pid: int) -> bool:
    """Whether process ``pid`` has an inotify watch in place (its observer is running)."""
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    try:
        return any("inotify wd:" in p.read_text() for p in fdinfo.iterdir())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


@dataclass
class StopTally:
    """How many daemons were stopped with SIGTERM, and how many had to be killed instead.

    A stop waits ``timeout_s`` for the daemon to exit, then kills it: benchmark jobs take well
    under a second, so a daemon still running by then did not act on the signal.
    """

    timeout_s: float = 20.0
    stops: int = 0
    killed: int = 0
    #: Killed daemons whose log has Python's "Exception ignored when trying to write to the
    #: signal wakeup fd": asyncio's self-pipe was full, so the SIGTERM never reached the loop.
    lost: int = 0


#: Over the whole run; the runner reports each benchmark's share.
STOPS = StopTally()


class DaemonProc:
    """``hotfolder run`` over ``root/hotfolder.toml`` with its state in ``root/state``, logging
    at INFO (as in production) to ``root/daemon.log``."""

    def __init__(self, root: Path, env: dict[str, str], args: Sequence[str] = ()) -> None:
        self.root = root
        self.env = env
        self.args = tuple(args)
        self.log_path = root / "daemon.log"
        self.journal = root / "state" / "journal.sqlite3"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, *, wait_ready: bool = True) -> DaemonProc:
        with self.log_path.open("ab") as log:
            self.started = time.time()
            self.proc = subprocess.Popen(
                [str(HOTFOLDER), "--config", str(self.root / "hotfolder.toml"), "run",
                 "--state-dir", str(self.root / "state"), *self.args],
                cwd=self.root, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        if wait_ready:
            wait_for(lambda: self.alive() and "watching" in self.log(), 60, "the daemon to watch")
        return self

    def alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            msg = f"the daemon exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            raise RuntimeError(msg)
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Read the journal (read-only, as ``hotfolder status`` does); [] before it exists."""
        if not self.journal.exists():
            return []
        db = sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    def states(self) -> Counter[str]:
        rows = self.query("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        return Counter({str(state): int(str(n)) for state, n in rows})

    def wait_states(self, what: str, timeout: float, **at_least: int) -> Counter[str]:
        """Poll the journal until each state has at least the count given."""

        def check() -> Counter[str] | None:
            self.alive()
            counts = self.states()
            if counts["failed"] and "failed" not in at_least:
                error = self.query("SELECT name, error FROM jobs WHERE state = 'failed' LIMIT 1")
                msg = f"a job failed while waiting for {what}: {error}"
                raise RuntimeError(msg)
            return counts if all(counts[s] >= n for s, n in at_least.items()) else None

        try:
            return wait_for(check, timeout, what)
        except AssertionError as exc:
            msg = f"{exc}; journal: {dict(self.states())}\n{self.log()[-3000:]}"
            raise RuntimeError(msg) from None

    def peak_rss(self) -> int:
        return proc_status(self.pid, "VmHWM")

    def rss(self) -> int:
        return proc_status(self.pid, "VmRSS")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        STOPS.stops += 1
        try:
            self.proc.wait(timeout=STOPS.timeout_s)
        except subprocess.TimeoutExpired:
            STOPS.killed += 1
            STOPS.lost += "signal wakeup fd" in self.log()
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> DaemonProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Watchmedo:
    """``watchmedo shell-command`` on one folder, the drop-folder tool most Python users reach
    for; started and stopped like the daemon."""

    def __init__(self, folder: Path, command: str, *, polling: float | None = None) -> None:
        args = [str(HOTFOLDER.parent / "watchmedo"), "shell-command", "--ignore-directories",
                "--shell-executable", "/bin/bash", "--command", command]  # fmt: skip
        if polling is not None:
            args += ["--debug-force-polling", "--interval", str(polling)]
        self.args = [*args, str(folder)]
        self.polling = polling is not None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Watchmedo:
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        pid = self.proc.pid
        if self.polling:
            # The polling emitter snapshots the folder as its thread starts: once the
            # interpreter is up and has imported watchdog, which a fixed pause covers.
            time.sleep(1.0)
        else:
            wait_for(lambda: inotify_ready(pid), 30, "watchmedo to watch")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self) -> Watchmedo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
