"""The daemon's life: one instance per state dir (:mod:`.lock`), recover, watch, run, reload,
stop.

``SIGTERM``/``SIGINT`` stop taking files, give running jobs ``[daemon] grace_seconds`` to
finish and leave the rest queued. ``SIGHUP`` reloads the config; a config that does not
validate is logged and the running one is kept. Everything runs on one asyncio loop;
the observers' threads only hand hints to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from hotfolder.config import Config, load_config
from hotfolder.daemon import claim, readiness, recovery
from hotfolder.daemon.announce import Announcer
from hotfolder.daemon.folders import FolderPlan, HintKind, plan_folders
from hotfolder.daemon.intake import Intake
from hotfolder.daemon.journal import JOURNAL_NAME, Journal
from hotfolder.daemon.lock import InstanceLock
from hotfolder.daemon.scheduler import ChainRunner, Scheduler
from hotfolder.daemon.settings import DaemonSection
from hotfolder.daemon.watcher import FolderWatch, HintQueue, OverflowAlarm
from hotfolder.errors import HotfolderError
from hotfolder.localfiles import policy_for
from hotfolder.runtime import Runtime

#: How often the readiness of candidates is looked at, and watchers are checked, at most
#: (a file that arrives wakes the loop at once; a tick that left due files looks again at once).
TICK = 0.05
HEALTH_EVERY = 2.0
#: How often each folder is checked for having been moved, deleted or replaced.
MOVED_EVERY = 0.5
#: The longest pause of a loop that keeps meeting a fault (a full state dir).
TROUBLE_MAX_SECONDS = 10.0


class Companion(Protocol):
    """Something that runs on the daemon's loop beside it (the dashboard): started once the
    journal is open and recovered, told of each reloaded config, stopped before it closes."""

    async def start(self) -> None: ...

    def reloaded(self, config: Config) -> None: ...

    async def stop(self) -> None: ...


class _Trouble:
    """A loop that met an unexpected fault (most often the journal cannot be written: the
    state dir is full or read-only): log it once, with the cause and the fix, and back off;
    say so when it is over."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.streak = 0

    def met(self, exc: Exception, state_dir: Path) -> float:
        self.streak += 1
        if self.streak == 1:
            if isinstance(exc, sqlite3.Error):
                logger.error(
                    "{}: cannot write the journal in {} ({}); nothing is lost: files stay where "
                    "they are and jobs wait until it can be written (free space there?)",
                    self.what, state_dir, exc,
                )  # fmt: skip
            else:
                logger.opt(exception=exc).error("{}: unexpected error; trying again", self.what)
        return float(min(TROUBLE_MAX_SECONDS, 0.5 * 2 ** min(self.streak, 8)))

    def over(self, then: Callable[[], None]) -> None:
        if self.streak:
            self.streak = 0
            then()


class Daemon:
    """``hotfolder run``. ``make_runtime(config)`` builds a runtime for a (re)loaded config;
    ``companions`` run on the same loop for as long as the daemon does; a ``runner`` runs the
    chains elsewhere (a fleet's workers) while this process watches, claims and journals."""

    def __init__(
        self,
        config: Config,
        make_runtime: Callable[[Config], Runtime],
        registry: Any,
        state_dir: Path,
        companions: Sequence[Companion] = (),
        runner: ChainRunner | None = None,
    ) -> None:
        self.config = config
        self.runner = runner
        self.companions = list(companions)
        self.make_runtime = make_runtime
        self.registry = registry
        self.state_dir = state_dir
        self.lock = InstanceLock(state_dir)
        self._stop = asyncio.Event()
        #: Set when a file arrived (close-after-write, move-in) or on stop: tick now.
        self._wake = asyncio.Event()
        self._reload = False
        self._rescan_all = False
        self.watches: dict[str, FolderWatch] = {}
        self._unwatched: set[str] = set()
        self.plans: list[FolderPlan] = []
        self.announcer = Announcer()  # the lifecycle hooks of docs/plugins.md

    # --- life ------------------------------------------------------------------------------

    async def run(self) -> None:
        self.lock.acquire()
        journal: Journal | None = None
        alarm = OverflowAlarm(self._on_overflow)
        started: list[Companion] = []
        try:
            journal = Journal(self.state_dir / JOURNAL_NAME)
            logger.info("hotfolder daemon (pid {}), state in {}", os.getpid(), self.state_dir)
            self.plans = plan_folders(self.config)
            self._lock_folders(self.plans)
            recovery.recover(journal, self.plans)
            if n := journal.resume_paused():
                logger.info("{} paused job(s) queued again at start-up", n)
            journal.set_meta("pause", None)
            journal.set_meta("waits", None)
            journal.set_meta("fleet", None)
            self.intake = Intake(
                journal, self.plans, policy_for(self.config), on_backlog=self._deafen_opens
            )
            self.scheduler = Scheduler(
                journal, self.make_runtime(self.config), self.plans, runner=self.runner
            )
            if self.runner is not None:
                await self.runner.start(self.scheduler.note)
            self._install_signals()
            alarm.install()
            self._start_watches()
            self._scan_all()
            if not self.plans:
                logger.warning("no [[folders]] in {}; nothing to watch", self.config.path)
            for companion in self.companions:
                await companion.start()
                started.append(companion)
            self.announcer.started(self.scheduler.runtime)
            await self._loop()
        finally:
            alarm.remove()
            for companion in reversed(started):
                await companion.stop()
            await self._shutdown()
            self.announcer.stopped()
            if journal is not None:
                journal.close()
            self.lock.release()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_scan = last_health = last_moved = loop.time()
        dispatcher = asyncio.create_task(self._dispatch_forever(), name="dispatcher")
        trouble = _Trouble("watching")
        try:
            while not self._stop.is_set():
                try:
                    if self._reload:
                        self._reload = False
                        self._do_reload()
                    now = loop.time()
                    if self._rescan_all or now - last_scan >= self.settings.rescan_seconds:
                        self._rescan_all = False
                        last_scan = now
                        self._scan_all()
                    if now - last_moved >= MOVED_EVERY:
                        last_moved = now
                        self._check_moved()
                    if now - last_health >= HEALTH_EVERY:
                        last_health = now
                        self._check_watches()
                        self._adopt_orphans()
                    if self.intake.tick():
                        self.scheduler.wake.set()
                    for watch in self.watches.values():  # not the events of its own looks
                        watch.hear_opens(not self.intake.behind)
                    if not self.intake.behind:  # idle: the name index catches up, a batch a tick
                        self.scheduler.journal.index_names()
                    trouble.over(self._journal_back)
                    # Files left due by a full tick: only let the jobs and events run first.
                    pause = 0.0 if self.intake.behind else TICK
                except Exception as exc:  # never exit on a fault the machine may repair
                    pause = trouble.met(exc, self.state_dir)
                # In trouble, arrivals do not cut the back-off short; a stop always does.
                wake = self._stop if trouble.streak else self._wake
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await wake.wait()
                self._wake.clear()
        finally:
            logger.info("stopping: no new files are taken")
            self._stop_watches()
            try:
                self.intake.close()
            except Exception:  # the journal cannot be written: recovery queues them at start
                logger.exception("the backlog's last claims could not be journaled")
            await self.scheduler.drain(self.settings.grace_seconds)
            self.scheduler.wake.set()
            await dispatcher

    def _deafen_opens(self) -> None:
        """Stop hearing opens and closes without writing while a backlog is claimed (the
        loop hears them again once the intake is no longer behind)."""
        for watch in self.watches.values():
            watch.hear_opens(False)

    async def _dispatch_forever(self) -> None:
        scheduler = self.scheduler
        trouble = _Trouble("starting jobs")
        while not scheduler.stopping:
            scheduler.wake.clear()
            try:
                scheduler.dispatch()
                wait = scheduler.next_wait()
                trouble.over(lambda: None)
            except Exception as exc:  # the dispatcher never dies silently
                wait = trouble.met(exc, self.state_dir)
            # asyncio.timeout, not wait_for: wait_for can swallow a cancellation (Python 3.11).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await scheduler.wake.wait()

    def _adopt_orphans(self) -> None:
        if n := self.scheduler.adopt_orphans():
            logger.warning("{} job(s) whose end could not be journaled are queued again", n)

    def _journal_back(self) -> None:
        """The journal can be written again: files claimed while it could not get their rows."""
        logger.info("the journal in {} can be written again; going on", self.state_dir)
        for plan in self.plans:
            recovery.reconcile(self.scheduler.journal, plan, busy=set(self.scheduler.inflight))

    async def _shutdown(self) -> None:
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None:
            await scheduler.aclose()
        for plan in self.plans:
            plan.unlock()
        logger.info("daemon stopped")

    @property
    def settings(self) -> DaemonSection:
        """``[daemon]`` of the running config."""
        return self.config.section(DaemonSection)

    # --- signals ---------------------------------------------------------------------------

    def _install_signals(self) -> None:
        readiness.ignore_lease_breaks()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)

    def _on_stop(self, sig: signal.Signals) -> None:
        """The first SIGTERM/SIGINT stops taking files and gives running jobs the grace
        period; a second one stops them at once (they stay queued, paid steps kept)."""
        running = [task for task, _ in self.scheduler.inflight.values() if not task.done()]
        if not self._stop.is_set():
            self._stop.set()
            self._wake.set()
            again = "Ctrl-C" if sig == signal.SIGINT else sig.name
            if not running:
                logger.info("{} received: stopping", sig.name)
                return
            logger.info(
                "{} received: stopping; {} running job(s) get up to {:g}s to finish ({} again "
                "to stop them at once, left queued)",
                sig.name, len(running), self.settings.grace_seconds, again,
            )  # fmt: skip
            return
        for task in running:
            task.cancel()
        logger.warning(
            "{} received again: stopping now; {} running job(s) stopped and left queued for "
            "the next start (their paid steps are kept)",
            sig.name, len(running),
        )  # fmt: skip

    def _on_hup(self) -> None:
        logger.info("SIGHUP received: reloading {}", self.config.path)
        self._reload = True

    def _on_overflow(self) -> None:
        """From an observer's thread: events were lost."""
        self._rescan_all = True

    # --- reload ----------------------------------------------------------------------------

    def _do_reload(self) -> None:
        path = self.config.path
        try:
            if path is None:
                msg = "the config was not read from a file"
                raise HotfolderError(msg)
            config = load_config(path, self.registry)
            plans = plan_folders(config)
            new = [p for p in plans if p.key not in {q.key for q in self.plans}]
            self._lock_folders(new)
        except HotfolderError as exc:
            logger.error("config reload failed; the running config is kept:\n{}", exc)
            return
        for plan in self.plans:
            if plan.key not in {p.key for p in plans}:
                plan.unlock()
            else:
                next(p for p in plans if p.key == plan.key).lock_file = plan.lock_file
        for plan in new:
            recovery.reconcile(self.scheduler.journal, plan, busy=set(self.scheduler.inflight))
        self._stop_watches()
        self.config, self.plans = config, plans
        self.intake.replace(plans, policy_for(config))
        self.scheduler.replace(self.make_runtime(config), plans)
        self.announcer.reloaded(self.scheduler.runtime)
        for companion in self.companions:
            companion.reloaded(config)
        self._start_watches()
        self._scan_all()
        logger.info("config reloaded: {} folder(s)", len(plans))

    def _lock_folders(self, plans: list[FolderPlan]) -> None:
        locked: list[FolderPlan] = []
        try:
            for plan in plans:
                if plan.root.is_dir():
                    plan.lock()
                    locked.append(plan)
                    claim.ensure_places(plan.root, plan.archive, plan.failed)
        except BaseException:
            for plan in locked:
                plan.unlock()
            raise

    # --- watching --------------------------------------------------------------------------

    def _start_watches(self) -> None:
        hint = HintQueue(asyncio.get_running_loop(), self._hinted)
        for plan in self.plans:
            watch = FolderWatch(plan, hint, self._on_overflow)
            self.watches[plan.key] = watch
            self._start_watch(watch)

    def _start_watch(self, watch: FolderWatch) -> bool:
        key = watch.plan.key
        try:
            watch.start()
        except OSError as exc:
            if key not in self._unwatched:
                logger.error(
                    "cannot watch {} ({}); watching is tried again every {:g}s and rescans find "
                    "its files once it is back", watch.plan.root, exc.strerror or exc, HEALTH_EVERY,
                )  # fmt: skip
            self._unwatched.add(key)
            return False
        self._unwatched.discard(key)
        return True

    def _hinted(self, plan: FolderPlan, path: str, kind: HintKind) -> None:
        """An event (on the loop): a file that arrived complete is looked at now, not at the
        next tick; one that changed waits for its quiet period anyway."""
        self.intake.hint(plan, path, kind)
        if kind == "arrived":
            self._wake.set()

    def _stop_watches(self) -> None:
        for watch in self.watches.values():
            watch.stop()
        self.watches.clear()

    def _check_moved(self) -> None:
        """A watched folder that was moved away, deleted or replaced (same path, new folder)
        is watched and locked again at its path, or as soon as a folder is back there."""
        for plan in self.plans:
            if not plan.moved():
                continue
            logger.warning(
                "{} is no longer the folder that was watched (moved, deleted or replaced); "
                "watching the folder at that path again",
                plan.root,
            )
            plan.unlock()
            watch = self.watches.get(plan.key)
            if watch is not None:
                watch.stop()  # the health check starts it again once the folder is there
            self._check_watches()

    def _check_watches(self) -> None:
        """Restart dead observers (and rescan their folder); lock folders that came back."""
        for plan in self.plans:
            if plan.lock_file is None and plan.root.is_dir():
                try:
                    self._lock_folders([plan])
                except HotfolderError as exc:
                    logger.error("{}", exc)
                    continue
                recovery.reconcile(self.scheduler.journal, plan, busy=set(self.scheduler.inflight))
            there = plan.lock_file is not None  # locked: there and watched (or soon)
            self.announcer.folder(self.scheduler.runtime.pm, plan.root, reachable=there)
            watch = self.watches.get(plan.key)
            if watch is None or watch.alive():
                continue
            if watch.observer is not None:
                logger.warning("the watcher of {} stopped; restarting it and rescanning", plan.root)
            watch.stop()
            if self._start_watch(watch):
                self.intake.scan(plan)

    def _scan_all(self) -> None:
        started = time.monotonic()
        found = sum(self.intake.scan(plan) for plan in self.plans if plan.lock_file is not None)
        if found:
            logger.debug("scan found {} new file(s) in {:.2f}s", found, time.monotonic() - started)
