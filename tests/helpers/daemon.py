"""Driving the real ``hotfolder run`` as a subprocess: start it with a temp state dir and config,
wait for outcomes by polling the journal and the disk (with a deadline), stop it with SIGTERM,
or kill it with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from hotfolder.daemon import claim
from tests.helpers.cli import HOTFOLDER

BIN = HOTFOLDER
FAST_DAEMON = """
[daemon]
rescan_seconds = 1
grace_seconds = 10
retry_backoff_seconds = 0.2
"""


def convert_to_png_config(**folder: str | float) -> str:
    """A fast daemon config with one folder, ``inbox``, whose chain converts to PNG into
    ``out/{stem}.png``; ``folder`` adds keys to the ``[[folders]]`` entry."""
    extra = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in folder.items())
    return (
        FAST_DAEMON
        + f"""
[[folders]]
path = "inbox"
chain = "web"
quiet_seconds = 0.2
{extra}
[chains.web]
steps = [{{ op = "convert", format = "png" }}]
outputs = [{{ sink = "folder", path = "out", name = "{{stem}}.{{ext}}" }}]
"""
    )


def cutout_config(
    steps: str = '{ op = "venice.background-remove" }',
    out: str = "out",
    daemon: str = FAST_DAEMON,
    max_connections: int = 4,
) -> str:
    """A fast daemon config with one folder, ``inbox``, whose chain ``cutout`` runs ``steps``
    (TOML inline tables) against Venice (a sandbox, via ``$VENICE_BASE_URL``) into ``out``."""
    return (
        daemon
        + f"""
[venice]
requests_per_minute = 600
max_connections = {max_connections}

[[folders]]
path = "inbox"
chain = "cutout"
quiet_seconds = 0.2

[chains.cutout]
steps = [{steps}]
outputs = [{{ sink = "folder", path = "{out}" }}]
"""
    )


def noise_photos(
    folder: Path,
    count: int,
    *,
    prefix: str = "photo",
    size: tuple[int, int] = (320, 240),
    seed: int = 20,
) -> list[Path]:
    """``count`` different noise PNGs (``<prefix><n>.png``) in ``folder``, made outside the
    watched folder so that tests copy them in with a real tool."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"{prefix}{n}.png"
        Image.effect_noise(size, seed + 5 * n).convert("RGB").save(path)
        paths.append(path)
    return paths


def cp(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` with ``cp``, as a user drops a file into a watched folder.

    Not ``shutil.copy``: it sets the mode by path after closing the file, and the daemon takes a
    closed file at once, so that ``chmod`` can find it already claimed (a CI run failed so)."""
    subprocess.run(["cp", str(source), str(target)], check=True)


def base_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTFOLDER_", "VENICE_"))}
    env.update(
        {"XDG_CONFIG_HOME": str(root / ".xdg-config"), "XDG_CACHE_HOME": str(root / ".xdg-cache")}
    )
    env.update(extra or {})
    return env


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:g}s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(0.05)


class Daemon:
    """One daemon process over ``root`` (config ``root/hotfolder.toml``, state ``root/state``)."""

    def __init__(
        self, root: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.env = base_env(root, env)
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "daemon.log"
        self.starts = 0

    @property
    def config(self) -> Path:
        return self.root / "hotfolder.toml"

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run another ``hotfolder`` command against the same config and state dir."""
        return subprocess.run(
            [str(BIN), "--config", str(self.config), *args, "--state-dir", str(self.state_dir)],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self, *, wait_ready: bool = True) -> Daemon:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n--- start {self.starts} ---\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [str(BIN), "--config", str(self.config), "--log-level", "DEBUG", "run",
             "--state-dir", str(self.state_dir), *self.args],
            cwd=self.root, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        if wait_ready:
            marker = f"--- start {self.starts} ---"
            wait_for(
                lambda: self._running_check() and "watching" in self.log().split(marker)[-1],
                30, "the daemon to start watching",
            )  # fmt: skip
        return self

    def _running_check(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            msg = f"the daemon exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            raise AssertionError(msg)
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    # --- what the journal says -------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        path = self.state_dir / "journal.sqlite3"
        if not path.exists():
            return []
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in db.execute("SELECT * FROM jobs ORDER BY seq")]
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()
        for row in rows:
            row["error"] = json.loads(row["error"]) if row["error"] else None
            row["outputs"] = json.loads(row["outputs"]) if row["outputs"] else []
        return rows

    def states(self) -> Counter[str]:
        return Counter(r["state"] for r in self.rows())

    def wait_states(self, timeout: float = 60, **expected: int) -> list[dict[str, Any]]:
        """Wait until the journal's counts by state are exactly ``expected`` (others 0) and
        every finished job is settled on disk.

        The journal is written ahead: a job is marked done, failed or skipped first, and its
        original is moved out of ``processing/`` (to the archive or failed folder) and its
        checkpoints removed after (a failed job's are kept), so a test that looks at the files
        must wait for that second step too.
        """

        def settled(row: dict[str, Any]) -> bool:
            if row["state"] not in ("done", "failed", "skipped"):
                return True
            root = Path(row["folder"])
            if claim.input_path(root, row["id"], row["name"]).exists():
                return False
            return row["state"] == "failed" or not claim.job_dir(root, row["id"]).exists()

        def check() -> list[dict[str, Any]] | None:
            self._running_check()
            rows = self.rows()
            counts = Counter(r["state"] for r in rows)
            if dict(counts) != {k: v for k, v in expected.items() if v}:
                return None
            return rows if all(settled(r) for r in rows) else None

        try:
            return wait_for(check, timeout, f"journal states {expected}")
        except AssertionError as exc:
            msg = f"{exc}; now {dict(self.states())}\n{self.log()[-4000:]}"
            raise AssertionError(msg) from None

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def files_under(folder: Path, pattern: str = "*") -> list[Path]:
    """Regular files (and links) below ``folder`` matching ``pattern``, sorted."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(pattern) if p.is_file() or p.is_symlink())
