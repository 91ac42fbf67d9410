"""hotfolder-notify: tell people when hotfolder needs them, through Apprise.

``hotfolder run`` sends a message when a job fails for good, paid work pauses (the key is
refused, the balance is empty, the daily budget is spent) and resumes, and when a watched
folder has been gone for a while; events close together go out as one digest::

    [plugins.notify]
    urls = [{ env = "HOTFOLDER_NOTIFY_URL" }, "json://127.0.0.1:8080/hooks"]
    events = ["job_failed", "paused", "resumed", "budget_reached", "folder_unreachable"]
    digest_seconds = 60
    unreachable_after_seconds = 300

See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hotfolder
from hotfolder_notify.message import Event, Message, render
from hotfolder_notify.notifier import Notifier
from hotfolder_notify.settings import EVENTS, NotifySettings

if TYPE_CHECKING:
    from pathlib import Path

    from hotfolder import HotfolderError, Job, Pause, RuntimeView

__all__ = ["EVENTS", "NOTIFIER", "Event", "Message", "Notifier", "NotifySettings", "render"]

#: The notifier of this process; the hooks below hand it what happens.
NOTIFIER = Notifier()


@hotfolder.hookimpl
def hotfolder_plugin_settings() -> type[NotifySettings]:
    return NotifySettings


@hotfolder.hookimpl
def hotfolder_daemon_started(runtime: RuntimeView) -> None:
    NOTIFIER.hotfolder_daemon_started(runtime)


@hotfolder.hookimpl
def hotfolder_daemon_reloaded(runtime: RuntimeView) -> None:
    NOTIFIER.hotfolder_daemon_reloaded(runtime)


@hotfolder.hookimpl
def hotfolder_daemon_stopped() -> None:
    NOTIFIER.hotfolder_daemon_stopped()


@hotfolder.hookimpl
def hotfolder_job_failed(job: Job, error: HotfolderError) -> None:
    NOTIFIER.hotfolder_job_failed(job, error)


@hotfolder.hookimpl
def hotfolder_paused(pause: Pause) -> None:
    NOTIFIER.hotfolder_paused(pause)


@hotfolder.hookimpl
def hotfolder_resumed(pause: Pause) -> None:
    NOTIFIER.hotfolder_resumed(pause)


@hotfolder.hookimpl
def hotfolder_folder_unreachable(folder: Path, reason: str) -> None:
    NOTIFIER.hotfolder_folder_unreachable(folder, reason)


@hotfolder.hookimpl
def hotfolder_folder_reachable(folder: Path) -> None:
    NOTIFIER.hotfolder_folder_reachable(folder)
