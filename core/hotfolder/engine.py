"""Run one job through one chain: resolve the input, run each step, write every output.

The engine knows nothing of folders, journals or schedules; the CLI's ``process`` and the
daemon both hand it a :class:`~hotfolder.job.Job` and get a
:class:`~hotfolder.job.JobResult` or a :class:`~hotfolder.errors.HotfolderError`. The daemon
resolves the input first (:meth:`Engine.resolve`) to key the job by its bytes, and hands it to
:meth:`Engine.run`, so the file is read once.

A paid step's result is saved in the job's ``checkpoint_dir`` before the next step starts, so
a job that is run again (after a crash, a pause, a later failure) never pays for it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from hotfolder.artifact import Artifact
from hotfolder.components import JobInput, SinkContext, StepContext
from hotfolder.config import Chain, StepSpec
from hotfolder.errors import (
    ConfigError,
    HotfolderError,
    PluginError,
    StepTimeout,
)
from hotfolder.fsutil import atomic_write
from hotfolder.job import Job, JobResult, Output, StepRecord
from hotfolder.pauses import pauses_work
from hotfolder.plugins import call_observers
from hotfolder.runtime import Runtime, call_component
from hotfolder.waits import StepWaits, Wait, WaitObserver, step_waits

#: Hears when a job starts and stops waiting for something shared (see :mod:`hotfolder.waits`).
JobWaitObserver = Callable[[Job, Wait | None], None]
_job_observer: ContextVar[WaitObserver | None] = ContextVar("hotfolder_job_observer", default=None)


@dataclass(frozen=True)
class PlannedStep:
    """What ``--dry-run`` shows for one step."""

    index: int
    op: str
    params: dict[str, Any]
    paid: bool
    estimate_usd: float | None


class Engine:
    """Runs jobs against one :class:`Runtime`; ``step_timeout`` (seconds) bounds each step
    and each sink, raising :class:`~hotfolder.errors.StepTimeout` past it. Time a step spends
    waiting for something shared (a Venice rate slot) does not count; ``on_wait`` hears when
    a job starts and stops such a wait."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        step_timeout: float | None = None,
        on_wait: JobWaitObserver | None = None,
    ) -> None:
        self.runtime = runtime
        self.step_timeout = step_timeout
        self.on_wait = on_wait

    def plan(self, job: Job) -> list[PlannedStep]:
        """The steps ``job`` would run, which are paid calls, and their estimated cost."""
        chain = self.runtime.config.chain(job.chain)
        planned = []
        for i, spec in enumerate(chain.steps):
            op = spec.instantiate(job.overrides.get(i))
            planned.append(
                PlannedStep(
                    i,
                    op.name,
                    op.params.model_dump(mode="json", exclude_defaults=True),
                    op.paid,
                    op.estimate_usd(self.runtime),
                )
            )
        return planned

    async def run(
        self, job: Job, *, final: bool = True, job_input: JobInput | None = None
    ) -> JobResult:
        """Run ``job``; on failure the lifecycle hooks hear of it and the error is raised.

        ``final=False`` says the caller will try the job again after a retryable error; the
        ``hotfolder_job_failed`` hook is then kept for the attempt that fails for good.
        ``job_input`` is the job's input when the caller resolved it already with
        :meth:`resolve`; else ``job.source`` is resolved here.
        """
        return await self.run_by(job, lambda: self._run(job, job_input), final=final)

    async def run_by(
        self, job: Job, run: Callable[[], Awaitable[JobResult]], *, final: bool = True
    ) -> JobResult:
        """Like :meth:`run`, for a job whose chain ``run()`` runs (a fleet's worker, which
        returns the result it sent back): the lifecycle hooks hear of the job here, in the
        process that owns it."""
        pm = self.runtime.pm
        # Every line logged while the job runs carries it (the fields of --log-format json).
        with logger.contextualize(job=job.id, file=job.display, folder=job.folder, chain=job.chain):
            call_observers(pm, "hotfolder_job_started", job=job)
            try:
                result = await run()
            except HotfolderError as exc:
                self._failed(job, exc, final)
                raise
            call_observers(pm, "hotfolder_job_succeeded", job=job, result=result)
        return result

    async def resolve(self, job: Job, *, final: bool = True) -> JobInput:
        """Resolve ``job.source``, the first thing :meth:`run` does, for a caller that needs the
        input before it runs the job (the daemon keys a job by its bytes to skip duplicates);
        it then hands the result to :meth:`run` as ``job_input``.

        A failure is reported to the lifecycle hooks as :meth:`run` reports it (the job
        started, then failed), and raised.
        """
        try:
            return await self.runtime.resolve(
                job.source, base_dir=job.base_dir, origin=job.origin_path
            )
        except HotfolderError as exc:
            call_observers(self.runtime.pm, "hotfolder_job_started", job=job)
            self._failed(job, exc, final)
            raise

    def _failed(self, job: Job, exc: HotfolderError, final: bool) -> None:
        if not pauses_work(exc) and (final or not exc.retryable):
            call_observers(self.runtime.pm, "hotfolder_job_failed", job=job, error=exc)

    async def _run(self, job: Job, job_input: JobInput | None) -> JobResult:
        on_wait = self.on_wait
        token = _job_observer.set((lambda wait: on_wait(job, wait)) if on_wait else None)
        try:
            return await self._run_steps(job, job_input)
        finally:
            _job_observer.reset(token)

    async def _run_steps(self, job: Job, job_input: JobInput | None) -> JobResult:
        started = time.monotonic()
        if job_input is None:
            job_input = await self.runtime.resolve(
                job.source, base_dir=job.base_dir, origin=job.origin_path
            )
        job.chain = job_input.chain or job.chain
        for index, params in job_input.overrides.items():
            job.overrides.setdefault(index, {}).update(params)
        job.extra_refs = job.extra_refs or job_input.extra_refs
        job.base_dir = job.base_dir or job_input.base_dir
        chain = self.runtime.config.chain(job.chain)
        _check_overrides(job, chain)

        artifact = job_input.artifact
        input_sha256 = await asyncio.to_thread(lambda: artifact.sha256)
        records: list[StepRecord] = []
        for index, spec in enumerate(chain.steps):
            artifact, record = await self._step(job, index, spec, artifact)
            records.append(record)

        # What the steps made must come from the file as it is: one written to meanwhile is
        # not delivered (the daemon runs it again on the new bytes).
        if (source := job_input.artifact.source_file) is not None:
            await asyncio.to_thread(source.check)
        outputs: list[Output] = []
        for output in chain.outputs:
            sink = output.instantiate()
            context = SinkContext(job, self.runtime, records, list(outputs), input_sha256)
            async with self._time_limit(f"output {sink.name!r}"):
                written = await call_component(sink, sink.write, context, artifact)
            outputs.extend(written)
        seconds = time.monotonic() - started
        logger.info(
            "{} done in {:.2f}s: {}{}",
            job.display,
            seconds,
            ", ".join(o.location for o in outputs),
            _original_place(job.archive),
        )
        return JobResult(job, input_sha256, records, outputs, seconds)

    async def _step(
        self, job: Job, index: int, spec: StepSpec, artifact: Artifact
    ) -> tuple[Artifact, StepRecord]:
        # Every line logged during the step carries it (a field of --log-format json).
        with logger.contextualize(step=f"{index}:{spec.op.name}"):
            return await self._run_step(job, index, spec, artifact)

    async def _run_step(
        self, job: Job, index: int, spec: StepSpec, artifact: Artifact
    ) -> tuple[Artifact, StepRecord]:
        op = spec.instantiate(job.overrides.get(index))
        record = StepRecord(
            index=index,
            op=op.name,
            params=op.params.model_dump(mode="json", exclude_defaults=True),
            paid=op.paid,
        )
        checkpoint = _Checkpoint(job.checkpoint_dir, index) if op.paid else None
        saved = await asyncio.to_thread(checkpoint.load, artifact, record) if checkpoint else None
        if saved:
            saved_artifact, saved_record = saved
            saved_record.from_checkpoint = True
            if artifact.simulated and not saved_artifact.simulated:
                saved_artifact = saved_artifact.with_info(simulated=True)
            # a checkpoint saved before StepRecord.simulated existed says it in its info only
            saved_record.simulated = saved_record.simulated or saved_artifact.simulated
            logger.info("{} step {} ({}): reused the saved result", job.display, index, op.name)
            return saved_artifact, saved_record
        context = StepContext(job=job, index=index, runtime=self.runtime, record=record)
        # What a checkpoint is matched by: the parameters as configured (a step may record
        # what it sent instead, such as a prompt with the job's prompt file in it).
        configured = dict(record.params)
        started = time.monotonic()
        try:
            async with self._time_limit(f"step {index} ({op.name})"):
                result = await call_component(op, op.run, context, artifact)
        except HotfolderError as exc:
            exc.step = f"{index}:{op.name}"
            raise
        record.seconds = round(time.monotonic() - started, 4)
        if not isinstance(result, Artifact):
            msg = f"operation {op.name!r} returned {type(result).__name__}, not an Artifact"
            raise PluginError(msg, hint="this is a bug in that plugin")
        if artifact.simulated and not result.simulated:
            # made from simulated pixels, even by an operation that dropped the input's info
            result = result.with_info(simulated=True)
        record.simulated = op.paid and result.simulated
        if checkpoint:
            await asyncio.to_thread(checkpoint.save, result, record, configured)
        logger.debug("{} step {} ({}) took {:.3f}s", job.display, index, op.name, record.seconds)
        return result, record

    @contextlib.asynccontextmanager
    async def _time_limit(self, what: str) -> AsyncIterator[None]:
        """``what`` may take ``step_timeout`` seconds, not counting its waits for something
        shared. A step in a worker thread cannot be stopped; the job moves on without it and
        its late result is dropped."""
        observer = _job_observer.get()
        if self.step_timeout is None:
            with step_waits(StepWaits(None, observer)):
                yield
            return
        try:
            async with asyncio.timeout(self.step_timeout) as timeout:
                with step_waits(StepWaits(timeout, observer)):
                    yield
        except TimeoutError:
            msg = f"{what} took longer than {self.step_timeout:g}s"
            hint = "raise [daemon] step_timeout_seconds if such inputs need longer"
            raise StepTimeout(msg, hint=hint) from None


def _original_place(archive: str | None) -> str:
    """What the done line says of the original (``Job.archive``)."""
    if archive is None:
        return ""
    if archive in ("deleted", "kept"):
        return f"; the original is {'deleted' if archive == 'deleted' else 'kept in place'}"
    return f"; the original is archived as {archive}"


def _check_overrides(job: Job, chain: Chain) -> None:
    for index in job.overrides:
        if not 0 <= index < len(chain.steps):
            last = len(chain.steps) - 1
            msg = f"an override names step {index}, but chain {chain.name!r} has steps 0-{last}"
            raise ConfigError(msg, hint="steps are counted from 0")


class _Checkpoint:
    """The saved result of one paid step: ``step-<i>.<ext>`` and ``step-<i>.json``."""

    def __init__(self, folder: Path | None, index: int) -> None:
        self.folder = folder
        self.index = index

    def _meta(self) -> Path:
        assert self.folder is not None
        return self.folder / f"step-{self.index}.json"

    def load(self, current: Artifact, record: StepRecord) -> tuple[Artifact, StepRecord] | None:
        """The saved result, if one was saved for this same operation and parameters (a
        config reloaded in between may have changed them: the step then runs again)."""
        if self.folder is None or not self._meta().is_file():
            return None
        meta = json.loads(self._meta().read_text())
        saved = meta["record"]
        if (saved["op"], meta.get("configured", saved["params"])) != (record.op, record.params):
            logger.info("step {} ({}) changed since its result was saved; running it again",
                        self.index, record.op)  # fmt: skip
            return None
        data = (self.folder / meta["file"]).read_bytes()
        artifact = Artifact.from_bytes(data, name=current.name, limits=current.limits)
        artifact.info.update(meta.get("info", {}))
        return artifact, StepRecord(**meta["record"])

    def save(self, artifact: Artifact, record: StepRecord, configured: dict[str, Any]) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"step-{self.index}.{artifact.extension}"
        atomic_write(self.folder / name, artifact.data)
        meta = {
            "file": name,
            "info": artifact.info,
            "record": record.to_dict(),
            "configured": configured,
        }
        atomic_write(self._meta(), json.dumps(meta, default=str).encode())
