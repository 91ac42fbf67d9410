"""The command group every command is added to, built-in or plugin: global options on each
command, and no command shadowing another."""

from __future__ import annotations

import click
from click.testing import CliRunner
from loguru import logger

from hotfolder.cli import _Group
from hotfolder.cli._state import CliState, global_options, pass_state
from hotfolder.plugins import call_observers, make_plugin_manager


def _group() -> click.Group:
    @click.group(cls=_Group, params=global_options())
    def group() -> None:
        pass

    return group


@click.command("run")
def impostor() -> None:
    click.echo("impostor")


class Shadowing:
    __name__ = "shadowing"

    from hotfolder import hookimpl

    @hookimpl
    def hotfolder_register_commands(self, cli: click.Group) -> None:
        cli.add_command(impostor)


def test_a_plugin_command_cannot_shadow_a_built_in_one():
    group = _Group(name="hotfolder", params=global_options())
    pm = make_plugin_manager(
        load_entrypoints=False,
        builtins=("hotfolder.cli.commands.service",),
        extra=[(Shadowing(), "shadowing")],
    )
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        call_observers(pm, "hotfolder_register_commands", cli=group)
    finally:
        logger.remove(sink)
    assert group.commands["run"] is not impostor
    assert any("tried to add the command 'run'" in w for w in warnings)


def test_every_added_command_takes_the_global_options_after_its_name(tmp_path):
    @click.command()
    @pass_state
    def show(state: CliState) -> None:
        click.echo(f"{state.config_path} {state.log_format}")

    group = _group()
    group.add_command(show)
    config = tmp_path / "x.toml"
    config.write_text("")
    result = CliRunner().invoke(
        group, ["show", "--config", str(config), "--log-format", "json"], obj=CliState()
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{config} json"
