"""The watcher's side of a fleet: send each job to the workers, wait for its outcome.

:class:`FleetRunner` stands where the engine stands in a local daemon: the scheduler claims,
keys and journals a job as always, then awaits :meth:`FleetRunner.run`, which sends the job
as a :class:`~hotfolder.fleet.messages.JobMessage` and returns when a worker's
:class:`~hotfolder.fleet.messages.Outcome` comes back (or raises the error it carries). The
outcomes queue is consumed by a Dramatiq worker inside this process, one thread.

Nothing is lost while Redis is away: a job that cannot be sent waits (it stays ``running`` in
the journal, claimed) and is sent once Redis is back. Every ``heartbeat_seconds`` the runner
checks that each job out still has its message in Redis (queued, or taken by a living
worker); one whose message is gone (Redis restarted without its data, a dead-lettered
message) is sent again. A worker never runs a job twice: one that finished leaves its
outcome beside the job's checkpoints (``outcome.json``) and answers a repeated message with
it. Every second, the jobs out that wait on their workers for something shared (a Venice
rate slot) are noted for ``status``, as the jobs a local daemon runs are.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from loguru import logger

from hotfolder.fleet import broker as fleet_broker
from hotfolder.fleet.messages import JobMessage, Outcome
from hotfolder.fleet.roster import fleet_snapshot, jobs_waiting
from hotfolder.fleet.settings import ExecutorSection
from hotfolder.fleet.worker import CONSUMER_POLL_MS
from hotfolder.job import Job, JobResult

#: How often the jobs out are asked for their waits on the workers.
WAITS_EVERY_SECONDS = 1.0


@dataclass
class _Out:
    """A job sent and not yet answered."""

    message: JobMessage
    future: asyncio.Future[Outcome]
    redis_id: str | None = None
    sent_at: float = 0.0
    missing_checks: int = 0


class FleetRunner:
    """Runs chains on the fleet's workers (a
    :class:`~hotfolder.daemon.scheduler.ChainRunner`)."""

    def __init__(self, settings: ExecutorSection, *, broker: dramatiq.Broker | None = None) -> None:
        self.settings = settings
        self.capacity = settings.jobs_out
        self.broker = broker or fleet_broker.make_broker(settings)
        self.jobs_queue = fleet_broker.jobs_queue(settings)
        self.outcomes_queue = fleet_broker.outcomes_queue(settings)
        self._note: Callable[[str, Any], None] | None = None
        self._out: dict[str, _Out] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: dramatiq.Worker | None = None
        self._checker: asyncio.Task[None] | None = None
        self._wait_watcher: asyncio.Task[None] | None = None
        self._redis_down = False
        self._sender = threading.Lock()

    # --- life ------------------------------------------------------------------------------

    async def start(self, note: Callable[[str, Any], None] | None = None) -> None:
        """Start consuming outcomes and checking the jobs out; ``note("fleet", ...)`` hears
        the fleet's state (workers seen, queue length) every ``heartbeat_seconds``."""
        self._note = note
        self._loop = asyncio.get_running_loop()
        fleet_broker.declare(self.broker, fleet_broker.JOB_OUTCOME, self.outcomes_queue,
                             self._on_outcome)  # fmt: skip
        self.broker.declare_queue(self.jobs_queue)
        self._worker = dramatiq.Worker(
            self.broker,
            queues={self.outcomes_queue},
            worker_threads=1,
            worker_timeout=CONSUMER_POLL_MS,
        )
        await asyncio.to_thread(self._worker.start)
        self._checker = asyncio.create_task(self._check_forever(), name="fleet check")
        self._wait_watcher = asyncio.create_task(self._waits_forever(), name="fleet waits")
        logger.info(
            "executor: dramatiq; jobs go to the workers of queue {} (at most {} out at once)",
            self.jobs_queue,
            self.capacity,
        )

    async def aclose(self) -> None:
        for task in (self._checker, self._wait_watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._worker is not None:
            await asyncio.to_thread(self._worker.stop, 5000)
        await asyncio.to_thread(self.broker.close)

    # --- one job ---------------------------------------------------------------------------

    async def run(
        self,
        job: Job,
        *,
        attempt: int,
        final: bool,
        chain_digest: str,
        step_timeout_seconds: float | None,
        src_sig: str | None,
    ) -> JobResult:
        """Send ``job`` to the workers and wait for its outcome: its result, as the engine
        would have returned it; or raise the error it carries."""
        assert self._loop is not None, "FleetRunner.start() first"
        message = JobMessage.of(
            job,
            attempt=attempt,
            chain_digest=chain_digest,
            final=final,
            step_timeout_seconds=step_timeout_seconds,
            src_sig=src_sig,
        )
        out = _Out(message, self._loop.create_future())
        self._out[job.id] = out
        try:
            await self._send(out)
            outcome = await out.future
        finally:
            self._out.pop(job.id, None)
        if outcome.state == "error":
            outcome.raise_error()
        logger.debug("job {} done on worker {}", job.id, outcome.worker)
        return outcome.result(job)

    async def _send(self, out: _Out) -> None:
        """Enqueue the job's message; while Redis cannot be reached, wait and try again."""
        delay = 0.5
        while True:
            try:
                sent = await asyncio.to_thread(self._enqueue, out.message)
            except redis.RedisError as exc:
                if not self._redis_down:
                    self._redis_down = True
                    logger.error(
                        "cannot send jobs to the workers: Redis is not reachable ({}); files "
                        "are still claimed and journaled, and jobs go out once it is back",
                        exc,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._redis_down:
                self._redis_down = False
                logger.info("Redis is reachable again; sending jobs to the workers")
            out.redis_id = sent.options.get("redis_message_id")
            out.sent_at, out.missing_checks = time.monotonic(), 0
            return

    def _enqueue(self, message: JobMessage) -> dramatiq.Message[Any]:
        data = fleet_broker.message(fleet_broker.RUN_JOB, self.jobs_queue, message.to_dict())
        with self._sender:
            return self.broker.enqueue(data)

    # --- outcomes --------------------------------------------------------------------------

    def _on_outcome(self, data: dict[str, Any]) -> None:
        """The outcome actor, on Dramatiq's thread: hand the outcome to the loop."""
        assert self._loop is not None
        outcome = Outcome.from_dict(data)
        self._loop.call_soon_threadsafe(self._deliver, outcome)

    def _deliver(self, outcome: Outcome) -> None:
        out = self._out.get(outcome.job_id)
        if out is None or out.future.done():
            logger.debug("outcome of job {} from {}: nobody waits for it (a repeat, or from "
                         "before a restart)", outcome.job_id, outcome.worker)  # fmt: skip
            return
        out.future.set_result(outcome)

    # --- checking --------------------------------------------------------------------------

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self._check()
            except redis.RedisError as exc:
                logger.debug("cannot check the jobs out: {}", exc)
            except Exception:
                logger.exception("checking the jobs out failed")

    async def _check(self) -> None:
        """Send again every job whose message Redis no longer has (checked twice)."""
        if not isinstance(self.broker, RedisBroker):
            return  # a stub broker in tests keeps its messages
        now = time.monotonic()
        due = [
            out
            for out in self._out.values()
            if out.redis_id and not out.future.done()
            and now - out.sent_at >= self.settings.heartbeat_seconds
        ]  # fmt: skip
        if due:
            known = await asyncio.to_thread(self._known, [o.redis_id or "" for o in due])
            for out, there in zip(due, known, strict=True):
                out.missing_checks = 0 if there else out.missing_checks + 1
                if out.missing_checks >= 2:
                    logger.warning(
                        "job {} ({}): its message is no longer in Redis (restarted without its "
                        "data?); sending it again", out.message.job_id, out.message.origin,
                    )  # fmt: skip
                    await self._send(out)
        if self._note is not None:
            self._note("fleet", await asyncio.to_thread(self.snapshot))

    async def _waits_forever(self) -> None:
        """Every :data:`WAITS_EVERY_SECONDS`, note (meta ``waits``, what ``status`` shows) the
        jobs out that wait on their workers for something shared, and for what."""
        if not isinstance(self.broker, RedisBroker):
            return  # a stub broker in tests has no Redis to ask
        client, shown = self.broker.client, None
        while True:
            await asyncio.sleep(WAITS_EVERY_SECONDS)
            out = [job_id for job_id, o in self._out.items() if not o.future.done()]
            try:
                waits = await asyncio.to_thread(jobs_waiting, client, self.settings, out)
            except redis.RedisError as exc:
                logger.debug("cannot ask Redis which jobs wait: {}", exc)
                continue
            if waits != shown and self._note is not None:
                self._note("waits", waits or None)
                shown = waits

    def _known(self, redis_ids: list[str]) -> list[bool]:
        """Whether Redis still has each message, queued or taken (Dramatiq keeps a message's
        body in ``<namespace>:<queue>.msgs`` until it is acknowledged)."""
        assert isinstance(self.broker, RedisBroker)
        key = f"{self.broker.namespace}:{self.jobs_queue}.msgs"
        delayed = f"{self.broker.namespace}:{self.jobs_queue}.DQ.msgs"
        pipe = self.broker.client.pipeline()
        for rid in redis_ids:
            pipe.hexists(key, rid)
            pipe.hexists(delayed, rid)
        answers = pipe.execute()
        return [bool(answers[2 * i] or answers[2 * i + 1]) for i in range(len(redis_ids))]

    def snapshot(self) -> dict[str, Any]:
        """Workers seen recently, the queue's length, the jobs out."""
        assert isinstance(self.broker, RedisBroker)
        snap = fleet_snapshot(self.broker.client, self.settings)
        snap["jobs_out"] = len(self._out)
        snap["watcher"] = socket.gethostname()
        return snap
