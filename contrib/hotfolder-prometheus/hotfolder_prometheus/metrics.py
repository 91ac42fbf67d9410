"""The metrics, in a registry of their own, and the lifecycle hooks that update them.

A :class:`Metrics` is itself a plugin (its methods are hook implementations), so a test can
register a fresh one; the installed plugin uses the one instance in :mod:`hotfolder_prometheus`.
Its collectors, and prometheus_client with them, are made on first use (the first job, or the
exporter starting): loading the plugin, as every command does, then costs nothing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import hotfolder

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from hotfolder import HotfolderError, Job, JobResult

#: Upper bounds of the step duration buckets, in seconds: local steps take milliseconds,
#: Venice calls seconds to minutes.
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))
#: The ``op`` label of a Venice error: the engine does not say which step failed.
UNKNOWN_OP = "unknown"


class _Collectors:
    """The registry and every metric in it."""

    def __init__(self, in_flight: set[str]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "hotfolder_jobs",
            "Job runs by chain and state: started, succeeded, failed (a retried job counts "
            "once per run).",
            ["chain", "state"],
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "hotfolder_step_seconds",
            "How long each step of a successful job took (results reused from a checkpoint "
            "are not counted).",
            ["op"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.venice_calls = Counter(
            "hotfolder_venice_calls",
            "Venice API calls: status 'ok' counts the request ids of successful paid steps; "
            "otherwise the HTTP status of the error that failed a job ('network' without one).",
            ["op", "status"],
            registry=self.registry,
        )
        self.spend = Counter(
            "hotfolder_estimated_spend_usd",
            "Estimated Venice spend of successful jobs, in US dollars.",
            registry=self.registry,
        )
        self.simulated_spend = Counter(
            "hotfolder_simulated_spend_usd",
            "What the paid steps a simulated server (the sandbox) answered would have cost.",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "hotfolder_jobs_in_flight",
            "Jobs started and not yet succeeded or failed (paused jobs included).",
            registry=self.registry,
        )
        self.in_flight.set_function(lambda: len(in_flight))


class Metrics:
    """Counts jobs, step times, Venice calls and spend as the engine reports them."""

    def __init__(self) -> None:
        self._running: set[str] = set()
        self._made: _Collectors | None = None
        self._lock = threading.Lock()

    @property
    def registry(self) -> CollectorRegistry:
        """The registry the metrics are in (what an exporter serves)."""
        return self._collectors().registry

    def _collectors(self) -> _Collectors:
        with self._lock:
            if self._made is None:
                self._made = _Collectors(self._running)
            return self._made

    @hotfolder.hookimpl
    def hotfolder_job_started(self, job: Job) -> None:
        self._collectors().jobs.labels(job.chain, "started").inc()
        self._running.add(job.id)

    @hotfolder.hookimpl
    def hotfolder_job_succeeded(self, job: Job, result: JobResult) -> None:
        c = self._collectors()
        c.jobs.labels(job.chain, "succeeded").inc()
        self._running.discard(job.id)
        for step in result.steps:
            if step.from_checkpoint:
                continue
            c.step_seconds.labels(step.op).observe(step.seconds)
            if step.paid and step.request_ids:
                c.venice_calls.labels(step.op, "ok").inc(len(step.request_ids))
        c.spend.inc(result.cost_usd)
        c.simulated_spend.inc(result.simulated_usd)

    @hotfolder.hookimpl
    def hotfolder_job_failed(self, job: Job, error: HotfolderError) -> None:
        c = self._collectors()
        c.jobs.labels(job.chain, "failed").inc()
        self._running.discard(job.id)
        if isinstance(error, hotfolder.VeniceError):
            status = "network" if error.status is None else str(error.status)
            c.venice_calls.labels(UNKNOWN_OP, status).inc()
