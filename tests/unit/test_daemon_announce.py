"""The daemon's lifecycle hooks are called once per change, through a real plugin manager;
a plugin that raises in one is logged and does not stop the others. (The daemon calling them
at the right moments is tested end to end in contrib/hotfolder-notify and
contrib/hotfolder-prometheus.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import hotfolder
from hotfolder.daemon.announce import Announcer
from hotfolder.pauses import Pause
from hotfolder.testing import make_runtime, plugin_manager

BALANCE = Pause("venice", "balance", "the balance is empty", "top up", since=100.0)


class Recorder:
    """Records each lifecycle hook call as (hook, argument)."""

    __name__ = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hotfolder.hookimpl
    def hotfolder_daemon_started(self, runtime: hotfolder.RuntimeView) -> None:
        self.calls.append(("started", runtime))

    @hotfolder.hookimpl
    def hotfolder_daemon_reloaded(self, runtime: hotfolder.RuntimeView) -> None:
        self.calls.append(("reloaded", runtime))

    @hotfolder.hookimpl
    def hotfolder_daemon_stopped(self) -> None:
        self.calls.append(("stopped", None))

    @hotfolder.hookimpl
    def hotfolder_paused(self, pause: hotfolder.Pause) -> None:
        self.calls.append(("paused", pause.kind))

    @hotfolder.hookimpl
    def hotfolder_resumed(self, pause: hotfolder.Pause) -> None:
        self.calls.append(("resumed", pause.kind))

    @hotfolder.hookimpl
    def hotfolder_folder_unreachable(self, folder: Path, reason: str) -> None:
        self.calls.append(("unreachable", (folder, reason)))

    @hotfolder.hookimpl
    def hotfolder_folder_reachable(self, folder: Path) -> None:
        self.calls.append(("reachable", folder))


class Raises:
    __name__ = "raises"

    @hotfolder.hookimpl
    def hotfolder_paused(self, pause: hotfolder.Pause) -> None:
        raise RuntimeError("a plugin bug")


def test_a_pause_is_announced_once_and_so_is_its_end():
    recorder = Recorder()
    pm = plugin_manager(Raises(), recorder)
    announcer = Announcer()
    announcer.pause(pm, None)
    for _ in range(3):  # the scheduler looks every tick
        announcer.pause(pm, BALANCE)
    announcer.pause(pm, dataclasses.replace(BALANCE, hint="a newer hint"))  # the same pause
    auth = dataclasses.replace(BALANCE, kind="auth")  # another pause follows it
    announcer.pause(pm, auth)
    announcer.pause(pm, None)
    announcer.pause(pm, None)
    assert recorder.calls == [("paused", "balance"), ("paused", "auth"), ("resumed", "auth")]


def test_a_folder_is_announced_when_it_goes_and_when_it_is_back(tmp_path):
    recorder = Recorder()
    pm = plugin_manager(recorder)
    announcer = Announcer()
    inbox = tmp_path / "inbox"
    announcer.folder(pm, inbox, reachable=True)
    announcer.folder(pm, inbox, reachable=False)
    announcer.folder(pm, inbox, reachable=False)
    announcer.folder(pm, inbox, reachable=True)
    announcer.folder(pm, inbox, reachable=True)
    assert recorder.calls == [
        ("unreachable", (inbox, f"{inbox} is not there (moved away, deleted, or not mounted)")),
        ("reachable", inbox),
    ]


def test_stopped_is_called_only_after_started_and_only_once():
    recorder = Recorder()
    runtime = make_runtime({}, recorder)
    announcer = Announcer()
    announcer.stopped()  # the daemon failed before it started: nothing to stop
    announcer.started(runtime)
    announcer.reloaded(runtime)
    announcer.stopped()
    announcer.stopped()
    assert recorder.calls == [("started", runtime), ("reloaded", runtime), ("stopped", None)]
