"""Observers that turn file-system events into hints, and the scans behind them.

Events are only hints: each one names a path that the readiness check then looks at. A scan
at start-up and every ``rescan_seconds`` finds whatever events missed. ``observer = "auto"``
uses polling on network and FUSE file systems (where inotify sees no remote changes) and the
native observer elsewhere: for a folder that is not recursive on Linux the lean watch of
:mod:`hotfolder.daemon.inotify`, else watchdog's. A lost event queue (inotify overflow) or a
dead observer thread triggers a rescan and a new observer.

On Linux the inotify observer reports every move, paired or not: a file renamed into the
folder from a folder that is not watched (``mv ~/Desktop/x.jpg inbox/``) is an ``IN_MOVED_TO``
with no ``IN_MOVED_FROM``, which watchdog would otherwise report as a plain creation. Such a
move-in is complete the moment it appears, so it is hinted as ``"arrived"`` and taken at once,
without waiting for the quiet period.

watchdog (:mod:`hotfolder.daemon.observers`) is imported by the first folder that needs it, a
recursive or polled one: a daemon whose folders all have the lean watch never imports it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from hotfolder.daemon import inotify
from hotfolder.daemon.folders import FolderPlan, Hint, HintKind
from hotfolder.daemon.inotify import InotifyWatch

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver


#: File-system types on which the native observer misses changes made by other machines.
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "afs", "ncpfs", "9p", "ceph",
     "glusterfs", "lustre", "gpfs", "davfs", "sshfs", "vboxsf", "vmhgfs", "prl_fs", "virtiofs"}
)  # fmt: skip
MOUNTS = Path("/proc/mounts")


def filesystem_type(path: Path, mounts: Path = MOUNTS) -> str | None:
    """The type of the file system holding ``path`` (from /proc/mounts), None if unknown."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    target = str(path)
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, parts[2]
    return best_type


def wants_polling(choice: str, path: Path, mounts: Path = MOUNTS) -> bool:
    """Whether ``observer = choice`` means polling for ``path``."""
    if choice != "auto":
        return choice == "polling"
    fstype = filesystem_type(path, mounts) or ""
    return fstype in NETWORK_FS or fstype.startswith("fuse") or fstype.split(".")[0] in NETWORK_FS


class HintQueue:
    """Hints from watchdog's threads to the event loop, with one wakeup per batch.

    Each ``call_soon_threadsafe`` writes a byte to the loop's self-pipe. A burst of events
    (thousands a second, the daemon's own header reads included) filled that pipe, and the
    byte a signal writes to it was then lost: SIGTERM went unnoticed. Hints are queued
    here instead, and the loop is woken only when the queue goes from empty to not empty.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Hint) -> None:
        self._loop = loop
        self._deliver = deliver
        self._pending: collections.deque[tuple[FolderPlan, str, HintKind]] = collections.deque()
        self._lock = threading.Lock()
        self._woken = False

    def __call__(self, plan: FolderPlan, path: str, kind: HintKind) -> None:
        with self._lock:
            self._pending.append((plan, path, kind))
            if self._woken:
                return
            self._woken = True
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            batch = list(self._pending)
            self._pending.clear()
            self._woken = False
        for plan, path, kind in batch:
            self._deliver(plan, path, kind)


class FolderWatch:
    """One observer on one folder, restartable."""

    def __init__(
        self, plan: FolderPlan, hint: Hint, on_overflow: Callable[[], None] | None = None
    ) -> None:
        self.plan = plan
        self.hint = hint
        self.on_overflow = on_overflow
        self.observer: BaseObserver | InotifyWatch | None = None
        self.polling = False

    def start(self) -> None:
        """Start observing; an OSError (folder missing, watch limit) is raised to the caller."""
        section = self.plan.section
        self.polling = wants_polling(section.observer, self.plan.root)
        if not self.polling and not section.recursive and inotify.available():
            self._start_lean()
            return
        from hotfolder.daemon.observers import start_observer

        self.observer = start_observer(self.plan, self.hint, polling=self.polling)
        self._watching()

    def _start_lean(self) -> None:
        """A folder that is not recursive, on Linux: :mod:`hotfolder.daemon.inotify`."""
        plan, hint = self.plan, self.hint

        def deliver(path: str, kind: HintKind) -> None:
            hint(plan, path, kind)

        watch = InotifyWatch(str(plan.root), deliver, self.on_overflow)
        watch.start()
        self.observer = watch
        self._watching()

    def _watching(self) -> None:
        section = self.plan.section
        logger.info(
            "watching {} ({} observer{}, {})",
            self.plan.root,
            "polling" if self.polling else "native",
            f" every {section.poll_seconds:g}s" if self.polling else "",
            f"chain {section.chain!r}"
            if not section.routes
            else f"routes to chains {', '.join(section.chain_names)}",
        )

    def alive(self) -> bool:
        observer = self.observer
        if observer is None or not observer.is_alive():
            return False
        if isinstance(observer, InotifyWatch):
            return True
        return all(emitter.is_alive() for emitter in observer.emitters)

    def hear_opens(self, on: bool) -> None:
        """See :meth:`InotifyWatch.hear_opens`; watchdog's observers always hear them."""
        if isinstance(self.observer, InotifyWatch):
            self.observer.hear_opens(on)

    def stop(self) -> None:
        observer, self.observer = self.observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)


#: Why a subfolder of a folder that is not recursive is not looked into.
SUBFOLDER = "subfolder of a non-recursive folder"


def survey(plan: FolderPlan) -> Iterator[tuple[str, str | None]]:
    """Every name in the folder (relative, ``/``-separated) with why it is not taken (None:
    it is), links and special files included so that they can be quarantined. Hidden names
    are left out; a subfolder of a folder that is not recursive is named once
    (``sub/``, :data:`SUBFOLDER`) and not entered; excluded and linked folders are never
    entered. Raises OSError when the folder cannot be read."""
    stack = [plan.root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = plan.rel(entry.path)
                if rel is None or entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if plan.filter.ignored(rel):
                        continue
                    if plan.section.recursive:
                        stack.append(Path(entry.path))
                    else:
                        yield rel + "/", SUBFOLDER
                    continue
                yield rel, plan.filter.why_not(rel)


def scan(plan: FolderPlan) -> Iterator[str]:
    """Every wanted name in the folder (see :func:`survey`)."""
    for rel, why in survey(plan):
        if why is None:
            yield rel


class OverflowAlarm(logging.Handler):
    """Hears watchdog's "Inotify queue overflowed" warning (watchdog logs it and goes on)
    and calls ``on_overflow`` so that every folder is rescanned."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_overflow()

    def install(self) -> None:
        logging.getLogger("watchdog.observers.inotify_c").addHandler(self)

    def remove(self) -> None:
        logging.getLogger("watchdog.observers.inotify_c").removeHandler(self)
