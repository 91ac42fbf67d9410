"""The lean inotify watch of a folder that is not recursive: each file's event reaches the
daemon as the hint watchdog's observer gave (a close after writing or a move in is
"arrived"), moves out and folder events are not asked for, and the watch ends with its
folder, on an overflow asks for a rescan, and closes its descriptors when stopped."""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hotfolder.daemon import inotify
from hotfolder.daemon.folders import plan_folder
from hotfolder.daemon.inotify import InotifyWatch
from hotfolder.daemon.settings import FolderSection
from hotfolder.daemon.watcher import FolderWatch

pytestmark = pytest.mark.skipif(not inotify.available(), reason="inotify is Linux's")


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, path: str, kind: str) -> None:
        with self.lock:
            self.events.append((path, kind))

    def of(self, path: Path) -> list[str]:
        with self.lock:
            return [kind for p, kind in self.events if p == str(path)]


def wait_until(what: str, check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_files_written_moved_in_and_read_are_heard_as_the_daemon_needs(tmp_path: Path) -> None:
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    inbox.mkdir()
    elsewhere.mkdir()
    heard = Heard()
    watch = InotifyWatch(str(inbox), heard)
    watch.start()
    try:
        written = inbox / "a.jpg"
        with written.open("wb") as f:
            f.write(b"x" * 100)
        (elsewhere / "b.jpg").write_bytes(b"y")
        os.rename(elsewhere / "b.jpg", inbox / "b.jpg")
        wait_until("the close and the move in", lambda: "arrived" in heard.of(inbox / "b.jpg"))
        assert heard.of(written)[0] == "changed" and heard.of(written)[-1] == "arrived", (
            f"{written}: heard {heard.of(written)}; a new file is a change, then its close "
            "after writing is its arrival"
        )
        assert "opened" in heard.of(written)

        written.read_bytes()  # a reader: open, then close without writing
        wait_until("the read", lambda: "closed" in heard.of(written))
        before = len(heard.events)
        os.rename(written, elsewhere / "a.jpg")  # a claim: a move out
        (inbox / "sub").mkdir()  # a folder's events are never hints
        (inbox / "marker.jpg").write_bytes(b"z")
        wait_until("the marker", lambda: "arrived" in heard.of(inbox / "marker.jpg"))
        later = {path for path, _ in heard.events[before:]}
        assert later == {str(inbox / "marker.jpg")}, (
            f"heard {heard.events[before:]} after a move out and a mkdir: neither is a hint"
        )
    finally:
        watch.stop()
        watch.join(5)
    assert not watch.is_alive(), "stop() did not end the watch's thread"


def test_opens_and_reads_go_unheard_while_a_backlog_is_worked_through(tmp_path: Path) -> None:
    """The daemon's own look at each file of a backlog is an open and a close: the watch
    stops asking for them, and a writer is still heard by its writes and its close."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    old = inbox / "old.jpg"
    old.write_bytes(b"x")
    heard = Heard()
    watch = InotifyWatch(str(inbox), heard)
    watch.start()
    try:
        watch.hear_opens(False)
        old.read_bytes()  # the daemon's look: unheard
        new = inbox / "new.jpg"
        new.write_bytes(b"y")  # a writer: heard without its open
        wait_until("the writer's close", lambda: "arrived" in heard.of(new))
        assert heard.of(old) == [] and "opened" not in heard.of(new), heard.events

        watch.hear_opens(True)
        old.read_bytes()
        wait_until("the reader's close", lambda: "closed" in heard.of(old))
        assert heard.of(old) == ["opened", "closed"]
    finally:
        watch.stop()
        watch.join(5)


def test_a_folder_made_again_at_its_path_keeps_its_old_watch_as_it_was(tmp_path: Path) -> None:
    """Asking for other events goes by path: one made again at the folder's path (the
    daemon's moved-folder check starts a new watch for it) is not watched by the old one."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    heard = Heard()
    watch = InotifyWatch(str(inbox), heard)
    watch.start()
    try:
        os.rename(inbox, tmp_path / "moved")
        inbox.mkdir()
        watch.hear_opens(False)
        (inbox / "stray.jpg").write_bytes(b"z")
        (tmp_path / "moved" / "kept.jpg").write_bytes(b"k")
        wait_until("the moved folder's file", lambda: heard.events != [])
        assert all("stray" not in path for path, _ in heard.events), heard.events
    finally:
        watch.stop()
        watch.join(5)


def test_the_watch_ends_with_its_folder(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watch = InotifyWatch(str(inbox), Heard())
    watch.start()
    inbox.rmdir()
    watch.join(10)
    assert not watch.is_alive(), "the watch of a deleted folder did not end"
    watch.stop()  # after its end: closes nothing twice, writes to no reused descriptor


def test_an_overflow_asks_for_a_rescan_and_a_missing_folder_cannot_be_watched(
    tmp_path: Path,
) -> None:
    overflows: list[int] = []
    watch = InotifyWatch(str(tmp_path), Heard(), lambda: overflows.append(1))
    try:
        overflow = struct.pack("iIII", -1, inotify.flags.Q_OVERFLOW, 0, 0)
        assert watch.handle(overflow) is False
        assert overflows == [1], "an inotify overflow did not ask for a rescan"
    finally:
        watch.stop()  # never started: its descriptors are closed at once
    with pytest.raises(OSError):
        InotifyWatch(str(tmp_path / "missing"), Heard())


def test_a_folder_that_is_not_recursive_gets_the_lean_watch_and_a_recursive_one_watchdog(
    tmp_path: Path,
) -> None:
    hints: list[tuple[str, str]] = []
    for recursive, lean in ((False, True), (True, False)):
        plan = plan_folder(
            FolderSection(path=tmp_path, chain="web", recursive=recursive, observer="native")
        )
        watch = FolderWatch(plan, lambda _plan, path, kind: hints.append((path, kind)))
        watch.start()
        try:
            assert isinstance(watch.observer, InotifyWatch) is lean
            assert watch.alive()
        finally:
            watch.stop()
        assert not watch.alive()
