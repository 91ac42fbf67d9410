"""``hotfolder init``, ``hotfolder validate`` and ``hotfolder plugins``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from loguru import logger

from hotfolder.cli._state import CliState, fail, pass_state
from hotfolder.errors import ConfigError
from hotfolder.hookspecs import hookimpl


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), default="hotfolder.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, force: bool) -> None:
    """Write a commented starter config to PATH (default ./hotfolder.toml)."""
    from hotfolder.starter import starter_config

    if path.exists() and not force:
        fail(ConfigError(f"{path} already exists", hint="pass --force to overwrite it"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_config())
    logger.info("wrote {}; check it with: hotfolder validate --config {}", path, path)


@click.command()
@pass_state
def validate(state: CliState) -> None:
    """Check the config file; exit 0 when valid, 2 with every problem listed when not."""
    from hotfolder.daemon.settings import FolderSection

    config = state.config()
    click.echo(
        f"{config.path}: valid ({len(config.sections(FolderSection))} folder(s), "
        f"{len(config.chains)} chain(s): {', '.join(config.chains) or 'none'})"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
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


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    for command in (init, validate, plugins):
        cli.add_command(command)
