"""A lean inotify watch of one folder (not its subfolders): the native observer of a folder
that is not recursive, on Linux.

watchdog hands each event through three threads and their queues before it reaches a handler;
the daemon's own looks at the files it takes are events too (a read lease or a header read is
an open and a close; a claim is a move out), so a start-up scan of 10,000 files kept those
threads busy for seconds, holding the interpreter's lock the claiming loop needed (measured:
10,000 claims 4-5 s watched against 2.2 s unwatched; 2.0 s with this watch). Here one thread
reads the inotify descriptor (made and parsed by ``inotify_simple``, a thin wrapper of the
system calls) and hands each file's event, as a hint, straight on: only the events the daemon
uses are asked for (no moves out, no deletions, no folder events).

While the daemon works through a backlog (a start-up scan of thousands of files), it stops
asking for opens and closes without writing (:meth:`InotifyWatch.hear_opens`): its own look at
each file (a read lease) is one of each, and handing 20,000 of them on took as much of the
interpreter as claiming the files (measured: 10,000 files queued in 3.4 s without them against
4.65 s with them). A writer is still heard by its writes and its close, and one that holds a
file open is seen by the lease; only where leases cannot be had (a file of another user,
without CAP_LEASE) does an open without writes go unseen for that while, as a file opened
before the daemon started always does.

A recursive folder keeps watchdog's observer, which adds and moves the watches of subfolders.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import Literal

from loguru import logger

try:  # Linux only: it loads inotify's functions from the C library when imported
    from inotify_simple import INotify, flags, parse_events
except (ImportError, OSError, AttributeError):  # pragma: no cover - not Linux
    INotify = None

_BUFFER = 64 * 1024


def _mask(*, opens: bool = True) -> int:
    """What is asked for: the events of the kinds :func:`_kind` tells apart (with ``opens``,
    opens and closes without writing too), and the folder's own end; never a folder's or a
    move out's."""
    return int(
        flags.CREATE | flags.MODIFY | flags.ATTRIB | flags.CLOSE_WRITE | flags.MOVED_TO
        | (flags.OPEN | flags.CLOSE_NOWRITE if opens else 0) | flags.DELETE_SELF
        | flags.ONLYDIR | flags.DONT_FOLLOW
    )  # fmt: skip


Kind = Literal["changed", "arrived", "opened", "closed"]


def _kind(mask: int) -> Kind:
    """The hint an event of a file is (see :data:`hotfolder.daemon.folders.HintKind`): a
    close after writing or a move in is ``"arrived"``, as with watchdog's observer."""
    if mask & (flags.CLOSE_WRITE | flags.MOVED_TO):
        return "arrived"
    if mask & flags.OPEN:
        return "opened"
    if mask & flags.CLOSE_NOWRITE:
        return "closed"
    return "changed"


def available() -> bool:
    """Whether this system has inotify (Linux, with inotify_simple installed)."""
    return sys.platform.startswith("linux") and INotify is not None


class InotifyWatch(threading.Thread):
    """One folder's watch; ``deliver(path, kind)`` is called from its thread for every event
    of a file in it, ``on_overflow()`` when the kernel dropped events. The thread ends when
    :meth:`stop` is called or the folder is gone (``is_alive()`` then says so)."""

    def __init__(
        self,
        folder: str,
        deliver: Callable[[str, Kind], None],
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name=f"inotify {folder}", daemon=True)
        if not available():
            msg = "inotify is not available here"
            raise OSError(msg)
        self.folder = folder
        self._prefix = folder.rstrip("/") + "/"
        self._deliver = deliver
        self._on_overflow = on_overflow
        watched = INotify(nonblocking=True)  # OSError when the kernel refuses
        try:
            watched.add_watch(folder, _mask())
            self._ino = os.stat(folder).st_ino
        except OSError as exc:
            watched.close()
            raise OSError(exc.errno, exc.strerror, folder) from None
        self._opens = True
        self._fd = watched.fileno()
        self._inotify = watched  # it owns the descriptor: closing it closes the fd
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._closed = False

    def run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_r in ready:
                    return
                try:
                    data = os.read(self._fd, _BUFFER)
                except (BlockingIOError, InterruptedError):
                    continue
                if self.handle(data):
                    logger.debug("{}: the folder is gone; its watch ends", self.folder)
                    return
        except Exception:  # the thread ends: the daemon's health check starts a new watch
            logger.opt(exception=True).error("the watch of {} failed", self.folder)
        finally:
            self._close()

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(OSError):
                self._inotify.close()
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def handle(self, data: bytes) -> bool:
        """Hand on the events in ``data`` (what one read gave); True when the watch is over."""
        gone = False
        for event in parse_events(data):
            if event.mask & flags.Q_OVERFLOW:
                logger.warning(
                    "{}: events were lost (inotify queue overflow); rescanning", self.folder
                )
                if self._on_overflow is not None:
                    self._on_overflow()
                continue
            # the watch is over: the folder was deleted or its file system unmounted
            if event.mask & (flags.IGNORED | flags.DELETE_SELF | flags.UNMOUNT):
                gone = True
                continue
            if event.mask & flags.ISDIR or not event.name:
                continue
            self._deliver(self._prefix + event.name, _kind(event.mask))
        return gone

    def hear_opens(self, on: bool) -> None:
        """Ask for opens and closes without writing (True), or stop asking for them while a
        backlog is worked through (False). Kept as it is when the folder at the path is not
        the one watched any more (the daemon's moved-folder check starts a new watch)."""
        with self._lock:
            if self._closed or on == self._opens:
                return
            try:
                if os.stat(self.folder).st_ino != self._ino:
                    return
                self._inotify.add_watch(self.folder, _mask(opens=on))
            except OSError:
                return  # the folder is gone: the health check says so
            self._opens = on

    def stop(self) -> None:
        """End the thread, which closes the watch (or close it, if it never started)."""
        if self.ident is None:
            self._close()
            return
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, b"!")
