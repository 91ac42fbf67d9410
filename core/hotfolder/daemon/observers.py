"""watchdog's observers, for the folders the lean inotify watch does not keep: recursive ones,
polled ones, and every folder where inotify is not available.

:mod:`hotfolder.daemon.watcher` imports this module (and watchdog with it, ~0.01 s) when it
starts such a folder's watch, not when the daemon starts.
"""

from __future__ import annotations

import os

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

from hotfolder.daemon.folders import FolderPlan, Hint

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


def start_observer(plan: FolderPlan, hint: Hint, *, polling: bool) -> BaseObserver:
    """A started observer of ``plan``'s folder (polled, or the platform's native one) that
    calls ``hint`` for each event; an OSError (folder missing, watch limit) is raised."""
    section = plan.section
    observer: BaseObserver
    if polling:
        observer = PollingObserverVFS(os.lstat, os.scandir, polling_interval=section.poll_seconds)
    else:
        _shorten_move_pairing()
        observer = _native_observer()
    observer.schedule(
        _Handler(plan, hint), str(plan.root), recursive=section.recursive, event_filter=EVENTS
    )
    observer.daemon = True
    observer.start()
    return observer


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


def _native_observer() -> BaseObserver:
    """The platform's observer; on Linux one that reports unpaired moves as moves."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:  # not Linux
        return Observer()
    if Observer is InotifyObserver:
        return InotifyObserver(generate_full_events=True)
    return Observer()
