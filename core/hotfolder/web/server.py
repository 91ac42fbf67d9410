"""Serving the dashboard with uvicorn on an event loop that is already running (the
daemon's), or on its own (``hotfolder web``).

The socket is bound by :func:`bind` before anything else starts, so a taken port fails at
once with a clear message. uvicorn's own signal handling is turned off: the daemon owns
SIGTERM/SIGINT/SIGHUP, and stops the server through :meth:`WebServer.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from loguru import logger

from hotfolder.config import Config
from hotfolder.errors import ConfigError
from hotfolder.web.app import create_app
from hotfolder.web.context import Dashboard
from hotfolder.web.security import LOOPBACK_HOSTS
from hotfolder.web.settings import Listen, WebSection, token_for

_START_TIMEOUT_SECONDS = 10.0


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the process's signals to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(listen: Listen) -> socket.socket:
    """A listening socket on ``listen``; a ConfigError (exit 2) when it cannot be had."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off only on sockets that say
    # they are TCP, and with it on a kept-alive connection waits 40 ms for each answer's body.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((listen.host, listen.port))
    except OSError as exc:
        sock.close()
        msg = f"the dashboard cannot listen on {listen.host}:{listen.port}: {exc.strerror or exc}"
        raise ConfigError(msg, hint="choose another --web HOST:PORT or [web] listen") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def trusted_hosts(listen: Listen, token: str | None) -> frozenset[str] | None:
    """The Host names served: any when a token guards the dashboard, else loopback names and
    the listen host."""
    if token is not None:
        return None
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    return LOOPBACK_HOSTS | {host.lower()}


class WebServer:
    """The dashboard as a companion of the daemon: :meth:`start` on its loop, :meth:`stop`
    when it stops."""

    def __init__(
        self, dashboard: Dashboard, listen: Listen, *, listen_setting: str | None = None
    ) -> None:
        self.dashboard = dashboard
        self.listen = listen
        #: ``[web] listen`` of the config it started with (``--web`` may have overridden it).
        self._listen_setting = listen_setting
        self._sock: socket.socket | None = None
        #: Where the dashboard is, once started (the port known even when 0 was asked for).
        self.url = listen.url()
        app = create_app(dashboard)
        self._server = _Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
                ws="none",
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind, then serve on the running loop; returns once connections are accepted. A
        ConfigError (exit 2) when the address cannot be had."""
        self._sock = bind(self.listen)
        self.url = Listen(self.listen.host, self._sock.getsockname()[1]).url()
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="web")
        async with asyncio.timeout(_START_TIMEOUT_SECONDS):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    msg = "the dashboard did not start"
                    raise ConfigError(msg, hint="look at the log above for uvicorn's reason")
                await asyncio.sleep(0.01)
        logger.info("dashboard: {} (state in {})", self.url, self.dashboard.state_dir)

    def reloaded(self, config: Config) -> None:
        """The daemon reloaded its config (SIGHUP): show the new folders and chains, and ask
        for the new ``[web] token`` from now on (one that cannot be used is refused, with its
        reason, and the old one stays). The address stays: a new ``[web] listen`` is told to
        wait for a restart."""
        self.dashboard.reload(config)
        section = config.section(WebSection)
        if section.listen != self._listen_setting:
            self._listen_setting = section.listen
            logger.warning(
                "dashboard: [web] listen is now {}; the dashboard stays on {} until the daemon "
                "restarts",
                section.listen,
                self.url,
            )
        try:
            token = token_for(self.listen, section)
        except ConfigError as exc:
            logger.error(
                "dashboard: the reloaded [web] token cannot be used ({}); the dashboard "
                "keeps asking for the token it had. To fix: {}",
                exc.message,
                exc.hint,
            )
            return
        if token != self.dashboard.token:
            self.dashboard.token = token
            self.dashboard.hosts = trusted_hosts(self.listen, token)
            logger.warning(
                "dashboard: [web] token {}; browsers signed in before sign in again",
                "changed" if token is not None else "removed (loopback only)",
            )

    async def stop(self) -> None:
        """Stop serving: live-update streams end, open requests get a moment to finish."""
        self.dashboard.stopping.set()
        self._server.should_exit = True
        if self._task is not None:
            try:
                await self._task
            except Exception:
                logger.exception("the dashboard stopped with an error")
        if self._sock is not None:
            self._sock.close()
        await asyncio.to_thread(self.dashboard.statuses.close)
