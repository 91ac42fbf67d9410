"""The ``hotfolder`` command line; the only place that configures loguru's sinks.

Exit codes: 0 all done, 1 some inputs failed (or were left paused), 2 usage or config error.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click
from loguru import logger

from hotfolder import __version__
from hotfolder.errors import ConfigError, HotfolderError
from hotfolder.redact import scrub

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- logging -------------------------------------------------------------------------------


class _InterceptHandler(logging.Handler):
    """Routes the standard library's log records (httpx, uvicorn) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def _scrub_record(record: Any) -> None:
    record["message"] = scrub(record["message"])
    if record["exception"] is not None:
        exc = record["exception"].value
        if exc is not None and exc.args:
            exc.args = tuple(scrub(a) if isinstance(a, str) else a for a in exc.args)


def configure_logging(level: str, fmt: str) -> None:
    """Log to stderr: readable lines on a terminal, one JSON object per line for machines."""
    logger.remove()
    logger.configure(patcher=_scrub_record)
    if fmt == "json":
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    elif sys.stderr.isatty():
        # Through rich's console, so that log lines print above a live progress bar.
        from rich.text import Text

        def to_console(message: Any) -> None:
            stderr_console().print(Text.from_ansi(str(message).rstrip("\n")))

        line = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}"
        logger.add(
            to_console, level=level, format=line, colorize=True, backtrace=False, diagnose=False
        )
    else:
        line = "{time:YYYY-MM-DDTHH:mm:ss.SSSZZ} {level: <7} {message}"
        logger.add(
            sys.stderr, level=level, format=line, colorize=False, backtrace=False, diagnose=False
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)


@functools.cache
def stderr_console() -> Any:
    """The one rich console on stderr, shared by log lines and progress bars."""
    from rich.console import Console

    return Console(stderr=True)


# --- shared state --------------------------------------------------------------------------


@dataclass
class CliState:
    """What every command may need, built on first use: plugins, registry, config."""

    config_path: Path | None = None
    _pm: Any = None
    _registry: Any = None
    _config: Any = None
    cleanup: list[Any] = field(default_factory=list)

    def plugin_manager(self) -> Any:
        if self._pm is None:
            from hotfolder.config import find_config, read_raw
            from hotfolder.plugins import make_plugin_manager

            disabled: list[str] = []
            try:
                raw = read_raw(find_config(self.config_path))
                disabled = list(raw.get("plugins", {}).get("disabled", []))
            except ConfigError:
                pass  # no config yet: load every plugin; commands that need one say so
            self._pm = make_plugin_manager(disabled)
        return self._pm

    def registry(self) -> Any:
        if self._registry is None:
            from hotfolder.plugins import build_registry

            self._registry = build_registry(self.plugin_manager())
        return self._registry

    def config(self) -> Any:
        if self._config is None:
            from hotfolder.config import find_config, load_config

            path = find_config(self.config_path)
            self._config = load_config(path, self.registry())
            logger.debug("config: {}", path)
        return self._config

    def runtime(self, *, dry_run: bool = False) -> Any:
        from hotfolder.runtime import Runtime

        return Runtime(self.config(), self.plugin_manager(), self.registry(), dry_run=dry_run)


def fail(error: HotfolderError | str, code: int = EXIT_USAGE) -> NoReturn:
    """Log ``error`` as one clear message (no traceback) and exit with ``code``."""
    logger.error(str(error))
    sys.exit(code)


class _Group(click.Group):
    """A group whose HotfolderErrors end as one log line and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            fail(exc, EXIT_USAGE)
        except HotfolderError as exc:
            fail(exc, EXIT_FAILED)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="hotfolder")
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HOTFOLDER_CONFIG",
    help="Config file (default: $HOTFOLDER_CONFIG, ./hotfolder.toml, then the user config dir).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, log_level: str, log_format: str) -> None:
    """Image drop-folder automation: chains of local and Venice image operations."""
    configure_logging(log_level.upper(), log_format)
    if ctx.obj is None:
        ctx.obj = CliState()
    ctx.obj.config_path = config_path


# --- commands ------------------------------------------------------------------------------


@cli.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), default="hotfolder.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented starter config to PATH (default ./hotfolder.toml)."""
    from hotfolder.starter import starter_config

    if path.exists() and not force:
        fail(ConfigError(f"{path} already exists", hint="pass --force to overwrite it"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_config())
    logger.info("wrote {}; check it with: hotfolder --config {} validate", path, path)


@cli.command()
@click.pass_obj
def validate(state: CliState) -> None:
    """Check the config file; exit 0 when valid, 2 with every problem listed when not."""
    from hotfolder.daemon.settings import FolderSection

    config = state.config()
    click.echo(
        f"{config.path}: valid ({len(config.sections(FolderSection))} folder(s), "
        f"{len(config.chains)} chain(s): {', '.join(config.chains) or 'none'})"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def plugins(state: CliState, as_json: bool) -> None:
    """List the plugins loaded, their versions, hooks and what each registered."""
    from hotfolder.plugins import plugin_info

    registry = state.registry()
    rows = plugin_info(state.plugin_manager())
    for row in rows:
        for kind in ("operation", "resolver", "sink"):
            row[kind + "s"] = sorted(
                name for name, e in registry.table(kind).items() if e.plugin == row["name"]
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("plugin", "version", "provides", "hooks")
    for row in rows:
        provides = "\n".join(
            f"{kind}: {', '.join(row[kind])}"
            for kind in ("operations", "resolvers", "sinks")
            if row[kind]
        )
        name = row["name"] + (" (built-in)" if row["builtin"] else "")
        table.add_row(
            name, f"{row['distribution']} {row['version']}", provides, "\n".join(row["hooks"])
        )
    Console().print(table)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option(
    "--latency-ms", default=0, show_default=True, type=int, help="Added to every request."
)
@click.option(
    "--rpm", default=20, show_default=True, type=int, help="Image requests a minute per key."
)
@click.option("--balance-usd", default=100.0, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for scripted faults.")
def sandbox(host: str, port: int, latency_ms: int, rpm: int, balance_usd: float, seed: int) -> None:
    """Serve a local stand-in for Venice's image API (faults scriptable under /_sandbox/)."""
    from hotfolder.venice.sandbox import SandboxConfig, serve

    config = SandboxConfig(
        latency_ms=latency_ms, requests_per_minute=rpm, balance_usd=balance_usd, seed=seed
    )
    serve(config, host, port)


def _option_from_argv(argv: list[str], *names: str) -> str | None:
    """An option's value read before click parses: plugin loading, which comes first, then
    uses the same config (``[plugins] disabled``) and log format as everything else."""
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            return argv[i + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def main() -> None:
    """Entry point of the ``hotfolder`` script."""
    from hotfolder.daemon.commands import COMMANDS
    from hotfolder.plugins import call_observers
    from hotfolder.process import process

    for command in (process, *COMMANDS):
        cli.add_command(command)
    argv = sys.argv[1:]
    configure_logging(
        (_option_from_argv(argv, "--log-level") or "INFO").upper(),
        "json" if _option_from_argv(argv, "--log-format") == "json" else "text",
    )
    config = _option_from_argv(argv, "--config", "-c")
    state = CliState(config_path=Path(config) if config else None)
    try:
        pm = state.plugin_manager()
    except HotfolderError as exc:  # a broken plugin must not take the whole CLI down
        logger.warning("plugin commands not loaded: {}", exc)
    else:
        call_observers(pm, "hotfolder_register_commands", cli=cli)
    cli(prog_name="hotfolder", obj=state)
