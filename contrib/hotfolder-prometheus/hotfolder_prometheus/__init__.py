"""hotfolder-prometheus: metrics of the job lifecycle for Prometheus.

Set ``HOTFOLDER_PROMETHEUS_PORT`` (and optionally ``HOTFOLDER_PROMETHEUS_ADDR``, default
``127.0.0.1``) in the daemon's environment; when the plugin loads, it serves
``http://ADDR:PORT/metrics``:

=====================================  ===============================================
``hotfolder_jobs_total``               job runs by ``chain`` and ``state``
                                       (started, succeeded, failed)
``hotfolder_jobs_in_flight``           jobs started and not yet ended
``hotfolder_step_seconds``             histogram of step durations by ``op``
``hotfolder_venice_calls_total``       Venice calls by ``op`` and ``status``
``hotfolder_estimated_spend_usd_total``  estimated Venice spend in US dollars
``hotfolder_simulated_spend_usd_total``  the same for simulated (sandbox) answers
=====================================  ===============================================

Without the variable nothing is served and the hooks only count. See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hotfolder
from hotfolder_prometheus.metrics import Metrics
from hotfolder_prometheus.server import ADDR_ENV, PORT_ENV, serve, serve_from_env

if TYPE_CHECKING:
    from hotfolder import HotfolderError, Job, JobResult

__all__ = ["ADDR_ENV", "METRICS", "PORT_ENV", "SERVER", "Metrics", "serve", "serve_from_env"]

#: The metrics of this process, updated by the hooks below.
METRICS = Metrics()
#: The HTTP server, when ``$HOTFOLDER_PROMETHEUS_PORT`` is set: started on load, so that
#: ``hotfolder run`` answers scrapes before its first job.
SERVER = serve_from_env(METRICS.registry)


@hotfolder.hookimpl
def hotfolder_job_started(job: Job) -> None:
    METRICS.hotfolder_job_started(job)


@hotfolder.hookimpl
def hotfolder_job_succeeded(job: Job, result: JobResult) -> None:
    METRICS.hotfolder_job_succeeded(job, result)


@hotfolder.hookimpl
def hotfolder_job_failed(job: Job, error: HotfolderError) -> None:
    METRICS.hotfolder_job_failed(job, error)
