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
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from loguru import logger
from watchdog.events import (
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from hotfolder.daemon import inotify
from hotfolder.daemon.folders import FolderPlan
from hotfolder.daemon.inotify import InotifyWatch

#: How long watchdog's inotify backend holds a folder's IN_MOVED_FROM to pair it with its
#: IN_MOVED_TO (it must, to move its watches along). A file's is not held at all: hotfolder only
#: needs where a file went (an unpaired move-in is "arrived" as a paired one is), and holding
#: each claim's rename out of the folder held every later event behind it (watchdog's default
#: of 0.5 s: drop-to-start p50 of 298 ms; docs/benchmarks.md).
MOVE_PAIRING_SECONDS = 0.02


def _shorten_move_pairing() -> None:
    try:
        from watchdog.observers.inotify_move_event_grouper import (
            InotifyMoveEventGrouper,
            PathedInotifyEvent,
        )
    except ImportError:  # not Linux, or a watchdog that groups moves some other way
        return
    InotifyMoveEventGrouper.delay = MOVE_PAIRING_SECONDS
    if getattr(InotifyMoveEventGrouper.put_event, "_hotfolder", False):
        return

    def put_event(self: InotifyMoveEventGrouper, event: PathedInotifyEvent) -> None:
        grouped = self._group_moved_to_event(event) if event.ev.is_moved_to else event
        self._queue.put(grouped, delay=event.ev.is_moved_from and event.ev.is_directory)

    put_event._hotfolder = True  # type: ignore[attr-defined]
    InotifyMoveEventGrouper.put_event = put_event  # type: ignore[method-assign]


#: The events :class:`_Handler` hears; watchdog drops the others (the folder-modified event
#: it adds to every create, move and close-after-write, attribute changes, deletions) before
#: they reach its queue, and asks inotify only for these.
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    FileOpenedEvent,
    FileClosedNoWriteEvent,
]

HintKind = Literal["changed", "arrived", "opened", "closed"]
#: ``hint(folder, path, kind)``: called from watchdog's thread; must be thread-safe.
Hint = Callable[[FolderPlan, str, HintKind], None]

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


class _Handler(FileSystemEventHandler):
    def __init__(self, plan: FolderPlan, hint: Hint) -> None:
        self.plan = plan
        self.hint = hint

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        if isinstance(event, FileMovedEvent):
            # Unpaired moves (generate_full_events): "" for the end outside the watch.
            if event.dest_path:
                self.hint(self.plan, os.fsdecode(event.dest_path), "arrived")
        elif isinstance(event, FileClosedEvent):
            self.hint(self.plan, os.fsdecode(event.src_path), "arrived")
        elif isinstance(event, FileOpenedEvent):
            self.hint(self.plan, os.fsdecode(event.src_path), "opened")
        elif isinstance(event, FileClosedNoWriteEvent):
            self.hint(self.plan, os.fsdecode(event.src_path), "closed")
        elif event.event_type in ("created", "modified"):
            self.hint(self.plan, os.fsdecode(event.src_path), "changed")


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
        observer: BaseObserver
        if self.polling:
            observer = PollingObserverVFS(
                os.lstat, os.scandir, polling_interval=section.poll_seconds
            )
        else:
            _shorten_move_pairing()
            observer = _native_observer()
        observer.schedule(
            _Handler(self.plan, self.hint),
            str(self.plan.root),
            recursive=section.recursive,
            event_filter=EVENTS,
        )
        observer.daemon = True
        observer.start()
        self.observer = observer
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

    def stop(self) -> None:
        observer, self.observer = self.observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)


def _native_observer() -> BaseObserver:
    """The platform's observer; on Linux one that reports unpaired moves as moves."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:  # not Linux
        return Observer()
    if Observer is InotifyObserver:
        return InotifyObserver(generate_full_events=True)
    return Observer()


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
