"""Serving a registry over HTTP, on the port that ``$HOTFOLDER_PROMETHEUS_PORT`` names.

hotfolder has no config section for plugin settings yet, so the address and port come from
the environment; set them in the daemon's environment only (its systemd unit, say).
"""

from __future__ import annotations

import os
from wsgiref.simple_server import WSGIServer

from loguru import logger
from prometheus_client import CollectorRegistry, start_http_server

PORT_ENV = "HOTFOLDER_PROMETHEUS_PORT"
ADDR_ENV = "HOTFOLDER_PROMETHEUS_ADDR"
DEFAULT_ADDR = "127.0.0.1"


def serve(registry: CollectorRegistry, port: int, addr: str = DEFAULT_ADDR) -> WSGIServer:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread (port 0: any
    free one, see ``server.server_port``); stop it with ``shutdown()``."""
    server, _thread = start_http_server(port, addr, registry=registry)
    return server


def serve_from_env(registry: CollectorRegistry) -> WSGIServer | None:
    """Serve ``registry`` where the environment says, or not at all when it says nothing.

    A bad value or a port in use is logged as a warning and never stops hotfolder: metrics
    are not worth a lost job.
    """
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return None
    addr = os.environ.get(ADDR_ENV, "").strip() or DEFAULT_ADDR
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        logger.warning(
            "{}={!r} is not a port number (1-65535); metrics are not served", PORT_ENV, raw
        )
        return None
    try:
        server = serve(registry, int(raw), addr)
    except OSError as exc:
        logger.warning(
            "cannot serve Prometheus metrics on {}:{}: {}; set {} to a free port (and {} to an "
            "address of this host)", addr, raw, exc.strerror or exc, PORT_ENV, ADDR_ENV,
        )  # fmt: skip
        return None
    logger.info("serving Prometheus metrics on http://{}:{}/metrics", addr, server.server_port)
    return server
