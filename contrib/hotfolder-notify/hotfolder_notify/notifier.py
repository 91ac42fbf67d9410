"""Events from the hooks, gathered into digests and sent through Apprise from a thread.

The hooks only append to a list (they run on the daemon's loop and must not wait on the
network). A thread sends: the first event of a quiet spell opens a window of
``digest_seconds``; everything that happens in it goes out as one message when it closes, so a
batch of 500 failures is one message. A folder reported unreachable becomes an event only once
it has been gone ``unreachable_after_seconds``. ``hotfolder_daemon_stopped`` sends what is
still gathered, then ends the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

import hotfolder
from hotfolder_notify.message import Event, Kind, Message, render
from hotfolder_notify.settings import NotifySettings

if TYPE_CHECKING:
    from hotfolder import HotfolderError, Job, Pause, RuntimeView

#: How long stopping waits for the last message to go out.
STOP_TIMEOUT_SECONDS = 30.0

Send = Callable[[Message], bool]


@dataclass
class _Away:
    """A folder reported unreachable: since when (the notifier's clock), and whether that
    was sent yet."""

    since: float
    reason: str
    reported: bool = False


class Notifier:
    """The plugin's state; its methods are the hook implementations (a test can register a
    fresh one). ``send`` replaces Apprise (for unit tests); ``clock`` is ``time.monotonic``."""

    def __init__(self, *, send: Send | None = None, clock: Callable[[], float] = time.monotonic):
        self._send_override = send
        self._clock = clock
        self._cond = threading.Condition()
        self._settings = NotifySettings()
        self._send: Send | None = None
        self._pending: list[Event] = []
        self._window_ends: float | None = None
        self._away: dict[Path, _Away] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: Messages sent and failed, for logs and tests.
        self.sent = 0
        self.failed = 0

    # --- the daemon's life -------------------------------------------------------------------

    @hotfolder.hookimpl
    def hotfolder_daemon_started(self, runtime: RuntimeView) -> None:
        self.configure(runtime.plugin_settings(NotifySettings))
        with self._cond:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
                self._thread.start()

    @hotfolder.hookimpl
    def hotfolder_daemon_reloaded(self, runtime: RuntimeView) -> None:
        self.configure(runtime.plugin_settings(NotifySettings))

    @hotfolder.hookimpl
    def hotfolder_daemon_stopped(self) -> None:
        """Send what is gathered, then end the thread."""
        with self._cond:
            thread, self._stopping = self._thread, True
            self._cond.notify_all()
        if thread is not None:
            thread.join(STOP_TIMEOUT_SECONDS)
        with self._cond:
            self._thread = None
            self._away.clear()

    def configure(self, settings: NotifySettings) -> None:
        send = self._send_override or _apprise_sender(settings)
        with self._cond:
            self._settings, self._send = settings, send
            self._cond.notify_all()

    # --- what happened -------------------------------------------------------------------

    @hotfolder.hookimpl
    def hotfolder_job_failed(self, job: Job, error: HotfolderError) -> None:
        line = f"job failed: {job.display} (chain {job.chain}): {error.message}"
        self._add("job_failed", line, error.hint)

    @hotfolder.hookimpl
    def hotfolder_paused(self, pause: Pause) -> None:
        kind: Kind = "budget_reached" if pause.kind == "budget" else "paused"
        line = f"{pause.service} work paused ({pause.kind}): {pause.reason}"
        self._add(kind, line, pause.hint)

    @hotfolder.hookimpl
    def hotfolder_resumed(self, pause: Pause) -> None:
        self._add("resumed", f"{pause.service} work resumed after a pause ({pause.kind})")

    @hotfolder.hookimpl
    def hotfolder_folder_unreachable(self, folder: Path, reason: str) -> None:
        with self._cond:
            if self._thread is not None and folder not in self._away:
                self._away[folder] = _Away(self._clock(), reason)
                self._cond.notify_all()

    @hotfolder.hookimpl
    def hotfolder_folder_reachable(self, folder: Path) -> None:
        with self._cond:
            away = self._away.pop(folder, None)
        if away is not None and away.reported:
            self._add("folder_back", f"folder back: {folder} is there and watched again")

    def _add(self, kind: Kind, line: str, hint: str | None = None) -> None:
        with self._cond:
            self._add_locked(Event(kind, time.time(), line, hint))

    def _add_locked(self, event: Event) -> None:
        if self._thread is None or event.setting not in self._settings.events:
            return  # not under `hotfolder run`, or not wanted
        self._pending.append(event)
        if self._window_ends is None:
            self._window_ends = self._clock() + self._settings.digest_seconds
        self._cond.notify_all()

    # --- the sending thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                batch, send, last = self._wait_for_batch()
                title = self._settings.title
            if batch and send is not None:
                self._deliver(send, render(batch, title), len(batch))
            if last:
                return

    def _wait_for_batch(self) -> tuple[list[Event], Send | None, bool]:
        """Under the lock: wait until a window closes (or the daemon stops); the events to
        send, how, and whether this is the last batch."""
        while True:
            now = self._clock()
            self._report_long_gone(now)
            closed = self._window_ends is not None and now >= self._window_ends
            if self._stopping or (self._pending and closed):
                batch, self._pending, self._window_ends = self._pending, [], None
                return batch, self._send, self._stopping
            self._cond.wait(self._next_wake(now))

    def _report_long_gone(self, now: float) -> None:
        after = self._settings.unreachable_after_seconds
        for away in self._away.values():
            if not away.reported and now - away.since >= after:
                away.reported = True
                minutes = (now - away.since) / 60
                line = f"folder unreachable for {minutes:.0f} min: {away.reason}"
                hint = "bring the folder back (mount it, move it back); its files wait"
                self._add_locked(Event("folder_unreachable", time.time(), line, hint))

    def _next_wake(self, now: float) -> float | None:
        deadlines = [self._window_ends] if self._window_ends is not None else []
        after = self._settings.unreachable_after_seconds
        deadlines += [a.since + after for a in self._away.values() if not a.reported]
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _deliver(self, send: Send, message: Message, events: int) -> None:
        try:
            ok = send(message)
        except Exception:
            logger.exception("notify: sending {} event(s) raised; they are dropped", events)
            ok = False
        if ok:
            self.sent += 1
            logger.info("notify: sent {} event(s) in one message: {}", events, message.title)
        else:
            self.failed += 1
            logger.warning(
                "notify: could not send {} event(s) ({}); see the lines above for why, and "
                "check [plugins.notify] urls", events, message.title,
            )  # fmt: skip


def _apprise_sender(settings: NotifySettings) -> Send | None:
    """A function that sends a message to every URL of ``settings``; None without any.

    A URL given by reference is read now; one that is not set is skipped with a warning. URLs
    are logged by reference, or in Apprise's private form (no tokens, no passwords)."""
    if not settings.urls:
        return None
    import apprise

    _apprise_logs_to_loguru()
    targets = apprise.Apprise()
    names = []
    for i, url in enumerate(settings.urls):
        where = f"[plugins.notify] urls[{i}]"
        if isinstance(url, hotfolder.SecretRef):
            try:
                value = url.reveal()
            except hotfolder.ConfigError as exc:
                logger.warning("notify: {} is skipped: {}", where, exc)
                continue
            if value is None:
                logger.warning("notify: {} is skipped: {} is not set", where, url.describe())
                continue
        else:
            value = url
        target = apprise.Apprise.instantiate(value)
        if target is None:
            logger.warning("notify: {} is skipped: Apprise cannot send to that URL", where)
            continue
        targets.add(target)
        private = target.url(privacy=True).split("?", 1)[0]
        names.append(url.describe() if isinstance(url, hotfolder.SecretRef) else private)
    logger.info("notify: sending to {}", ", ".join(names) or "nothing (no usable URL)")

    def send(message: Message) -> bool:
        if not len(targets):
            return True
        result = targets.notify(body=message.body, title=message.title, notify_type=message.type)
        return bool(result)

    return send


class _ToLoguru(logging.Handler):
    """Apprise logs through the standard library; its lines join hotfolder's."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.log(_level(record), "apprise: {}", record.getMessage())


def _level(record: logging.LogRecord) -> Any:
    try:
        return logger.level(record.levelname).name
    except ValueError:
        return record.levelno


def _apprise_logs_to_loguru() -> None:
    log = logging.getLogger("apprise")
    if not any(isinstance(h, _ToLoguru) for h in log.handlers):
        log.addHandler(_ToLoguru())
        log.propagate = False
