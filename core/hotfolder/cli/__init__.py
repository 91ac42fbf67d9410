"""The ``hotfolder`` command line: the one composition root.

Only this package wires things together: it configures loguru, loads the plugins (the
built-ins, the built-in commands of :mod:`hotfolder.cli.commands`, then third-party ones),
reads the config, builds runtimes and, for ``--sandbox``, starts the local sandbox and hands
its client to the runtime (:mod:`hotfolder.cli.sandbox`). Nothing below it knows a sandbox
exists.

Every command, built-in or not, is added the same way: a plugin's
``hotfolder_register_commands(cli)`` hook. The global options (``--config``,
``--log-level``, ``--log-format``) are accepted before or after the command's name.

Exit codes: 0 all done, 1 some inputs failed (or were left paused), 2 usage or config error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from loguru import logger

from hotfolder.cli._logging import configure_logging, stderr_console
from hotfolder.cli._state import (
    COMMAND_PLUGINS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliState,
    fail,
    global_options,
    option_from_argv,
    state_dir_option,
)
from hotfolder.errors import ConfigError, HotfolderError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliState",
    "cli",
    "fail",
    "main",
    "stderr_console",
]


class _Group(click.Group):
    """The ``hotfolder`` group: HotfolderErrors end as one log line and an exit code, not a
    traceback; every command added gets the global options; none may shadow another."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name in self.commands:
            msg = f"a plugin tried to add the command {name!r}, which exists; it was not added"
            logger.warning(msg)
            return
        taken = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        cmd.params.extend(o for o in global_options() if not taken & set(o.opts))
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            fail(exc, EXIT_USAGE)
        except HotfolderError as exc:
            fail(exc, EXIT_FAILED)


@click.group(cls=_Group, params=[*global_options(), state_dir_option()])
@click.version_option(package_name="hotfolder", prog_name="hotfolder")
def cli() -> None:
    """Image drop-folder automation: chains of local and Venice image operations."""


def main() -> None:
    """Entry point of the ``hotfolder`` script: load the plugins, let them add their
    commands, run the command line."""
    from hotfolder.plugins import call_observers

    argv = sys.argv[1:]
    level = (option_from_argv(argv, "--log-level") or "INFO").upper()
    fmt = "json" if option_from_argv(argv, "--log-format") == "json" else "text"
    configure_logging(level, fmt)
    config = option_from_argv(argv, "--config", "-c")
    state = CliState(config_path=Path(config) if config else None, log_level=level, log_format=fmt)
    try:
        pm = state.plugin_manager()
    except HotfolderError as exc:  # a broken plugin must not take the whole CLI down
        logger.warning("plugin commands not loaded: {}", exc)
        from hotfolder.plugins import make_plugin_manager

        pm = make_plugin_manager(load_entrypoints=False, builtins=COMMAND_PLUGINS)
    call_observers(pm, "hotfolder_register_commands", cli=cli)
    cli(prog_name="hotfolder", obj=state)
