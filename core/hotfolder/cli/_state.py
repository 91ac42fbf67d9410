"""What every command shares: the exit codes, one way to fail, the lazily built plugins,
registry and config, and the global options accepted before or after the subcommand."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from loguru import logger

from hotfolder.cli._logging import configure_logging
from hotfolder.errors import ConfigError, HotfolderError

if TYPE_CHECKING:
    import pluggy

    from hotfolder.config import Config
    from hotfolder.registry import Registry
    from hotfolder.runtime import Runtime

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: The built-in command plugins: each module's ``hotfolder_register_commands`` adds its
#: commands, the same way a third-party plugin adds its own.
COMMAND_PLUGINS: tuple[str, ...] = (
    "hotfolder.cli.commands.setup",
    "hotfolder.cli.commands.process",
    "hotfolder.cli.commands.service",
    "hotfolder.cli.commands.account",
    "hotfolder.cli.commands.sandbox",
    "hotfolder.cli.commands.web",
    "hotfolder.cli.commands.worker",
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """What every command may need, built on first use: plugins, registry, config."""

    config_path: Path | None = None
    #: ``--state-dir`` given before the command's name (the daemon's commands take it after).
    state_dir: Path | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    _pm: pluggy.PluginManager | None = field(default=None, repr=False)
    _registry: Registry | None = field(default=None, repr=False)
    _config: Config | None = field(default=None, repr=False)

    def plugin_manager(self) -> pluggy.PluginManager:
        if self._pm is None:
            from hotfolder.config import find_config, read_raw
            from hotfolder.plugins import DEFAULT_PLUGINS, make_plugin_manager

            disabled: list[str] = []
            try:
                raw = read_raw(find_config(self.config_path))
                disabled = list(raw.get("plugins", {}).get("disabled", []))
            except ConfigError:
                pass  # no config yet: load every plugin; commands that need one say so
            self._pm = make_plugin_manager(disabled, builtins=DEFAULT_PLUGINS + COMMAND_PLUGINS)
        return self._pm

    def registry(self) -> Registry:
        if self._registry is None:
            from hotfolder.plugins import build_registry

            self._registry = build_registry(self.plugin_manager())
        return self._registry

    def config(self) -> Config:
        if self._config is None:
            from hotfolder.config import find_config, load_config

            path = find_config(self.config_path)
            self._config = load_config(path, self.registry())
            logger.debug("config: {}", path)
        return self._config

    def has_config(self) -> bool:
        """Whether a config file can be found (commands that work without one ask)."""
        from hotfolder.config import find_config

        try:
            find_config(self.config_path)
        except ConfigError:
            return False
        return True

    def runtime(self, *, dry_run: bool = False) -> Runtime:
        from hotfolder.runtime import Runtime

        return Runtime(self.config(), self.plugin_manager(), self.registry(), dry_run=dry_run)


def fail(error: HotfolderError | str, code: int = EXIT_USAGE) -> NoReturn:
    """Log ``error`` as one clear message (no traceback) and exit with ``code``."""
    logger.error(str(error))
    sys.exit(code)


# --- options every command takes, before or after its name ----------------------------------


#: Hands a command the :class:`CliState` (made on first use when a test invokes it alone).
pass_state = click.make_pass_decorator(CliState, ensure=True)


def _state(ctx: click.Context) -> CliState:
    return ctx.ensure_object(CliState)


def _set_config(ctx: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _state(ctx).config_path = value


def _set_log_level(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        state = _state(ctx)
        state.log_level = value.upper()
        configure_logging(state.log_level, state.log_format)


def _set_log_format(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        state = _state(ctx)
        state.log_format = value
        configure_logging(state.log_level, state.log_format)


def global_options() -> list[click.Option]:
    """``--config``, ``--log-level`` and ``--log-format``: the group has them, and so does
    every command added to it, so ``hotfolder validate --config x.toml`` works as typed."""
    return [
        click.Option(
            ["--config", "-c", "config_path"],
            type=click.Path(path_type=Path, dir_okay=False),
            expose_value=False,
            is_eager=True,
            callback=_set_config,
            help="Config file (default: $HOTFOLDER_CONFIG, ./hotfolder.toml, then the user "
            "config dir).",
        ),
        click.Option(
            ["--log-level"],
            type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
            expose_value=False,
            is_eager=True,
            callback=_set_log_level,
            help="Least severe log lines shown [default: INFO].",
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(["text", "json"]),
            expose_value=False,
            is_eager=True,
            callback=_set_log_format,
            help="Readable lines, or one JSON object per line [default: text].",
        ),
    ]


def _set_state_dir(ctx: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _state(ctx).state_dir = value


def state_dir_option() -> click.Option:
    """``--state-dir`` on the group, for ``hotfolder --state-dir DIR status``; the commands it
    applies to (``run``, ``status``, ``retry``) take it after their name too."""
    return click.Option(
        ["--state-dir"],
        type=click.Path(path_type=Path, file_okay=False),
        expose_value=False,
        callback=_set_state_dir,
        help="Where the daemon's journal and lock live (for run, status, retry).",
    )


def option_from_argv(argv: list[str], *names: str) -> str | None:
    """An option's value read before click parses, wherever it stands: plugin loading, which
    comes first, then uses the same config (``[plugins] disabled``) and log format as the
    command."""
    value = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in names and i + 1 < len(argv):
            value = argv[i + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value
