"""The inotify move grouping hotfolder sets up: a file's move out of the folder (every claim)
is not held back, so events after it reach the daemon at once; a folder's still is, so that
watchdog can pair it and move its watches along."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("watchdog.observers.inotify_move_event_grouper")

from watchdog.observers.inotify_move_event_grouper import (
    InotifyMoveEventGrouper,
    PathedInotifyEvent,
)

from hotfolder.daemon.observers import MOVE_PAIRING_SECONDS, _shorten_move_pairing


def _event(*, moved_from: bool = False, moved_to: bool = False, directory: bool = False,
           cookie: int = 1, path: bytes = b"/f/a.jpg") -> PathedInotifyEvent:  # fmt: skip
    ev: Any = SimpleNamespace(
        is_moved_from=moved_from, is_moved_to=moved_to, is_directory=directory, cookie=cookie
    )
    return PathedInotifyEvent(ev, path)


def _timed_read(grouper: InotifyMoveEventGrouper) -> tuple[object, float]:
    started = time.monotonic()
    event = grouper.read_event()
    return event, time.monotonic() - started


def test_a_files_move_out_is_not_held_and_a_folders_is() -> None:
    _shorten_move_pairing()
    _shorten_move_pairing()  # idempotent: a restarted watch sets it up again
    grouper = InotifyMoveEventGrouper()
    try:
        claim = _event(moved_from=True, path=b"/f/a.jpg")
        closed = _event(path=b"/f/b.jpg")
        grouper.put_event(claim)
        grouper.put_event(closed)
        first, _ = _timed_read(grouper)
        second, _ = _timed_read(grouper)
        assert (first, second) == (claim, closed), "a file's move out held back later events"

        folder = _event(moved_from=True, directory=True, cookie=7, path=b"/f/sub")
        grouper.put_event(folder)
        to = _event(moved_to=True, directory=True, cookie=7, path=b"/f/sub2")
        grouper.put_event(to)
        paired, _ = _timed_read(grouper)
        assert paired == (folder, to), "a folder's move was not paired with its move-in"

        alone = _event(moved_from=True, directory=True, cookie=9, path=b"/f/gone")
        grouper.put_event(alone)
        event, waited = _timed_read(grouper)
        assert event == alone
        assert waited >= MOVE_PAIRING_SECONDS * 0.5, "a folder's move out was not held to pair"
    finally:
        grouper.close()
