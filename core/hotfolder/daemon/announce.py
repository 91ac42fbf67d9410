"""What the daemon tells plugins beyond a job's own hooks: it started, reloaded and stopped,
its paid work paused and resumed, a folder went away and came back.

Each hook is called once per change, never once per check: the scheduler and the service
look every tick and tell an :class:`Announcer` what they see; it calls a hook only when that
differs from what it last announced. Hooks are called through
:func:`hotfolder.plugins.call_observers`: a plugin that raises is logged and the daemon goes on.
"""

from __future__ import annotations

from pathlib import Path

import pluggy

from hotfolder.pauses import Pause
from hotfolder.plugins import call_observers
from hotfolder.runtime import Runtime


class Announcer:
    """Calls the daemon's lifecycle hooks (see :mod:`hotfolder.hookspecs`) on changes only."""

    def __init__(self) -> None:
        self._pm: pluggy.PluginManager | None = None
        self._pause: Pause | None = None
        self._unreachable: set[Path] = set()

    def started(self, runtime: Runtime) -> None:
        """``hotfolder_daemon_started``; from then on :meth:`stopped` calls its pair."""
        self._pm = runtime.pm
        call_observers(runtime.pm, "hotfolder_daemon_started", runtime=runtime)

    def reloaded(self, runtime: Runtime) -> None:
        call_observers(runtime.pm, "hotfolder_daemon_reloaded", runtime=runtime)

    def stopped(self) -> None:
        """``hotfolder_daemon_stopped``, if ``hotfolder_daemon_started`` was called."""
        if self._pm is not None:
            pm, self._pm = self._pm, None
            call_observers(pm, "hotfolder_daemon_stopped")

    def pause(self, pm: pluggy.PluginManager, pause: Pause | None) -> None:
        """The pause in force now (None: none): ``hotfolder_paused`` for a new one,
        ``hotfolder_resumed`` when none is left."""
        before, self._pause = self._pause, pause
        if pause is None:
            if before is not None:
                call_observers(pm, "hotfolder_resumed", pause=before)
        elif before is None or _key(before) != _key(pause):
            call_observers(pm, "hotfolder_paused", pause=pause)

    def folder(self, pm: pluggy.PluginManager, folder: Path, *, reachable: bool) -> None:
        """Whether a watched folder is there now: ``hotfolder_folder_unreachable`` when it
        goes, ``hotfolder_folder_reachable`` when it is back."""
        if reachable and folder in self._unreachable:
            self._unreachable.discard(folder)
            call_observers(pm, "hotfolder_folder_reachable", folder=folder)
        elif not reachable and folder not in self._unreachable:
            self._unreachable.add(folder)
            reason = f"{folder} is not there (moved away, deleted, or not mounted)"
            call_observers(pm, "hotfolder_folder_unreachable", folder=folder, reason=reason)


def _key(pause: Pause) -> tuple[str, str, float]:
    """What tells one pause from the next (its hint and next probe may change meanwhile)."""
    return pause.service, pause.kind, pause.since
