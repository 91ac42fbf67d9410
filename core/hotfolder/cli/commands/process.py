"""``hotfolder process``: run a chain once over files, folders, URLs and manifests."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from loguru import logger

from hotfolder.cli._logging import stderr_console
from hotfolder.cli._state import EXIT_FAILED, EXIT_OK, CliState, pass_state
from hotfolder.engine import Engine
from hotfolder.errors import AuthError, BalanceError, BudgetExceeded, HotfolderError
from hotfolder.hookspecs import hookimpl
from hotfolder.job import Job

if TYPE_CHECKING:
    from hotfolder.runtime import Runtime


@dataclass
class Outcome:
    job: Job
    state: str  # done | failed | paused
    detail: str = ""


def expand_sources(
    sources: tuple[str, ...], recursive: bool, include: tuple[str, ...]
) -> Iterator[str]:
    """Each source as a reference: a folder becomes the files inside it.

    Hidden files are skipped; every other file is taken (or only those matching ``include``),
    since the imaging gate decides by content, and a file it refuses gets its own error line.
    """
    for source in sources:
        path = Path(source)
        if "://" in source or source.startswith("data:") or not path.is_dir():
            yield source
            continue
        walker = path.rglob("*") if recursive else path.iterdir()
        for entry in sorted(walker):
            relative = entry.relative_to(path).parts
            if any(part.startswith(".") for part in relative) or entry.is_dir():
                continue
            if include and not any(fnmatch.fnmatch(entry.name.lower(), p.lower()) for p in include):
                continue
            yield str(entry)


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--chain", "chain_name", required=True, help="Name of a [chains.NAME] in the config.")
@click.option(
    "--dry-run", is_flag=True, help="Show each file's steps, paid calls and cost; run nothing."
)
@click.option(
    "--sandbox", is_flag=True, help="Send Venice calls to a local sandbox started for this run."
)
@click.option("--recursive", "-r", is_flag=True, help="Look into subfolders of folders given.")
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Only files of folders that match (repeatable).",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=None,
    help="Jobs at once [default: 2 per CPU].",
)
@pass_state
def process(
    state: CliState,
    sources: tuple[str, ...],
    chain_name: str,
    dry_run: bool,
    sandbox: bool,
    recursive: bool,
    include: tuple[str, ...],
    jobs: int | None,
) -> None:
    """Run a chain over SOURCES: image files, folders of images, URLs, data: URIs, manifests.

    Exits 0 when every input is done, 1 when some failed or were left paused, 2 on a usage
    or config error.
    """
    config = state.config()
    config.chain(chain_name)  # fail early on an unknown chain
    job_list = [
        Job(source=ref, chain=chain_name, seq=n)
        for n, ref in enumerate(expand_sources(sources, recursive, include), start=1)
    ]
    if not job_list:
        logger.warning("nothing to process in {}", ", ".join(sources))
        sys.exit(EXIT_OK)
    runtime = state.runtime(dry_run=dry_run)
    engine = Engine(runtime)
    if dry_run:
        _print_plan(engine, job_list)
        sys.exit(EXIT_OK)
    from hotfolder.cli.local_sandbox import sandbox_if
    from hotfolder.venice import VeniceSection

    with sandbox_if(sandbox, runtime.section(VeniceSection)) as local:
        if local is not None:
            local.attach(runtime)
        outcomes = asyncio.run(_run_all(runtime, engine, job_list, jobs or default_jobs()))
    counts = Counter(o.state for o in outcomes)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("done", "failed", "paused") if counts[s])
    logger.info("processed {} input(s): {}", len(outcomes), summary)
    sys.exit(EXIT_OK if counts["done"] == len(outcomes) else EXIT_FAILED)


def default_jobs() -> int:
    """Two jobs per CPU: Pillow releases the GIL while it decodes, resizes and encodes, and a
    job reading or writing a file leaves its CPU idle (measured in docs/benchmarks.md: 1.47
    cores used with one job per CPU, 1.57 with two)."""
    return 2 * (os.cpu_count() or 1)


def _print_plan(engine: Engine, job_list: list[Job]) -> None:
    total = 0.0
    paid_calls = 0
    for job in job_list:
        click.echo(job.source)
        for step in engine.plan(job):
            cost = "" if step.estimate_usd is None else f" ~${step.estimate_usd:.4f}"
            kind = "paid call" if step.paid else "local"
            params = " ".join(f"{k}={v!r}" for k, v in step.params.items())
            click.echo(f"  {step.index}. {step.op} [{kind}{cost}] {params}".rstrip())
            paid_calls += step.paid
            total += step.estimate_usd or 0.0
    click.echo(f"{len(job_list)} input(s), {paid_calls} paid call(s), estimated ${total:.2f}")


async def _run_all(
    runtime: Runtime, engine: Engine, job_list: list[Job], concurrency: int
) -> list[Outcome]:
    limit = asyncio.Semaphore(concurrency)
    progress = _Progress(len(job_list))
    paused: list[HotfolderError] = []

    async def one(job: Job) -> Outcome:
        async with limit:
            if paused:
                return Outcome(job, "paused", str(paused[0]))
            try:
                await engine.run(job)
            except (AuthError, BalanceError, BudgetExceeded) as exc:
                if not paused:
                    logger.error("Venice work paused: {}", exc)
                paused.append(exc)
                outcome = Outcome(job, "paused", str(exc))
            except HotfolderError as exc:
                named = Path(job.source).name in exc.message
                logger.error("{}", exc if named else f"{job.source}: {exc}")
                outcome = Outcome(job, "failed", str(exc))
            else:
                outcome = Outcome(job, "done")
            progress.advance(outcome.state)
            return outcome

    try:
        with progress:
            return list(await asyncio.gather(*(one(j) for j in job_list)))
    finally:
        await runtime.aclose()


class _Progress:
    """A rich progress bar with counts and ETA on a terminal; nothing extra otherwise (each
    job logs its own line)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.counts: Counter[str] = Counter()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("processing", total=self.total)
        return self

    def advance(self, state: str) -> None:
        self.counts[state] += 1
        if self._bar is not None:
            description = " ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
            self._bar.update(self._task, advance=1, description=description)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    cli.add_command(process)
