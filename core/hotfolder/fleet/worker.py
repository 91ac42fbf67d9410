"""``hotfolder worker``: run the fleet's jobs in this process, with the same engine, plugins
and checkpoints as a local daemon.

Each :class:`~hotfolder.fleet.messages.JobMessage` is run once:

1. a job that finished before (its ``outcome.json`` lies beside its checkpoints, for the same
   input bytes) is answered with that outcome, not run again — outputs are never written twice;
2. a job delivered more than ``[executor] max_deliveries`` times (it stopped every worker that
   took it: killed, crashed) is failed as a poison message;
3. a job another worker runs now (a repeated message) waits for that one's outcome;
4. a job whose chain differs from this worker's config (the digest) is refused with an error
   that says so: it is retried, and fails visibly if no worker has the watcher's config;
5. else the engine runs it; paid steps reuse their checkpoints, so a job run again after a
   worker died mid-way pays at most for the one call that was on the wire.

The outcome goes back on the outcomes queue; while Redis cannot be reached the worker keeps
it and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dramatiq
import redis
from loguru import logger

from hotfolder.engine import Engine
from hotfolder.errors import ConfigError, HotfolderError, OperationError, PluginError
from hotfolder.fleet import broker as fleet_broker
from hotfolder.fleet.messages import JobMessage, Outcome, this_worker
from hotfolder.fleet.roster import forget_me, say_alive, say_waiting
from hotfolder.fleet.settings import ExecutorSection
from hotfolder.fsutil import atomic_write
from hotfolder.job import Job
from hotfolder.runtime import Runtime
from hotfolder.waits import Wait

#: The record of a finished job, beside its checkpoints.
OUTCOME_FILE = "outcome.json"
#: How often a worker says it is alive.
ALIVE_EVERY_SECONDS = 2.0
#: The longest a consumer sleeps between looks at the queue while its prefetch is full or the
#: queue empty (Dramatiq's default, 1 s, would leave a fast job's successor waiting).
CONSUMER_POLL_MS = 100
#: How long a delivery count is kept.
DELIVERIES_TTL_SECONDS = 86_400


class FleetWorker:
    """Consumes ``<namespace>-jobs`` with ``threads`` jobs at once. ``make_runtime`` builds
    the runtime the jobs share (called once, on the worker's event loop). ``broker`` and
    ``client`` (the fleet's Redis) are made from ``settings`` unless given (a stub broker in
    tests)."""

    def __init__(
        self,
        settings: ExecutorSection,
        make_runtime: Callable[[], Runtime],
        *,
        threads: int = 1,
        broker: dramatiq.Broker | None = None,
        client: redis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.make_runtime = make_runtime
        self.threads = threads
        self.broker = broker or fleet_broker.make_broker(settings, asyncio_actors=True)
        self.client: redis.Redis = client or self.broker.client  # type: ignore[attr-defined]
        self.jobs_queue = fleet_broker.jobs_queue(settings)
        self.outcomes_queue = fleet_broker.outcomes_queue(settings)
        fleet_broker.declare(self.broker, fleet_broker.RUN_JOB, self.jobs_queue, self.run_job)
        self.broker.declare_queue(self.outcomes_queue)
        self.me = this_worker()
        self._runtime: Runtime | None = None
        self._worker: dramatiq.Worker | None = None
        self._stopped = threading.Event()
        self._counts = {"done": 0, "failed": 0, "running": 0}
        self._started = time.time()
        #: Tells Redis of the jobs' waits, one at a time and in order (a wait's end never
        #: overtakes its start).
        self._wait_teller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="waits")
        #: Jobs whose wait Redis was told of and not yet of its end (on the event loop).
        self._waiting: set[str] = set()

    @property
    def counts(self) -> dict[str, int]:
        """Jobs this worker ran to done or failed, and is running now (what the roster shows);
        a repeated message answered from a finished job's record is not counted again."""
        return dict(self._counts)

    # --- life ------------------------------------------------------------------------------

    def start(self) -> None:
        self._worker = dramatiq.Worker(
            self.broker,
            queues={self.jobs_queue},
            worker_threads=self.threads,
            worker_timeout=CONSUMER_POLL_MS,
        )
        self._worker.start()
        threading.Thread(target=self._alive_forever, name="alive", daemon=True).start()
        logger.info("worker {} takes jobs from {} ({} at once)", self.me, self.jobs_queue,
                    self.threads)  # fmt: skip

    def stop(self, grace_seconds: float) -> None:
        """Stop taking jobs; running ones get ``grace_seconds``, then their messages go back
        to the queue for another worker."""
        self._stopped.set()
        if self._worker is not None:
            self._worker.stop(timeout=int(grace_seconds * 1000))
        self._wait_teller.shutdown(wait=True)
        with contextlib.suppress(redis.RedisError):
            forget_me(self.client, self.settings)
        self.broker.close()

    def _alive_forever(self) -> None:
        down = False
        while not self._stopped.is_set():
            try:
                say_alive(self.client, self.settings, started=self._started, **self._counts)
                if down:
                    logger.info("Redis is reachable again")
                down = False
            except redis.RedisError as exc:
                if not down:
                    logger.error("Redis is not reachable ({}); waiting for it", exc)
                down = True
            self._stopped.wait(ALIVE_EVERY_SECONDS)

    # --- one job ---------------------------------------------------------------------------

    async def run_job(self, data: dict[str, Any]) -> None:
        """The actor: run one job and send its outcome."""
        message = JobMessage.from_dict(data)
        with logger.contextualize(job=message.job_id, file=message.origin, chain=message.chain):
            try:
                outcome = await self._outcome(message)
            finally:
                if message.job_id in self._waiting:  # stopped mid-wait: it waits no more
                    self._tell_wait(message.job_id, None)
            await self._report(outcome)

    def _on_wait(self, job: Job, wait: Wait | None) -> None:
        """The engine heard a job begin (or end) a wait for something shared: the watcher's
        ``status`` shows it."""
        self._tell_wait(job.id, wait)

    def _tell_wait(self, job_id: str, wait: Wait | None) -> None:
        if wait is None:
            self._waiting.discard(job_id)
        else:
            self._waiting.add(job_id)

        def tell() -> None:
            try:
                say_waiting(self.client, self.settings, job_id, wait, self.me)
            except redis.RedisError as exc:
                logger.debug("cannot tell Redis that job {} waits: {}", job_id, exc)

        with contextlib.suppress(RuntimeError):  # stopping: nothing is shown any more
            self._wait_teller.submit(tell)

    async def _outcome(self, message: JobMessage) -> Outcome:
        job = message.job(self.settings.local_path)
        record = Path(job.checkpoint_dir) / OUTCOME_FILE if job.checkpoint_dir else None
        if (done := await asyncio.to_thread(_finished, record, message)) is not None:
            logger.info("{} (job {}) was done before, by {}: not run again", message.origin,
                        message.job_id, done.worker)  # fmt: skip
            return Outcome(**{**done.to_dict(), "attempt": message.attempt})
        deliveries = await asyncio.to_thread(self._delivered, message)
        if deliveries > self.settings.max_deliveries:
            error = OperationError(
                f"{message.origin} stopped the worker running it {deliveries - 1} times "
                "(killed or crashed mid-job); it is not given to another one",
                hint="see the workers' logs for why (memory? a plugin crash?), then: "
                f"hotfolder retry {message.job_id}",
            )
            self._counts["failed"] += 1
            return Outcome.failed(message, error, worker=self.me)
        async with _RunLock(self.client, self.settings, message.job_id, self.me):
            if (done := await asyncio.to_thread(_finished, record, message)) is not None:
                return Outcome(**{**done.to_dict(), "attempt": message.attempt})
            self._counts["running"] += 1
            try:
                outcome = await self._run(message)
            finally:
                self._counts["running"] -= 1
            # counted here, where it ran: a repeat of a job done before is not done again
            self._counts["done" if outcome.state == "done" else "failed"] += 1
            if outcome.state == "done" and record is not None:
                await asyncio.to_thread(_record, record, message, outcome)
            return outcome

    async def _run(self, message: JobMessage) -> Outcome:
        runtime = self.runtime()
        try:
            chain = runtime.config.chain(message.chain)
            if chain.digest != message.chain_digest:
                msg = (
                    f"worker {self.me} has another config for chain {message.chain!r} than the "
                    "watcher that sent the job (they differ in steps, parameters or outputs)"
                )
                raise ConfigError(msg, hint="give every worker the watcher's hotfolder.toml and "
                                  "restart the workers")  # fmt: skip
            engine = Engine(
                runtime, step_timeout=message.step_timeout_seconds, on_wait=self._on_wait
            )
            result = await engine.run(message.job(self.settings.local_path), final=message.final)
        except HotfolderError as exc:
            if isinstance(exc, ConfigError):
                exc.retryable = True  # another worker, or this one restarted, may have it right
            logger.warning("{} (job {}, attempt {}) did not succeed here: {}; the watcher "
                           "decides what follows", message.origin, message.job_id,
                           message.attempt, exc)  # fmt: skip
            return Outcome.failed(message, exc, worker=self.me)
        except Exception as exc:
            logger.exception("job {} hit a bug", message.job_id)
            error = PluginError(
                f"unexpected error: {exc!r}", hint="this is a bug; please report it"
            )
            return Outcome.failed(message, error, worker=self.me)
        return Outcome.done(message, result, worker=self.me)

    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = self.make_runtime()
        return self._runtime

    def _delivered(self, message: JobMessage) -> int:
        key = f"{self.settings.namespace}:deliveries:{message.job_id}:{message.attempt}"
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.expire(key, DELIVERIES_TTL_SECONDS)
        return int(pipe.execute()[0])

    async def _report(self, outcome: Outcome) -> None:
        """Send the outcome; while Redis cannot be reached, keep it and try again."""
        data = fleet_broker.message(fleet_broker.JOB_OUTCOME, self.outcomes_queue,
                                    outcome.to_dict())  # fmt: skip
        delay = 0.5
        while True:
            try:
                await asyncio.to_thread(self.broker.enqueue, data)
                return
            except redis.RedisError as exc:
                logger.warning("cannot send the outcome of job {} ({}); trying again",
                               outcome.job_id, exc)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


#: Renew the lock if it is still ours, or take it back if it is gone (a Redis restarted
#: without its data): 1, else 0 (another worker holds it).
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class _RunLock:
    """At most one worker runs a job: a Redis key held while it runs, renewed every
    heartbeat (and taken back after a Redis restart, before the watcher sends the job
    again); a worker that dies lets it lapse within three heartbeats."""

    def __init__(self, client: redis.Redis, settings: ExecutorSection, job_id: str, me: str):
        self.client = client
        self.key = f"{settings.namespace}:running:{job_id}"
        self.me = me
        self.ttl_ms = int(settings.heartbeat_seconds * 3000)
        self.every = settings.heartbeat_seconds / 2
        self._renew: asyncio.Task[None] | None = None
        self._script = client.register_script(_RENEW)

    async def __aenter__(self) -> None:
        waited = False
        while not await asyncio.to_thread(self._take):
            if not waited:
                waited = True
                holder = await asyncio.to_thread(self.client.get, self.key)
                logger.info("job {} runs on {} now; waiting for its outcome",
                            self.key.rsplit(":", 1)[-1], holder or "?")  # fmt: skip
            await asyncio.sleep(1.0)
        self._renew = asyncio.create_task(self._renew_forever())

    def _take(self) -> bool:
        return bool(self.client.set(self.key, self.me, nx=True, px=self.ttl_ms))

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            # Redis away: the lock lapses; the finished job's record still guards its outputs
            with contextlib.suppress(redis.RedisError):
                args: list[str | int] = [self.me, self.ttl_ms]
                await asyncio.to_thread(self._script, keys=[self.key], args=args)

    async def __aexit__(self, *exc: object) -> None:
        if self._renew is not None:
            self._renew.cancel()
        try:
            if await asyncio.to_thread(self.client.get, self.key) in (self.me, self.me.encode()):
                await asyncio.to_thread(self.client.delete, self.key)
        except redis.RedisError:
            pass


def _finished(record: Path | None, message: JobMessage) -> Outcome | None:
    """The outcome recorded when this job finished before on these same bytes, if it did."""
    if record is None or not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if data.get("src_sig") != message.src_sig:
        return None
    return Outcome.from_dict(data["outcome"])


def _record(record: Path, message: JobMessage, outcome: Outcome) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    data = {"src_sig": message.src_sig, "outcome": outcome.to_dict()}
    atomic_write(record, json.dumps(data).encode())
