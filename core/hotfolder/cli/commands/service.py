"""``hotfolder run``, ``hotfolder status`` and ``hotfolder retry``: the daemon and its journal.

All three find the journal the same way:
``--state-dir`` (or ``$HOTFOLDER_STATE_DIR``), else ``[daemon] state_dir``, else the platform's
user state folder.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from loguru import logger

from hotfolder.cli._state import EXIT_FAILED, CliState, fail, pass_state
from hotfolder.daemon.settings import (
    DaemonSection,
    FolderSection,
    chosen_state_dir,
    resolve_state_dir,
)
from hotfolder.errors import ConfigError, HotfolderError
from hotfolder.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from hotfolder.config import Config
    from hotfolder.runtime import Runtime

_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the journal and the instance lock live [default: $HOTFOLDER_STATE_DIR, "
    "then [daemon] state_dir, then the platform's user state folder].",
)


def _state_dir(state: CliState, value: Path | None) -> tuple[Path, Config | None]:
    """The state dir, and the config when one can be read (status works without one)."""
    value = chosen_state_dir(value or state.state_dir)
    try:
        config = state.config()
    except ConfigError:
        if value is None:
            raise
        config = None
    return resolve_state_dir(value, config.section(DaemonSection) if config else None), config


@click.command()
@click.option(
    "--sandbox", is_flag=True, help="Send Venice calls to a local sandbox started for this run."
)
@_state_dir_option
@click.option(
    "--web",
    metavar="HOST:PORT",
    help="Serve the dashboard there too (default: [web] listen; loopback unless [web] token).",
)
@pass_state
def run(state: CliState, sandbox: bool, state_dir: Path | None, web: str | None) -> None:
    """Watch every [[folders]] entry and run its chain on each complete file, until stopped.

    SIGTERM or Ctrl-C stops taking files and lets running jobs finish ([daemon]
    grace_seconds); SIGHUP reloads the config. One daemon runs per state dir. With --web
    (or [web] listen) the dashboard is served from the same process.
    """
    from hotfolder.cli import _fleet
    from hotfolder.cli._allocator import fix_mmap_threshold
    from hotfolder.cli.local_sandbox import sandbox_if
    from hotfolder.daemon.service import Daemon
    from hotfolder.runtime import Runtime
    from hotfolder.venice import VeniceSection

    fix_mmap_threshold()
    config = state.config()
    directory = resolve_state_dir(state_dir or state.state_dir, config.section(DaemonSection))
    pm, registry = state.plugin_manager(), state.registry()
    fleet = _fleet.executor(config)
    if fleet is not None and sandbox:
        fail(
            "--sandbox starts a sandbox inside this process, which the fleet's workers cannot "
            "reach: start `hotfolder sandbox` and point the watcher and every worker at it "
            "with VENICE_BASE_URL (see docs/scale-out.md)"
        )
    with sandbox_if(sandbox, config.section(VeniceSection)) as local:

        def local_runtime(cfg: Config) -> Runtime:
            runtime = Runtime(cfg, pm, registry)
            return local.attach(runtime) if local is not None else runtime

        if local is None:
            _say_which_chains_wait_for_a_key(config)
        companions = _dashboard(config, directory, web)
        make_runtime: Callable[[Config], Runtime] = local_runtime
        runner = None
        if fleet is not None:
            make_runtime = _fleet.sharing_account(local_runtime, fleet)
            runner = _fleet.runner(fleet)
        daemon = Daemon(config, make_runtime, registry, directory, companions, runner=runner)
        asyncio.run(daemon.run())


def _say_which_chains_wait_for_a_key(config: Config) -> None:
    """Without a Venice key the client starts paused: say so at start, naming the chains."""
    from hotfolder.venice import VeniceSection

    settings = config.section(VeniceSection)
    if settings.api_key.reveal():
        return
    waiting = sorted(
        {
            name
            for folder in config.sections(FolderSection)
            for name in folder.chain_names
            if any(step.op.name.startswith("venice.") for step in config.chain(name).steps)
        }
    )
    if waiting:
        logger.warning(
            "no Venice API key ({} is not set): the chains {} will wait, their files claimed, "
            "until the daemon is restarted (or reloaded with SIGHUP) with one; local chains go "
            "on. Set it (https://venice.ai/settings/api), or run with --sandbox to try",
            settings.api_key.describe(),
            ", ".join(waiting),
        )


def _dashboard(config: Config, state_dir: Path, web: str | None) -> list[Any]:
    """The dashboard to serve beside the daemon (``--web``, else ``[web] listen``), if any;
    a non-loopback address without ``[web] token`` is a ConfigError (exit 2)."""
    from hotfolder.web.settings import WebSection, checked_listen

    section = config.section(WebSection)
    address = web or section.listen
    if address is None:
        return []
    listen, token = checked_listen(address, section)
    from hotfolder.web.context import Dashboard
    from hotfolder.web.server import WebServer, trusted_hosts

    dashboard = Dashboard(state_dir, config, token, hosts=trusted_hosts(listen, token))
    return [WebServer(dashboard, listen, listen_setting=section.listen)]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_state_dir_option
@pass_state
def status(state: CliState, as_json: bool, state_dir: Path | None) -> None:
    """Show each folder's jobs by state, jobs in flight, last errors, pauses and today's spend."""
    from hotfolder.daemon.status import collect, render

    directory, config = _state_dir(state, state_dir)
    data = collect(directory, config)
    click.echo(json.dumps(data, indent=2) if as_json else render(data))


@click.command()
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Queue every failed job again.")
@_state_dir_option
@pass_state
def retry(
    state: CliState, job_ids: tuple[str, ...], all_failed: bool, state_dir: Path | None
) -> None:
    """Queue failed jobs again: their originals move back from the failed place.

    A running daemon picks them up within a second; otherwise the next `hotfolder run` does.
    """
    from hotfolder.daemon.journal import JOURNAL_NAME, Journal
    from hotfolder.daemon.requeue import requeue
    from hotfolder.localfiles import STRICT, policy_for

    if not job_ids and not all_failed:
        fail(ConfigError("name the job(s) to retry", hint="give JOB ids, or pass --all-failed"))
    directory, config = _state_dir(state, state_dir)
    policy = policy_for(config) if config is not None else STRICT
    journal = Journal(directory / JOURNAL_NAME)
    try:
        rows = journal.jobs(states=["failed"]) if all_failed else []
        for job_id in job_ids:
            row = journal.get(job_id)
            if row is None:
                fail(
                    ConfigError(
                        f"no job {job_id!r} in {journal.path}", hint="see: hotfolder status"
                    )
                )
            rows.append(row)
        problems = 0
        for row in rows:
            try:
                requeue(journal, row, policy)
            except HotfolderError as exc:
                logger.error("{}", exc)
                problems += 1
            else:
                click.echo(f"queued again: {row.name} (job {row.id})")
    finally:
        journal.close()
    if problems:
        raise SystemExit(EXIT_FAILED)


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    for command in (run, status, retry):
        cli.add_command(command)
