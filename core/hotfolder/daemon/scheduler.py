"""Which queued job runs next, and what its outcome does to the journal and the files.

Limits: ``[daemon] concurrency`` jobs at once, and a folder's ``concurrency`` within it; the
Venice client's own limiter is shared by every job of the runtime. A Venice 401/403 or 402, or
the daily budget, *pauses* the job (its files stay claimed) and every chain with a paid step,
until a config reload, a successful re-probe (one paused job tried every ``reprobe_seconds``)
or, for the budget, the next local day. Retryable errors wait with exponential backoff; after
``max_attempts`` a job fails: its original and ``<name>.error.json`` go to the failed place.

A job's input is read, checked and hashed once: the scheduler resolves it through the runtime
(the path resolver and its local-file policy), keys the job by the input's sha256 and the
chain's digest to skip duplicates, then hands the resolved input to the engine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from hotfolder.components import JobInput
from hotfolder.daemon import claim
from hotfolder.daemon.folders import FolderPlan, plan_folder
from hotfolder.daemon.journal import JobRow, Journal
from hotfolder.daemon.settings import DaemonSection, FolderSection
from hotfolder.engine import Engine
from hotfolder.errors import (
    AuthError,
    BalanceError,
    BudgetExceeded,
    HotfolderError,
    OperationError,
    PluginError,
    UnsafeInputError,
    VeniceError,
)
from hotfolder.job import Job
from hotfolder.localfiles import MANIFEST_SUFFIXES, LocalFilePolicy, policy_for, read_local
from hotfolder.runtime import Runtime

MAX_BACKOFF = 600.0


@dataclass
class Pause:
    """Why Venice work is paused, and when it is tried again."""

    kind: str  # auth | balance | budget
    reason: str
    since: float
    retry_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "since": _iso(self.since),
            "retry_at": _iso(self.retry_at),
        }


class Scheduler:
    """Runs queued jobs from the journal through the engine, within the limits."""

    def __init__(self, journal: Journal, runtime: Runtime, plans: list[FolderPlan]) -> None:
        self.journal = journal
        self.runtime = runtime
        self.plans = {p.key: p for p in plans}
        self.inflight: dict[str, tuple[asyncio.Task[None], str]] = {}
        self.pause: Pause | None = None
        self._probe: str | None = None
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
        """Use a new runtime and folder set for jobs started from now on; lift any pause."""
        old = self.runtime
        self.runtime = runtime
        self.plans = {p.key: p for p in plans}
        if self._runtime_users.get(id(old), 0) == 0:
            self._retired.append(old)
        self.resume("the config was reloaded")

    def plan_for(self, row: JobRow) -> FolderPlan:
        """The folder's plan; a folder no longer in the config keeps its default places."""
        if row.folder in self.plans:
            return self.plans[row.folder]
        return plan_folder(FolderSection.model_validate({"path": row.folder, "chain": row.chain}))

    # --- pausing ---------------------------------------------------------------------------

    def pause_for(self, exc: HotfolderError) -> None:
        now = time.time()
        if isinstance(exc, BudgetExceeded):
            kind, retry_at = "budget", _next_local_midnight(now)
        else:
            kind = "auth" if isinstance(exc, AuthError) else "balance"
            retry_at = now + self.settings.reprobe_seconds
        if self.pause is None:
            logger.error(
                "Venice work paused ({}): {}; local-only chains go on; retrying at {}",
                kind, exc, _iso(retry_at),
            )  # fmt: skip
        self.pause = Pause(kind, str(exc), self.pause.since if self.pause else now, retry_at)
        self.journal.set_meta("pause", self.pause.to_dict())

    def resume(self, why: str) -> None:
        if self.pause is not None:
            logger.info("Venice work resumes: {}", why)
        self.pause = None
        self._probe = None
        self.journal.set_meta("pause", None)
        if n := self.journal.resume_paused():
            logger.info("{} paused job(s) queued again", n)
        self.wake.set()

    def _maybe_probe(self) -> None:
        """While paused, let one paused job through every ``reprobe_seconds``."""
        if self.pause is None or self._probe is not None or time.time() < self.pause.retry_at:
            return
        paused = self.journal.jobs(states=["paused"])
        if not paused:
            self.resume("nothing is waiting for Venice")
            return
        self._probe = paused[0].id
        self.journal.update(self._probe, state="queued", not_before=0)
        logger.info("Venice work is paused; trying job {} to see whether it can go on", self._probe)

    # --- dispatching -----------------------------------------------------------------------

    def dispatch(self) -> None:
        """Start as many runnable jobs as the limits allow."""
        if self.stopping:
            return
        self._maybe_probe()
        limit = self.settings.concurrency
        while len(self.inflight) < limit:
            row = self._next()
            if row is None:
                return
            attempt = self.journal.start(row.id)
            task = asyncio.create_task(self._run(row, attempt), name=f"job {row.id}")
            self.inflight[row.id] = (task, row.folder)

    def _next(self) -> JobRow | None:
        if self._probe and self._probe not in self.inflight:
            probe = self.journal.get(self._probe)
            if probe is not None and probe.state == "queued":
                return probe
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
        finally:
            self._runtime_users[id(runtime)] -= 1
            self.inflight.pop(row.id, None)
            if self._probe == row.id:
                self._probe = None
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
            )
            engine = Engine(runtime, step_timeout=settings.step_timeout_seconds)
            job_input = await engine.resolve(job, final=final)
            digest = await asyncio.to_thread(_input_sha256, job_input, source, policy)
            key = digest + ":" + chain.digest
            self.journal.update(row.id, key=key)
            if plan.section.on_duplicate == "skip" and (dup := self.journal.done_with_key(key)):
                await self._skip(row, plan, dup)
                return
            result = await engine.run(job, final=final, job_input=job_input)
        except asyncio.CancelledError:
            # A graceful stop: the job goes back to the queue; this attempt does not count.
            self.journal.update(row.id, state="queued", attempts=attempt - 1)
            raise
        except (AuthError, BalanceError, BudgetExceeded) as exc:
            self.journal.update(
                row.id, state="paused", attempts=attempt - 1, error=_error(exc, attempt)
            )
            self.pause_for(exc)
            return
        except HotfolderError as exc:
            await self._after_error(row, plan, exc, attempt)
            return
        except Exception as exc:
            logger.exception("job {} ({}) hit a bug", row.id, row.name)
            error = PluginError(
                f"unexpected error: {exc!r}", hint="this is a bug; please report it"
            )
            await self._after_error(row, plan, error, attempt)
            return
        if self._probe == row.id or (self.pause and row.chain in self.paid_chains()):
            self.resume(f"job {row.id} went through")
        await self._done(row, plan, result)

    async def _after_error(
        self, row: JobRow, plan: FolderPlan, exc: HotfolderError, attempt: int
    ) -> None:
        if self._probe == row.id and self.pause is not None and isinstance(exc, VeniceError):
            self.resume(f"job {row.id} reached Venice")
        max_attempts = self.settings.max_attempts
        if exc.retryable and attempt < max_attempts:
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

    async def _fail(self, row: JobRow, plan: FolderPlan, exc: HotfolderError) -> None:
        target = claim.failed_target(plan.failed, row.name, row.id)
        info = _error(exc, row.attempts) | {
            "job": row.id,
            "file": row.name,
            "folder": row.folder,
            "chain": row.chain,
        }
        logger.error("{} failed (job {}): {}; moved to {}", row.name, row.id, exc, target)
        self.journal.update(
            row.id, state="failed", error=info, place=str(target), finished=time.time()
        )
        await _finish(_write_error_and_move, plan.root, row, target, info)

    async def _skip(self, row: JobRow, plan: FolderPlan, dup: JobRow) -> None:
        place = self._final_place(row, plan)
        logger.info(
            "{} (job {}) is the same as job {}, already done: skipped", row.name, row.id, dup.id
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
        await self._close_retired()
        await self.runtime.aclose()


async def _finish(func: Callable[..., None], *args: Any) -> None:
    """Move the files of a job whose outcome is journaled; a stop does not interrupt it."""
    await asyncio.shield(asyncio.to_thread(func, *args))


def _write_error_and_move(root: Path, row: JobRow, target: Path, info: dict[str, Any]) -> None:
    claim.write_error(target, info)
    claim.finish_move(root, row.id, row.name, str(target))


def _error(exc: HotfolderError, attempts: int) -> dict[str, Any]:
    data = exc.to_dict()
    data.setdefault("status", None)
    data.setdefault("request_id", None)
    data["attempts"] = attempts
    data["time"] = _iso(time.time())
    return data


def _input_sha256(job_input: JobInput, source: Path, policy: LocalFilePolicy) -> str:
    """The sha256 of the claimed file's bytes: the resolved image's (computed once, cached on
    the artifact), or for a job manifest the manifest's own (two manifests naming the same
    first image may differ in chain, overrides and other images)."""
    if source.name.lower().endswith(MANIFEST_SUFFIXES):
        return hashlib.sha256(read_local(source, policy)).hexdigest()
    return job_input.artifact.sha256


def _next_local_midnight(now: float) -> float:
    today = dt.datetime.fromtimestamp(now).date()
    midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time())
    return midnight.timestamp()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")
