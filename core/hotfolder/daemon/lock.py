"""One daemon per state dir: ``<state dir>/daemon.lock``, held with ``flock`` while the daemon
runs and holding its pid, so that ``hotfolder status`` can tell whether one runs."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from hotfolder.errors import HotfolderError

LOCK_NAME = "daemon.lock"


class InstanceLock:
    """``<state dir>/daemon.lock``, held with ``flock`` while the daemon runs; holds its pid."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            handle.close()
            where = self.path.parent
            msg = f"another hotfolder daemon (pid {pid}) is running with the state dir {where}"
            raise HotfolderError(
                msg, hint=f"stop it first (kill -TERM {pid}), or give this one its own --state-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.close()
            self._file = None


def running_pid(state_dir: Path) -> int | None:
    """The pid of the daemon holding the state dir's lock, or None when none runs."""
    try:
        text = (state_dir / LOCK_NAME).read_text().strip()
        pid = int(text)
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid
