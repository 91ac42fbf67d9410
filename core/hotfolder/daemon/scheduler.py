"""Which queued job runs next, and what its outcome does to the journal and the files.

Limits: ``[daemon] concurrency`` jobs at once, and a folder's ``concurrency`` within it; the
Venice client's own limiter is shared by every job of the runtime. Retryable errors wait with
exponential backoff; after ``max_attempts`` a job fails: its original and ``<name>.error.json``
go to the failed place.

Pauses belong to the service that paused (:mod:`hotfolder.pauses`): a job that meets one is
*paused* (its files stay claimed, the attempt does not count), chains with paid steps are held
back while it lasts, and a :class:`~hotfolder.pauses.PauseWatch` probes the service every
``reprobe_seconds``; once nothing is paused (a probe passed, or a reloaded config made a new
client) the paused jobs are queued again. A pause error from a component that is not
:class:`~hotfolder.pauses.Pausable` cannot be probed: that job is tried again like any
retryable error.

Jobs waiting for something shared (a Venice rate slot) are journaled as such (meta ``waits``),
for ``hotfolder status``. A job whose output's place is full, read-only or gone
(:class:`~hotfolder.errors.StorageUnavailable`) is *held*: queued again with backoff, no attempt
used up, its folder named in meta ``held`` until a job of that folder writes again. A job
whose end the journal could not record (a full state dir) is left ``running`` in the journal;
:meth:`Scheduler.adopt_orphans` queues it again once the journal can be written.

A job's input is read, checked and hashed once: the scheduler resolves it through the runtime
(the path resolver and its local-file policy), keys the job by the input's sha256 and the
chain's digest to skip duplicates, then hands the resolved input to the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from loguru import logger

from hotfolder.components import JobInput
from hotfolder.daemon import claim
from hotfolder.daemon.announce import Announcer
from hotfolder.daemon.folders import FolderPlan, plan_folder
from hotfolder.daemon.journal import JobRow, Journal
from hotfolder.daemon.readiness import Signature
from hotfolder.daemon.settings import DaemonSection, FolderSection
from hotfolder.engine import Engine
from hotfolder.errors import (
    HotfolderError,
    OperationError,
    PluginError,
    UnsafeInputError,
)
from hotfolder.job import Job, JobResult
from hotfolder.localfiles import MANIFEST_SUFFIXES, LocalFilePolicy, policy_for, read_local
from hotfolder.pauses import Pausable, Pause, PauseWatch, iso_time, pauses_work
from hotfolder.prompts import prompt_digest
from hotfolder.runtime import Runtime
from hotfolder.waits import Wait

MAX_BACKOFF = 600.0
#: The longest wait between two tries of a job whose output's place cannot be written.
HOLD_MAX_SECONDS = 30.0
#: How often the services' own reports (meta ``services``) are looked at.
REPORT_EVERY_SECONDS = 1.0


class ChainRunner(Protocol):
    """Runs a job's chain somewhere else than in this process (the workers of a fleet,
    :class:`hotfolder.fleet.dispatch.FleetRunner`): returns the job's result, or raises its
    HotfolderError, as the engine would."""

    #: How many jobs may be out at once.
    capacity: int

    async def start(self, note: Callable[[str, Any], None]) -> None:
        """Start; ``note(name, value)`` journals what ``status`` shows (meta ``name``)."""

    async def aclose(self) -> None: ...

    async def run(
        self,
        job: Job,
        *,
        attempt: int,
        final: bool,
        chain_digest: str,
        step_timeout_seconds: float | None,
        src_sig: str | None,
    ) -> JobResult: ...


class Scheduler:
    """Runs queued jobs from the journal through the engine, within the limits; with a
    ``runner``, the chains run there (the input is still read, keyed and journaled here)."""

    def __init__(
        self,
        journal: Journal,
        runtime: Runtime,
        plans: list[FolderPlan],
        runner: ChainRunner | None = None,
    ) -> None:
        self.journal = journal
        self.runner = runner
        self.runtime = runtime
        self.plans = {p.key: p for p in plans}
        self.inflight: dict[str, tuple[asyncio.Task[None], str]] = {}
        self.watch = PauseWatch(
            lambda: self.runtime.services(), reprobe_seconds=self.settings.reprobe_seconds
        )
        self._shown_pause: dict[str, Any] | None = None
        self._shown_reports: list[Any] = []
        self._reported_at = 0.0
        self._announcer = Announcer()  # hotfolder_paused / hotfolder_resumed, once per change
        #: Whether jobs were paused since the last time they were all queued again.
        self._jobs_paused = False
        self._probing: asyncio.Task[bool] | None = None
        self._waits: dict[str, dict[str, str]] = {}
        #: job id -> input key, for the jobs running their chain now
        self._keys: dict[str, str] = {}
        #: job id -> the jobs with the same key waiting for its outcome
        self._twin_waiters: dict[str, list[str]] = {}
        #: job id -> how often its output could not be written; folder -> why (meta ``held``)
        self._holds: dict[str, int] = {}
        self._held_folders: dict[str, dict[str, str]] = {}
        self._runtime_users: dict[int, int] = {}
        self._retired: list[Runtime] = []
        self.wake = asyncio.Event()
        self.stopping = False

    @property
    def settings(self) -> DaemonSection:
        return self.runtime.config.section(DaemonSection)

    def paid_chains(self) -> set[str]:
        return {
            name for name, chain in self.runtime.config.chains.items()
            if any(step.op.paid for step in chain.steps)
        }  # fmt: skip

    # --- configuration ---------------------------------------------------------------------

    def replace(self, runtime: Runtime, plans: list[FolderPlan]) -> None:
        """Use a new runtime and folder set for jobs started from now on. Its services start
        unpaused, so paused jobs go on (and pause again if the cause remains)."""
        old = self.runtime
        self.runtime = runtime
        self.plans = {p.key: p for p in plans}
        self.watch.reprobe_seconds = self.settings.reprobe_seconds
        if self._runtime_users.get(id(old), 0) == 0:
            self._retired.append(old)
        self.wake.set()

    def plan_for(self, row: JobRow) -> FolderPlan:
        """The folder's plan; a folder no longer in the config keeps its default places."""
        if row.folder in self.plans:
            return self.plans[row.folder]
        return plan_folder(FolderSection.model_validate({"path": row.folder, "chain": row.chain}))

    # --- pausing ---------------------------------------------------------------------------

    @property
    def pause(self) -> Pause | None:
        """The pause in force, or None."""
        return self.watch.current()

    def _follow_pause(self) -> None:
        """Journal the pause for ``status``, probe it when due, and queue the paused jobs
        again once nothing is paused."""
        pause = self.watch.current()
        self._announcer.pause(self.runtime.pm, pause)
        shown = None
        if pause is not None:
            next_probe = self.watch.next_probe_at()
            shown = pause.to_dict() | {"next_probe": iso_time(next_probe) if next_probe else None}
        if shown != self._shown_pause:
            self._shown_pause = shown
            self._note("pause", shown)
        if pause is None:
            if self._jobs_paused and (n := self.journal.resume_paused()):
                logger.info("{} paused job(s) queued again", n)
            self._jobs_paused = False
            return
        if self.watch.due() and self._probing is None:
            self._probing = asyncio.create_task(self._probe(), name="pause probe")

    async def _probe(self) -> bool:
        try:
            return await self.watch.probe()
        finally:
            self._probing = None
            self.wake.set()

    def _report_services(self) -> None:
        """Journal what the runtime's services report of themselves (meta ``services``: the
        Venice client's rate limit now), at most every :data:`REPORT_EVERY_SECONDS` and only
        when it changed."""
        now = time.monotonic()
        if now - self._reported_at < REPORT_EVERY_SECONDS:
            return
        self._reported_at = now
        reports = [
            s.report() for s in self.runtime.services() if callable(getattr(s, "report", None))
        ]
        if reports != self._shown_reports:
            self._shown_reports = reports
            self._note("services", reports or None)

    def _paused_by(self, runtime: Runtime) -> bool:
        """Whether a service of ``runtime`` is paused (and so owns the pause a job met)."""
        return any(isinstance(s, Pausable) and s.pause for s in runtime.services())

    def _twin_in_flight(self, job_id: str, key: str) -> str | None:
        """Another job running the same bytes through the same chain now, if any: this one
        waits for its outcome rather than paying for the same work twice."""
        return next(
            (other for other, k in self._keys.items() if k == key and other != job_id), None
        )

    def note(self, name: str, value: Any) -> None:
        """Journal what ``status`` shows (meta ``name``), for the runner and companions."""
        self._note(name, value)

    def _note(self, name: str, value: Any) -> None:
        """Journal what ``status`` shows (meta ``name``); a journal that cannot be written
        now (a full state dir) does not stop the work it describes."""
        try:
            self.journal.set_meta(name, value)
        except sqlite3.Error as exc:
            logger.debug("cannot note {} in the journal: {}", name, exc)

    def _on_wait(self, job: Job, wait: Wait | None) -> None:
        if wait is None:
            self._waits.pop(job.id, None)
        else:
            self._waits[job.id] = {"what": wait.what, "since": iso_time(wait.since)}
        self._note("waits", self._waits or None)

    # --- dispatching -----------------------------------------------------------------------

    def dispatch(self) -> None:
        """Start as many runnable jobs as the limits allow."""
        if self.stopping:
            return
        self._follow_pause()
        self._report_services()
        limit = self.runner.capacity if self.runner else self.settings.concurrency
        while len(self.inflight) < limit:
            row = self._next()
            if row is None:
                return
            attempt = self.journal.start(row.id)
            task = asyncio.create_task(self._run(row, attempt), name=f"job {row.id}")
            self.inflight[row.id] = (task, row.folder)

    def _next(self) -> JobRow | None:
        running: dict[str, int] = {}
        for _, folder in self.inflight.values():
            running[folder] = running.get(folder, 0) + 1
        full = [
            key for key, n in running.items()
            if (c := self.plan_for_key(key).section.concurrency) is not None and n >= c
        ]  # fmt: skip
        rows = self.journal.runnable(
            1, exclude_folders=full, exclude_chains=self.paid_chains() if self.pause else ()
        )
        return rows[0] if rows else None

    def adopt_orphans(self) -> int:
        """Queue again the jobs the journal says are running but no task runs: the journal
        could not record their end. Their attempt is not counted."""
        orphans = [r for r in self.journal.jobs(states=["running"]) if r.id not in self.inflight]
        for row in orphans:
            self.journal.update(
                row.id, state="queued", attempts=max(0, row.attempts - 1), not_before=0
            )
        if orphans:
            self.wake.set()
        return len(orphans)

    def plan_for_key(self, key: str) -> FolderPlan:
        return self.plans.get(key) or plan_folder(
            FolderSection.model_validate({"path": key, "chain": "-"})
        )

    def next_wait(self) -> float:
        """Seconds until the scheduler wants to look again (a retry or a probe is due)."""
        wait = 1.0
        if (due := self.journal.next_wake()) is not None:
            wait = min(wait, max(0.0, due - time.time()))
        return wait

    # --- one job ---------------------------------------------------------------------------

    async def _run(self, row: JobRow, attempt: int) -> None:
        runtime = self.runtime
        self._runtime_users[id(runtime)] = self._runtime_users.get(id(runtime), 0) + 1
        try:
            await self._run_with(row, runtime, attempt)
        except sqlite3.Error as exc:  # the journal cannot be written (a full state dir)
            logger.error(
                "job {} ({}): the journal could not record its end ({}); it runs again once "
                "the journal can be written", row.id, row.name, exc,
            )  # fmt: skip
        except Exception as exc:  # finishing the job itself failed: never leave it running
            logger.exception("job {} ({}) could not be finished", row.id, row.name)
            await self._fail_as_last_resort(row, exc)
        finally:
            self._runtime_users[id(runtime)] -= 1
            self.inflight.pop(row.id, None)
            self._keys.pop(row.id, None)
            for waiter in self._twin_waiters.pop(row.id, []):  # their twin's outcome is in
                self.journal.update(waiter, not_before=0)
            if self._waits.pop(row.id, None) is not None:
                self._note("waits", self._waits or None)
            if runtime is not self.runtime and self._runtime_users[id(runtime)] == 0:
                del self._runtime_users[id(runtime)]
                self._retired.append(runtime)
            await self._close_retired()
            self.wake.set()

    async def _close_retired(self) -> None:
        while self._retired:
            await self._retired.pop().aclose()

    async def _run_with(self, row: JobRow, runtime: Runtime, attempt: int) -> None:
        plan = self.plan_for(row)
        settings = runtime.config.section(DaemonSection)
        if attempt > settings.max_attempts:
            # Earlier attempts ended with the daemon itself (a crash, kill -9, power loss).
            last = (row.error or {}).get("message", "the daemon stopped during each of them")
            error: HotfolderError = OperationError(
                f"gave up on {row.name} after {attempt - 1} attempts; the last: {last}",
                hint="see the log; fix the cause, then run: hotfolder retry " + row.id,
            )
            self.journal.update(row.id, attempts=attempt - 1)
            await self._fail(self.journal.get(row.id) or row, plan, error)
            return
        source = claim.input_path(plan.root, row.id, row.name)
        policy = policy_for(runtime.config)
        final = attempt >= settings.max_attempts
        try:
            if reason := claim.claimed_reason(source, policy):
                msg = f"{row.name} was not processed: {reason}"
                raise UnsafeInputError(msg)
            chain = runtime.config.chain(row.chain)
            job = Job(
                source=str(source),
                chain=row.chain,
                id=row.id,
                seq=row.seq,
                checkpoint_dir=claim.checkpoint_dir(plan.root, row.id),
                origin=str(plan.root / row.name),
                folder=plan.key,
                # where the original will go, for the done line and the sidecar (a name
                # taken in the archive by then gets the job id added: see claim.archive_target)
                archive={"delete": "deleted", "keep": "kept"}.get(plan.section.after)
                or str(plan.archive / time.strftime("%Y-%m-%d") / row.name),
            )
            engine = Engine(
                runtime, step_timeout=settings.step_timeout_seconds, on_wait=self._on_wait
            )
            job_input = await engine.resolve(job, final=final)
            digest = await asyncio.to_thread(_input_sha256, job_input, source, policy)
            key = digest + ":" + chain.digest
            self.journal.set_key(row.id, key)
            if plan.section.on_duplicate == "skip":
                if dup := self.journal.done_with_key(key):
                    await self._skip(row, plan, dup)
                    return
                if twin := self._twin_in_flight(row.id, key):
                    logger.info(
                        "{} (job {}) has the same bytes and chain as job {}, in flight: it "
                        "waits for that one's outcome", row.name, row.id, twin,
                    )  # fmt: skip
                    self._twin_waiters.setdefault(twin, []).append(row.id)
                    self.journal.update(
                        row.id, state="queued", attempts=attempt - 1, not_before=time.time() + 60
                    )
                    return
            self._keys[row.id] = key
            if self.runner is None:
                result = await engine.run(job, final=final, job_input=job_input)
            else:  # on a fleet's worker; the hooks hear of it here, where the job is owned
                remote = functools.partial(
                    self.runner.run,
                    job,
                    attempt=attempt,
                    final=final,
                    chain_digest=chain.digest,
                    step_timeout_seconds=settings.step_timeout_seconds,
                    src_sig=row.src_sig,
                )
                result = await engine.run_by(job, remote, final=final)
        except asyncio.CancelledError:
            # A graceful stop: the job goes back to the queue; this attempt does not count.
            self.journal.update(row.id, state="queued", attempts=attempt - 1)
            raise
        except HotfolderError as exc:
            # A worker's pause error paused the fleet's shared account (it may be lifted
            # already, by a probe here: then the job is queued again at once).
            if pauses_work(exc) and (self.runner is not None or self._paused_by(runtime)):
                logger.info("{} (job {}) waits for Venice work to resume", row.name, row.id)
                self.journal.update(
                    row.id, state="paused", attempts=attempt - 1, error=_error(exc, attempt)
                )
                self._jobs_paused = True
                self.wake.set()
                return
            # a file changed under the job fails its next read (see LocalFile): run it again
            if not await self._again_if_changed(source, row, plan, attempt):
                await self._after_error(row, plan, exc, attempt)
            return
        except Exception as exc:
            logger.exception("job {} ({}) hit a bug", row.id, row.name)
            error = PluginError(
                f"unexpected error: {exc!r}", hint="this is a bug; please report it"
            )
            await self._after_error(row, plan, error, attempt)
            return
        if await self._again_if_changed(source, row, plan, attempt):
            return
        self._unhold(row)
        await self._done(row, plan, result)

    async def _again_if_changed(
        self, source: Path, row: JobRow, plan: FolderPlan, attempt: int
    ) -> bool:
        """Queue the job again, this attempt not counted, when its file changed since it was
        claimed (a writer that still held it open): what came out, or the error, came from
        bytes that are no longer the file's."""
        if not (changed := _changed_since_claim(source, row)):
            return False
        logger.warning(
            "{} (job {}) changed while it was processed (size:mtime:inode {} -> {}): running "
            "it again on the new bytes", row.name, row.id, row.src_sig, changed,
        )  # fmt: skip
        await asyncio.to_thread(shutil.rmtree, claim.checkpoint_dir(plan.root, row.id), True)
        self.journal.update(
            row.id,
            state="queued",
            attempts=attempt - 1,
            not_before=time.time() + 0.5,
            src_sig=changed,
        )
        return True

    async def _after_error(
        self, row: JobRow, plan: FolderPlan, exc: HotfolderError, attempt: int
    ) -> None:
        if exc.holds:
            self._hold(row, exc, attempt)
            return
        max_attempts = self.settings.max_attempts
        # A pause error nobody can probe (not from a Pausable service) is tried again later.
        if (exc.retryable or pauses_work(exc)) and attempt < max_attempts:
            base = self.settings.retry_backoff_seconds
            delay = min(MAX_BACKOFF, base * 2 ** (attempt - 1))
            delay = max(delay, getattr(exc, "retry_after", None) or 0.0)
            logger.warning(
                "{} (job {}): {}; attempt {}/{}, trying again in {:g}s",
                row.name, row.id, exc, attempt, max_attempts, delay,
            )  # fmt: skip
            self.journal.update(
                row.id, state="queued", not_before=time.time() + delay, error=_error(exc, attempt)
            )
            return
        row = self.journal.get(row.id) or row
        await self._fail(row, plan, exc)

    def _hold(self, row: JobRow, exc: HotfolderError, attempt: int) -> None:
        """The job's output cannot be written for now (a full or read-only disk): it waits,
        with its paid steps saved and no attempt used up, and is tried again with backoff."""
        tries = self._holds.get(row.id, 0) + 1
        self._holds[row.id] = tries
        delay = min(
            HOLD_MAX_SECONDS, max(1.0, self.settings.retry_backoff_seconds) * 2 ** (tries - 1)
        )
        if row.folder not in self._held_folders:
            logger.error(
                "{}: an output cannot be written ({}); its jobs wait and are tried again, "
                "at least every {:g}s, until it can", row.folder, exc, HOLD_MAX_SECONDS,
            )  # fmt: skip
            self._held_folders[row.folder] = {"reason": str(exc), "since": iso_time(time.time())}
            self._note("held", self._held_folders)
        logger.debug("{} (job {}) waits {:g}s for its output's place", row.name, row.id, delay)
        self.journal.update(
            row.id,
            state="queued",
            attempts=attempt - 1,
            not_before=time.time() + delay,
            error=_error(exc, attempt),
        )

    def _unhold(self, row: JobRow) -> None:
        self._holds.pop(row.id, None)
        if self._held_folders.pop(row.folder, None) is not None:
            logger.info("{}: outputs can be written again; its waiting jobs go on", row.folder)
            self._note("held", self._held_folders or None)

    async def _fail(self, row: JobRow, plan: FolderPlan, exc: HotfolderError) -> None:
        target = claim.failed_target(plan.failed, row.name, row.id)
        info = _error(exc, row.attempts) | {
            "job": row.id,
            "file": row.name,
            "folder": row.folder,
            "chain": row.chain,
        }
        logger.bind(step=exc.step, hint=exc.hint).error(
            "{} failed (job {}): {}; moved to {}", row.name, row.id, exc, target
        )
        self.journal.update(
            row.id, state="failed", error=info, place=str(target), finished=time.time()
        )
        await _finish(_write_error_and_move, plan.root, row, target, info)

    async def _fail_as_last_resort(self, row: JobRow, exc: Exception) -> None:
        """Mark the job failed and keep its original under ``<failed>/<job-id>/``, a place
        whose name cannot clash or be too long, with the error beside it."""
        plan = self.plan_for(row)
        target = claim.fitting_name(plan.failed / row.id / PurePosixPath(row.name).name)
        info = PluginError(
            f"{row.name} could not be finished: {exc!r}",
            hint="this is a bug; please report it with the log. The original is kept here; "
            "hotfolder retry " + row.id + " runs it again",
        ).to_dict() | {"job": row.id, "file": row.name, "folder": row.folder, "chain": row.chain}
        info |= {"attempts": row.attempts, "time": iso_time(time.time())}
        try:
            self.journal.update(
                row.id, state="failed", error=info, place=str(target), finished=time.time()
            )
            await _finish(_write_error_and_move, plan.root, row, target, info)
        except Exception:
            logger.exception(
                "job {} could not be moved to the failed place either; its original stays in {}",
                row.id,
                claim.input_path(plan.root, row.id, row.name),
            )

    async def _skip(self, row: JobRow, plan: FolderPlan, dup: JobRow) -> None:
        place = self._final_place(row, plan)
        logger.info(
            "{} (job {}) is the same as job {}, already done: skipped (to run it again, set "
            'on_duplicate = "reprocess" on the folder)',
            row.name,
            row.id,
            dup.id,
        )
        self.journal.update(
            row.id,
            state="skipped",
            place=place,
            finished=time.time(),
            outputs=dup.outputs,
            error={"class": "Duplicate", "message": f"same bytes and chain as job {dup.id}"},
        )
        await _finish(claim.finish_move, plan.root, row.id, row.name, place)

    async def _done(self, row: JobRow, plan: FolderPlan, result: Any) -> None:
        place = self._final_place(row, plan)
        self.journal.update(
            row.id,
            state="done",
            place=place,
            finished=time.time(),
            cost_usd=result.cost_usd,
            simulated_usd=result.simulated_usd,
            outputs=[o.to_dict() for o in result.outputs],
            error=None,
        )
        await _finish(claim.finish_move, plan.root, row.id, row.name, place)

    def _final_place(self, row: JobRow, plan: FolderPlan) -> str:
        after = plan.section.after
        if after == "delete":
            return "deleted"
        if after == "keep":
            return "kept"
        return str(claim.archive_target(plan.archive, row.name, row.id))

    # --- stopping --------------------------------------------------------------------------

    async def drain(self, grace: float) -> None:
        """Take no new jobs; let running ones finish for ``grace`` seconds, then stop them
        (they stay queued, with their checkpoints, for the next start)."""
        self.stopping = True
        tasks = [task for task, _ in self.inflight.values()]
        if not tasks:
            return
        logger.info("waiting up to {:g}s for {} running job(s)", grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning("{} job(s) stopped and left queued for the next start", len(pending))
            await asyncio.wait(pending)

    async def aclose(self) -> None:
        if self.runner is not None:
            await self.runner.aclose()
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing
        await self._close_retired()
        await self.runtime.aclose()


async def _finish(func: Callable[..., None], *args: Any) -> None:
    """Move the files of a job whose outcome is journaled; a stop does not interrupt it."""
    await asyncio.shield(asyncio.to_thread(func, *args))


def _write_error_and_move(root: Path, row: JobRow, target: Path, info: dict[str, Any]) -> None:
    claim.write_error(target, info)
    claim.finish_move(root, row.id, row.name, str(target), keep_checkpoints=True)


def _error(exc: HotfolderError, attempts: int) -> dict[str, Any]:
    data = exc.to_dict()
    data.setdefault("status", None)
    data.setdefault("request_id", None)
    data["attempts"] = attempts
    data["time"] = iso_time(time.time())
    return data


def _changed_since_claim(source: Path, row: JobRow) -> str | None:
    """The claimed file's signature if it changed since it was claimed (a writer that still
    held it open wrote on), else None."""
    if row.src_sig is None:
        return None
    try:
        now = str(Signature.of(os.lstat(source)))
    except FileNotFoundError:
        return None  # judged by the move that follows
    return None if now == row.src_sig else now


def _input_sha256(job_input: JobInput, source: Path, policy: LocalFilePolicy) -> str:
    """The sha256 of the claimed file's bytes: the resolved image's (computed once, cached on
    the artifact), or for a job manifest the manifest's own (two manifests naming the same
    first image may differ in chain, overrides and other images). An image claimed with a
    prompt file is keyed by both: the same image with another prompt is another job."""
    if source.name.lower().endswith(MANIFEST_SUFFIXES):
        return hashlib.sha256(read_local(source, policy)).hexdigest()
    if (prompt := prompt_digest(source)) is not None:
        return hashlib.sha256(f"{job_input.artifact.sha256}:{prompt}".encode()).hexdigest()
    return job_input.artifact.sha256
