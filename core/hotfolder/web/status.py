"""The status the Overview and ``GET /api/status`` show (:func:`hotfolder.daemon.status.collect`,
the same data as ``hotfolder status --json``), computed again only when something it reads
changed.

What it reads: the journal (one read-only connection asks ``PRAGMA data_version``, which
changes whenever another connection commits), the daemon's pid (its lock file), the config
(replaced on a reload) and today's date (the day's spend starts at midnight). While none of
these changed, the last answer is given again; a long journal is not counted again for every
page load.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Any

from hotfolder.config import Config
from hotfolder.daemon.journal import JOURNAL_NAME
from hotfolder.daemon.lock import running_pid


class StatusCache:
    """The last status and what it was computed from. Thread-safe (one caller at a time)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._value: dict[str, Any] | None = None
        self._config: Config | None = None

    def get(self, config: Config | None) -> dict[str, Any]:
        """The status now; call from a worker thread."""
        from hotfolder.daemon.status import collect

        with self._lock:
            key = (self._version(), running_pid(self.state_dir), dt.date.today())
            same = key == self._key and config is self._config and key[0] is not None
            if not same or self._value is None:
                # the key is read before collecting: a change meanwhile makes the next one new
                self._value = collect(self.state_dir, config)
                self._key, self._config = key, config
            return self._value

    def _version(self) -> int | None:
        path = self.state_dir / JOURNAL_NAME
        if self._db is None:
            if not path.is_file():
                return None
            self._db = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False
            )
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
