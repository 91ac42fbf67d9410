"""``hotfolder web``: the dashboard alone, a read-only viewer of a state dir whose daemon runs
elsewhere (``hotfolder run --web`` serves it from the daemon itself, with retry)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hotfolder.cli._state import CliState, pass_state
from hotfolder.errors import ConfigError
from hotfolder.hookspecs import hookimpl

if TYPE_CHECKING:
    from hotfolder.web.server import WebServer


@click.command()
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The state dir to show [default: $HOTFOLDER_STATE_DIR, then [daemon] state_dir, "
    "then the platform's user state folder].",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where to serve [default: [web] listen, else 127.0.0.1:8484]; off loopback only "
    "with [web] token.",
)
@pass_state
def web(state: CliState, state_dir: Path | None, listen: str | None) -> None:
    """Serve the dashboard of a state dir, read-only (no retry), until Ctrl-C."""
    from hotfolder.cli.commands.service import _state_dir
    from hotfolder.web.context import Dashboard
    from hotfolder.web.server import WebServer, trusted_hosts
    from hotfolder.web.settings import DEFAULT_LISTEN, WebSection, checked_listen

    directory, config = _state_dir(state, state_dir)
    section = config.section(WebSection) if config is not None else WebSection()
    address, token = checked_listen(listen or section.listen or DEFAULT_LISTEN, section)
    if not directory.is_dir():
        msg = f"no state dir at {directory}"
        raise ConfigError(msg, hint="pass --state-dir DIR (the daemon's)")
    dashboard = Dashboard(
        directory, config, token, readonly=True, hosts=trusted_hosts(address, token)
    )
    asyncio.run(_serve(WebServer(dashboard, address)))


async def _serve(server: WebServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    cli.add_command(web)
