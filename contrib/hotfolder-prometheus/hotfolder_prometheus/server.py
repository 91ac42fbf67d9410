"""Serving the metrics while ``hotfolder run`` runs, where ``[plugins.prometheus]`` says.

The server starts in ``hotfolder_daemon_started`` and stops in ``hotfolder_daemon_stopped``,
so no other command (``validate``, ``status``, ``process``) binds a port. A reload that moves
the port moves the server. The environment variables of earlier releases
(``HOTFOLDER_PROMETHEUS_PORT``, ``HOTFOLDER_PROMETHEUS_ADDR``) still work when the config
names no port, with a warning that they are deprecated. prometheus_client is imported when
the server starts (see :mod:`hotfolder_prometheus.metrics`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from loguru import logger

import hotfolder
from hotfolder_prometheus.settings import DEFAULT_ADDRESS, PrometheusSettings

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

    from hotfolder import RuntimeView
    from hotfolder_prometheus.metrics import Metrics

#: Deprecated: ``[plugins.prometheus] port`` replaces it.
PORT_ENV = "HOTFOLDER_PROMETHEUS_PORT"
#: Deprecated: ``[plugins.prometheus] address`` replaces it.
ADDR_ENV = "HOTFOLDER_PROMETHEUS_ADDR"


def serve(registry: CollectorRegistry, port: int, addr: str = DEFAULT_ADDRESS) -> WSGIServer:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread (port 0: any
    free one, see ``server.server_port``); stop it with ``shutdown()``."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr, registry=registry)
    return server


def where(settings: PrometheusSettings) -> tuple[str, int] | None:
    """The address and port to serve on: the settings', else the deprecated environment's
    (with a warning), else None: not served."""
    raw = os.environ.get(PORT_ENV, "").strip()
    if settings.port is not None:
        if raw:
            logger.warning(
                "{} is ignored: [plugins.prometheus] port = {} is set; unset the variable",
                PORT_ENV, settings.port,
            )  # fmt: skip
        return settings.address, settings.port
    if not raw:
        return None
    logger.warning(
        "{} is deprecated and will stop working in a later release: set [plugins.prometheus] "
        "port = {} (and address) in the config instead", PORT_ENV, raw,
    )  # fmt: skip
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        logger.warning(
            "{}={!r} is not a port number (1-65535); metrics are not served", PORT_ENV, raw
        )
        return None
    return os.environ.get(ADDR_ENV, "").strip() or DEFAULT_ADDRESS, int(raw)


class Exporter:
    """Serves a :class:`Metrics`' registry for as long as the daemon runs (its methods are hook
    implementations, so a test can register a fresh one)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.server: WSGIServer | None = None
        self.bound: tuple[str, int] | None = None

    @hotfolder.hookimpl
    def hotfolder_daemon_started(self, runtime: RuntimeView) -> None:
        self.apply(runtime.plugin_settings(PrometheusSettings))

    @hotfolder.hookimpl
    def hotfolder_daemon_reloaded(self, runtime: RuntimeView) -> None:
        self.apply(runtime.plugin_settings(PrometheusSettings))

    @hotfolder.hookimpl
    def hotfolder_daemon_stopped(self) -> None:
        self.stop()

    def apply(self, settings: PrometheusSettings) -> None:
        """Serve where ``settings`` say (nowhere: stop); a port in use is a warning, never a
        reason to stop hotfolder: metrics are not worth a lost job."""
        wanted = where(settings)
        if wanted == self.bound and self.server is not None:
            return
        self.stop()
        if wanted is None:
            return
        addr, port = wanted
        try:
            self.server = serve(self.metrics.registry, port, addr)
        except OSError as exc:
            logger.warning(
                "cannot serve Prometheus metrics on {}:{}: {}; set [plugins.prometheus] port to "
                "a free port (and address to an address of this host)",
                addr, port, exc.strerror or exc,
            )  # fmt: skip
            return
        self.bound = wanted
        logger.info("serving Prometheus metrics on http://{}:{}/metrics", addr, port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            logger.debug("Prometheus metrics no longer served on {}:{}", *(self.bound or ("", 0)))
        self.server, self.bound = None, None
