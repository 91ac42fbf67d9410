"""Running the sandbox: in a background thread for tests, or in the foreground for the CLI.

Both bind the socket themselves, so ``port=0`` picks a free port and the URL is known before
the first request. uvicorn's logging is left unconfigured (``log_config=None``); the sandbox
logs through loguru. Both raise :class:`~hotfolder_sandbox.errors.SandboxError` when the
sandbox cannot listen (the port is taken) or does not start.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from loguru import logger

from hotfolder_sandbox.app import API_PREFIX, SimulatedConnectionReset, create_app
from hotfolder_sandbox.config import SandboxConfig
from hotfolder_sandbox.errors import SandboxError
from hotfolder_sandbox.state import SandboxState

__all__ = ["SandboxHandle", "serve", "start_sandbox"]

_START_TIMEOUT_SECONDS = 10.0


class _HideSimulatedResets(logging.Filter):
    """uvicorn logs the exception that drops a connection; for a simulated drop that is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, SimulatedConnectionReset)


def _quiet_simulated_resets() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideSimulatedResets) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(_HideSimulatedResets())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off only on sockets that say
    # they are TCP, and with it on a kept-alive connection waits 40 ms for each answer's body.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        msg = f"the Venice sandbox cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise SandboxError(msg, hint="choose another --port, or 0 for any free port") from exc
    return sock


def _server(config: SandboxConfig) -> tuple[uvicorn.Server, SandboxState]:
    app = create_app(config)
    _quiet_simulated_resets()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    return server, app.state.sandbox


def _root_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class SandboxHandle:
    """A sandbox running in a background thread. Use as a context manager, or call ``stop``.

    ``base_url`` is the API root (``http://127.0.0.1:PORT/api/v1``), ``admin_url`` the admin
    root (``.../_sandbox``); ``state`` is the live :class:`SandboxState`.
    """

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, state: SandboxState, root: str
    ) -> None:
        self._server = server
        self._thread = thread
        self.state = state
        self.base_url = root + API_PREFIX
        self.admin_url = root + "/_sandbox"

    def stats(self) -> dict[str, Any]:
        """The same counters as ``GET /_sandbox/stats``."""
        return self.state.stats.snapshot()

    def configure(self, **changes: Any) -> SandboxConfig:
        """Change config fields at run time, as ``PATCH /_sandbox/config`` does."""
        return self.state.configure(changes)

    def reset(self) -> None:
        """As ``POST /_sandbox/reset``."""
        self.state.reset()

    def stop(self) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        self._server.should_exit = True
        self._thread.join(_START_TIMEOUT_SECONDS)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> SandboxHandle:
    """Serve the sandbox from a daemon thread; returns once it accepts connections."""
    sock = _bind(host, port)
    server, state = _server(config or SandboxConfig())
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="venice-sandbox", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            msg = "the Venice sandbox did not start"
            raise SandboxError(msg, hint="look at the log above for uvicorn's reason")
        time.sleep(0.005)
    handle = SandboxHandle(server, thread, state, _root_url(sock))
    logger.debug("Venice sandbox running at {}", handle.base_url)
    return handle


def serve(config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 8787) -> None:
    """Serve the sandbox in the foreground until interrupted (``hotfolder sandbox``)."""
    sock = _bind(host, port)
    server, _ = _server(config or SandboxConfig())
    root = _root_url(sock)
    logger.info(
        "Venice sandbox serving {}{} (admin: {}/_sandbox); point [venice] base_url at it. "
        "Stop with Ctrl-C.",
        root,
        API_PREFIX,
        root,
    )
    server.run(sockets=[sock])
