"""``hotfolder run``, ``hotfolder status`` and ``hotfolder retry``.

The CLI adds :data:`COMMANDS` to its group. All three find the journal the same way:
``--state-dir`` (or ``$HOTFOLDER_STATE_DIR``), else ``[daemon] state_dir``, else the platform's
user state folder.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import click
from loguru import logger

from hotfolder.cli import EXIT_FAILED, CliState, fail
from hotfolder.daemon import claim
from hotfolder.daemon.readiness import unsafe_reason
from hotfolder.daemon.settings import STATE_DIR_ENV, DaemonSection, resolve_state_dir
from hotfolder.errors import ConfigError, HotfolderError
from hotfolder.journal import JOURNAL_NAME, JobRow, Journal

_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=STATE_DIR_ENV,
    help="Where the journal and the instance lock live [default: [daemon] state_dir, "
    "else the platform's user state folder].",
)


def _state_dir(state: CliState, value: Path | None) -> tuple[Path, Any]:
    """The state dir, and the config when one can be read (status works without one)."""
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
@click.pass_obj
def run(state: CliState, sandbox: bool, state_dir: Path | None) -> None:
    """Watch every [[folders]] entry and run its chain on each complete file, until stopped.

    SIGTERM or Ctrl-C stops taking files and lets running jobs finish ([daemon]
    grace_seconds); SIGHUP reloads the config. One daemon runs per state dir.
    """
    from hotfolder.daemon.service import Daemon
    from hotfolder.runtime import Runtime

    config = state.config()
    directory = resolve_state_dir(state_dir, config.section(DaemonSection))
    pm, registry = state.plugin_manager(), state.registry()

    def make_runtime(cfg: Any) -> Runtime:
        return Runtime(cfg, pm, registry)

    daemon = Daemon(config, make_runtime, registry, directory, sandbox=sandbox)
    asyncio.run(daemon.run())


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_state_dir_option
@click.pass_obj
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
@click.pass_obj
def retry(
    state: CliState, job_ids: tuple[str, ...], all_failed: bool, state_dir: Path | None
) -> None:
    """Queue failed jobs again: their originals move back from the failed place.

    A running daemon picks them up within a second; otherwise the next `hotfolder run` does.
    """
    if not job_ids and not all_failed:
        fail(ConfigError("name the job(s) to retry", hint="give JOB ids, or pass --all-failed"))
    directory, _ = _state_dir(state, state_dir)
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
                requeue(journal, row)
            except HotfolderError as exc:
                logger.error("{}", exc)
                problems += 1
            else:
                click.echo(f"queued again: {row.name} (job {row.id})")
    finally:
        journal.close()
    if problems:
        raise SystemExit(EXIT_FAILED)


def requeue(journal: Journal, row: JobRow) -> None:
    """Move a failed job's original back into its processing folder and queue the job."""
    if row.state != "failed":
        msg = f"job {row.id} ({row.name}) is {row.state}, not failed"
        raise HotfolderError(msg, hint="only failed jobs are retried")
    root = Path(row.folder)
    source = claim.input_path(root, row.id, row.name)
    place = Path(row.place) if row.place else None
    if not os.path.lexists(source):
        if place is None or not os.path.lexists(place):
            msg = f"job {row.id}: the original of {row.name} is no longer at {place}"
            raise HotfolderError(msg, hint="drop the file into the folder again instead")
        if reason := unsafe_reason(place.lstat()):
            msg = f"job {row.id}: {place} is never processed: {reason}"
            raise HotfolderError(msg, hint="drop the file itself into the folder instead")
        claim.move_into(place, source)
        Path(str(place) + claim.ERROR_SUFFIX).unlink(missing_ok=True)
    journal.update(
        row.id,
        state="queued",
        attempts=0,
        not_before=0,
        error=None,
        place=None,
        finished=None,
    )


COMMANDS: tuple[click.Command, ...] = (run, status, retry)
