"""hotfolder-prometheus: metrics of the job lifecycle for Prometheus.

Set the port in the config; ``hotfolder run`` then serves ``http://ADDRESS:PORT/metrics``
(no other command binds it)::

    [plugins.prometheus]
    port = 9464
    address = "127.0.0.1"      # the default

=====================================  ===============================================
``hotfolder_jobs_total``               job runs by ``chain`` and ``state``
                                       (started, succeeded, failed)
``hotfolder_jobs_in_flight``           jobs started and not yet ended
``hotfolder_step_seconds``             histogram of step durations by ``op``
``hotfolder_venice_calls_total``       Venice calls by ``op`` and ``status``
``hotfolder_estimated_spend_usd_total``  estimated Venice spend in US dollars
``hotfolder_simulated_spend_usd_total``  the same for simulated (sandbox) answers
=====================================  ===============================================

Without a port nothing is served and the hooks only count. See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hotfolder
from hotfolder_prometheus.metrics import Metrics
from hotfolder_prometheus.server import ADDR_ENV, PORT_ENV, Exporter, serve, where
from hotfolder_prometheus.settings import PrometheusSettings

if TYPE_CHECKING:
    from hotfolder import HotfolderError, Job, JobResult, RuntimeView

__all__ = [
    "ADDR_ENV",
    "EXPORTER",
    "METRICS",
    "PORT_ENV",
    "Exporter",
    "Metrics",
    "PrometheusSettings",
    "serve",
    "where",
]

#: The metrics of this process, updated by the hooks below.
METRICS = Metrics()
#: Serves them while ``hotfolder run`` runs, from its start: scrapes are answered before the
#: first job.
EXPORTER = Exporter(METRICS)


@hotfolder.hookimpl
def hotfolder_plugin_settings() -> type[PrometheusSettings]:
    return PrometheusSettings


@hotfolder.hookimpl
def hotfolder_daemon_started(runtime: RuntimeView) -> None:
    EXPORTER.hotfolder_daemon_started(runtime)


@hotfolder.hookimpl
def hotfolder_daemon_reloaded(runtime: RuntimeView) -> None:
    EXPORTER.hotfolder_daemon_reloaded(runtime)


@hotfolder.hookimpl
def hotfolder_daemon_stopped() -> None:
    EXPORTER.hotfolder_daemon_stopped()


@hotfolder.hookimpl
def hotfolder_job_started(job: Job) -> None:
    METRICS.hotfolder_job_started(job)


@hotfolder.hookimpl
def hotfolder_job_succeeded(job: Job, result: JobResult) -> None:
    METRICS.hotfolder_job_succeeded(job, result)


@hotfolder.hookimpl
def hotfolder_job_failed(job: Job, error: HotfolderError) -> None:
    METRICS.hotfolder_job_failed(job, error)
