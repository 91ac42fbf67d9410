"""A real ``redis-server`` on loopback (random port, no persistence) and real ``hotfolder
worker`` processes, for the fleet's tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.helpers.cli import HOTFOLDER
from tests.helpers.daemon import base_env, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on ``127.0.0.1:port`` with no persistence: stopping it loses every
    key, as a restart of a Redis without persistence does."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (make test installs it)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        client = self.client()
        wait_for(lambda: _pings(client), 15, "redis-server to answer")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class Worker:
    """One ``hotfolder worker`` process over ``root``'s config, logging to ``root/<name>.log``."""

    def __init__(
        self,
        root: Path,
        name: str,
        *,
        env: dict[str, str],
        args: tuple[str, ...] = (),
        config: Path | None = None,
    ) -> None:
        self.root = root
        self.config = config or root / "hotfolder.toml"
        self.name = name
        self.env = base_env(root, env)
        self.args = args
        self.log_path = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, ready: str = "takes jobs from", count: int = 1) -> Worker:
        """Start it and wait until its log says ``ready`` ``count`` times."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(HOTFOLDER), "--config", str(self.config), "--log-level",
             "DEBUG", "worker", *self.args],
            cwd=self.root, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        wait_for(lambda: self._alive() and self.log().count(ready) >= count, 30,
                 f"worker {self.name} to start")  # fmt: skip
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            msg = f"worker {self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
            raise AssertionError(msg)
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL to the worker's whole process group."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def settle(seconds: float) -> None:
    """Let background work go on for ``seconds`` (only where a test must let time pass)."""
    time.sleep(seconds)
