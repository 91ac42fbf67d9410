"""``hotfolder init``, ``hotfolder validate`` and ``hotfolder plugins``."""

from __future__ import annotations

import json
import sys
import tomllib
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
    """Write a commented starter config to PATH (default ./hotfolder.toml) and make the
    folders it watches."""
    from hotfolder.starter import starter_config

    if path.exists() and not force:
        fail(ConfigError(f"{path} already exists", hint="pass --force to overwrite it"))
    path.parent.mkdir(parents=True, exist_ok=True)
    text = starter_config()
    path.write_text(text)
    logger.info("wrote {}; check it with: hotfolder validate --config {}", path, path)
    for folder in tomllib.loads(text).get("folders", []):
        inbox = path.parent / folder["path"]
        if not inbox.is_dir():
            inbox.mkdir(parents=True)
            logger.info("made {}: `hotfolder run` takes every image dropped there", inbox)


@click.command()
@pass_state
def validate(state: CliState) -> None:
    """Check the config file; exit 0 when valid, 2 with every problem listed when not."""
    from hotfolder.config import find_config, load_config
    from hotfolder.daemon.folders import folder_problems
    from hotfolder.daemon.settings import FolderSection

    path = find_config(state.config_path)
    config = load_config(path, state.registry(), checks=[folder_problems])
    logger.debug("config: {}", path)
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
    # Piped, rich would cut the table at 80 columns: give it all the width it needs.
    Console(width=None if sys.stdout.isatty() else 1000).print(table)


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    for command in (init, validate, plugins):
        cli.add_command(command)
