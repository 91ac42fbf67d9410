"""``hotfolder process``: run a chain once over files, folders, URLs and manifests.

Paid steps keep their results as checkpoints in the cache folder (``checkpoints/`` beside the
Venice model list), keyed by the input's bytes and the chain, until the input is done; a run
that ends with work paused or failed can be started again and pays for nothing twice. When
Venice work pauses (:mod:`hotfolder.pauses`), jobs wait up to ``--wait-paused`` seconds for it
to resume, probing every ``[daemon] reprobe_seconds``, then the run ends with exit code 1 and
the fix.

A file's companion prompt file (``NAME.prompt.txt`` beside ``NAME.ext``, see
:mod:`hotfolder.prompts`) gives ``{prompt}`` in its chain's Venice steps its text; a prompt
file is never an input of its own. A job whose chain uses ``{prompt}`` and whose prompt file is
missing or unreadable fails before any step runs. Files found in a folder given on the command
line know their subfolder in it (``{dir}`` in output names).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import os
import shutil
import sys
import tempfile
import time
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
from hotfolder.errors import ConfigError, HotfolderError, InputError
from hotfolder.hookspecs import hookimpl
from hotfolder.job import Job
from hotfolder.localfiles import MANIFEST_SUFFIXES
from hotfolder.pauses import Pause, PauseWatch, pauses_work
from hotfolder.prompts import (
    is_prompt_file,
    prompt_digest,
    prompt_file_of,
    read_prompt,
    steps_using_prompt,
)
from hotfolder.waits import Wait

if TYPE_CHECKING:
    from hotfolder.config import Config
    from hotfolder.runtime import Runtime

#: Checkpoints older than this are left over from runs long gone: removed at start.
STALE_CHECKPOINT_SECONDS = 7 * 24 * 3600


@dataclass
class Outcome:
    job: Job
    state: str  # done | failed | paused
    detail: str = ""


def expand_sources(
    sources: tuple[str, ...],
    recursive: bool,
    include: tuple[str, ...],
    *,
    skip: tuple[Path, ...] = (),
) -> Iterator[tuple[str, str | None]]:
    """Each source as a reference, with the folder it was found in (None for one named): a
    folder becomes the files inside it.

    A file, URL or ``data:`` URI named is always taken, but for a prompt file (it goes with
    its image). Of a folder's files, hidden ones, prompt files and those inside ``skip`` (the
    chain's own output folders) never are, and the others only when they match ``include``
    (empty: every file).
    """
    for source in sources:
        path = Path(source)
        if "://" in source or source.startswith("data:") or not path.is_dir():
            if "://" not in source and is_prompt_file(path):
                logger.info("{} is a prompt file: it goes with its image, not alone", source)
                continue
            yield source, None
            continue
        walker = path.rglob("*") if recursive else path.iterdir()
        for entry in sorted(walker):
            relative = entry.relative_to(path).parts
            if any(part.startswith(".") for part in relative) or entry.is_dir():
                continue
            if is_prompt_file(entry):
                continue
            if include and not any(fnmatch.fnmatch(entry.name.lower(), p.lower()) for p in include):
                continue
            if skip and _inside(entry, skip):
                continue
            yield str(entry), source


def _inside(entry: Path, folders: tuple[Path, ...]) -> bool:
    real = Path(os.path.realpath(entry))
    return any(real.is_relative_to(folder) for folder in folders)


def default_include() -> tuple[str, ...]:
    """The names a watched folder takes by default (``[[folders]] include``): the files
    ``process`` takes from a folder unless ``--include`` or ``--all`` says otherwise."""
    from hotfolder.daemon.settings import FolderSection

    return tuple(FolderSection.model_fields["include"].get_default(call_default_factory=True))


def is_manifest(ref: str) -> bool:
    return "://" not in ref and ref.lower().endswith(MANIFEST_SUFFIXES)


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--chain",
    "chain_name",
    default=None,
    help="Name of a [chains.NAME] in the config (may be left out when every source is a "
    "manifest that names its chain).",
)
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
    help="Only files of folders that match (repeatable) [default: the image names a watched "
    "folder takes].",
)
@click.option(
    "--all",
    "take_all",
    is_flag=True,
    help="Take every file of the folders given, not only images (hidden files and the "
    "chain's own outputs still not).",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    default=None,
    help="Jobs at once [default: 2 per CPU].",
)
@click.option(
    "--wait-paused",
    "wait_paused_seconds",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for paused Venice work (no key, no balance, budget spent) to "
    "resume before giving up; 0: don't wait.",
)
@pass_state
def process(
    state: CliState,
    sources: tuple[str, ...],
    chain_name: str | None,
    dry_run: bool,
    sandbox: bool,
    recursive: bool,
    include: tuple[str, ...],
    take_all: bool,
    jobs: int | None,
    wait_paused_seconds: float,
) -> None:
    """Run a chain over SOURCES: image files, folders of images, URLs, data: URIs, manifests.

    Exits 0 when every input is done, 1 when some failed or were left paused, 2 on a usage
    or config error. A run left paused can be started again: paid steps already done are
    not paid for twice.
    """
    config = state.config()
    if chain_name is not None:
        config.chain(chain_name)  # fail early on an unknown chain
    if take_all:
        include = ()
    elif not include:
        include = default_include()
    skip = _output_folders(config, chain_name)
    found = list(expand_sources(sources, recursive, include, skip=skip))
    refs = [ref for ref, _ in found]
    if chain_name is None and (plain := [r for r in refs if not is_manifest(r)]):
        msg = f"no --chain given for {_short(plain[0])}"
        raise ConfigError(
            msg,
            hint="pass --chain NAME (a job manifest may name its own chain instead)",
        )
    job_list = [
        # a file found in a folder keeps where: {dir} in output names is its subfolder there
        Job(source=ref, chain=chain_name or "", seq=n, origin=folder and ref, folder=folder)
        for n, (ref, folder) in enumerate(found, start=1)
    ]
    if not job_list:
        logger.warning(
            "nothing to process in {} (a folder gives only the files its include matches: "
            "pass --all to take every file)",
            ", ".join(sources),
        )
        sys.exit(EXIT_OK)
    runtime = state.runtime(dry_run=dry_run)
    engine = Engine(runtime)
    if dry_run:
        unread = asyncio.run(_dry_run(runtime, engine, job_list, chain_name))
        sys.exit(EXIT_FAILED if unread else EXIT_OK)
    from hotfolder.cli.local_sandbox import sandbox_if
    from hotfolder.daemon.settings import DaemonSection
    from hotfolder.venice import VeniceSection

    settings = runtime.section(VeniceSection)
    with sandbox_if(sandbox, settings) as local, contextlib.ExitStack() as stack:
        if local is not None:
            local.attach(runtime)
            # A sandbox lives for this run only: so do its (simulated) checkpoints.
            checkpoints = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            checkpoints = settings.effective_cache_dir() / "checkpoints"
            _remove_stale(checkpoints)
        watch = PauseWatch(
            runtime.services, reprobe_seconds=runtime.section(DaemonSection).reprobe_seconds
        )
        run = _Run(runtime, job_list, checkpoints, watch, wait_paused_seconds, chain_name)
        outcomes = asyncio.run(run.all(jobs or default_jobs()))
    counts = Counter(o.state for o in outcomes)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("done", "failed", "paused") if counts[s])
    logger.info("processed {} input(s): {}", len(outcomes), summary)
    if counts["paused"]:
        detail = (
            run.last_pause.describe()
            if run.last_pause
            else next(o.detail for o in outcomes if o.state == "paused")
        )
        logger.error(
            "{} input(s) left undone: {}; their paid steps are saved, run the same command "
            "again once that is fixed",
            counts["paused"],
            detail,
        )
    sys.exit(EXIT_OK if counts["done"] == len(outcomes) else EXIT_FAILED)


def default_jobs() -> int:
    """Two jobs per CPU: Pillow releases the GIL while it decodes, resizes and encodes, and a
    job reading or writing a file leaves its CPU idle (measured in docs/benchmarks.md: 1.47
    cores used with one job per CPU, 1.57 with two)."""
    return 2 * (os.cpu_count() or 1)


def _output_folders(config: Config, chain_name: str | None) -> tuple[Path, ...]:
    """The folders the chains' sinks write into (``chain_name``'s, or every chain's when a
    manifest names it): a folder given to ``process`` never yields its own outputs."""
    from hotfolder.daemon.folders import output_roots

    names = [chain_name] if chain_name is not None else list(config.chains)
    return tuple(sorted({root for name in names for root in output_roots(config, name)}))


def _short(ref: str) -> str:
    return Job(source=ref, chain="").display


async def read_manifests(
    runtime: Runtime, job_list: list[Job], chain_name: str | None, *, quiet: bool = False
) -> int:
    """Give each manifest's job the chain and overrides the manifest names; ``--chain``
    naming another chain is a ConfigError. Returns how many manifests could not be read
    (each logged; run, such a job fails with the same error)."""
    unread = 0
    for job in job_list:
        if not is_manifest(job.source):
            continue
        try:
            job_input = await runtime.resolve(job.source, base_dir=job.base_dir)
        except HotfolderError as exc:
            if not quiet:
                said = Path(job.source).name in exc.message
                logger.error("{}", exc if said else f"{job.display}: {exc}")
            unread += 1
            continue
        named = job_input.chain
        if chain_name is not None and named is not None and named != chain_name:
            msg = f"{job.source} names chain {named!r}, but --chain says {chain_name!r}"
            raise ConfigError(
                msg,
                hint=f"leave out --chain to run the manifest's chain, or pass --chain {named}",
            )
        if named is None and chain_name is None:
            msg = f"{job.source} names no chain and no --chain was given"
            raise ConfigError(
                msg,
                hint='pass --chain NAME, or add chain = "NAME" to the manifest',
            )
        job.chain = named or job.chain
        runtime.config.chain(job.chain)  # fail early on an unknown chain
        for index, params in job_input.overrides.items():
            job.overrides.setdefault(index, {}).update(params)
    return unread


async def _dry_run(
    runtime: Runtime, engine: Engine, job_list: list[Job], chain_name: str | None
) -> int:
    try:
        unread = await read_manifests(runtime, job_list, chain_name)
    finally:
        await runtime.aclose()
    _print_plan(engine, [j for j in job_list if j.chain])
    return unread


def _print_plan(engine: Engine, job_list: list[Job]) -> None:
    total = 0.0
    paid_calls = 0
    for job in job_list:
        click.echo(f"{job.display} (chain {job.chain})")
        for step in engine.plan(job):
            cost = "" if step.estimate_usd is None else f" ~${step.estimate_usd:.4f}"
            kind = "paid call" if step.paid else "local"
            params = " ".join(f"{k}={v!r}" for k, v in step.params.items())
            click.echo(f"  {step.index}. {step.op} [{kind}{cost}] {params}".rstrip())
            paid_calls += step.paid
            total += step.estimate_usd or 0.0
    click.echo(f"{len(job_list)} input(s), {paid_calls} paid call(s), estimated ${total:.2f}")


class _Run:
    """One ``process`` run: the jobs, their checkpoints, and the wait for a pause to end."""

    def __init__(
        self,
        runtime: Runtime,
        job_list: list[Job],
        checkpoints: Path,
        watch: PauseWatch,
        wait_paused_seconds: float,
        chain_name: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.chain_name = chain_name
        self.job_list = job_list
        self.checkpoints = checkpoints
        self.watch = watch
        self.wait_paused_seconds = wait_paused_seconds
        self.progress = _Progress(len(job_list))
        self.engine = Engine(runtime, on_wait=self.progress.waiting)
        self.last_pause: Pause | None = None
        self._deadline: float | None = None
        self._probe_lock = asyncio.Lock()
        self._in_use: dict[Path, asyncio.Lock] = {}

    async def all(self, concurrency: int) -> list[Outcome]:
        limit = asyncio.Semaphore(concurrency)

        async def limited(job: Job) -> Outcome:
            async with limit:
                outcome = await self.one(job)
            self.progress.advance(outcome.state)
            return outcome

        try:
            await read_manifests(self.runtime, self.job_list, self.chain_name, quiet=True)
            with self.progress:
                return list(await asyncio.gather(*(limited(j) for j in self.job_list)))
        finally:
            await self.runtime.aclose()

    async def one(self, job: Job) -> Outcome:
        """Run ``job``; when it meets a pause, wait for the pause to end and run it again (its
        paid steps come from its checkpoints)."""
        while True:
            if not await self.resumed():
                return Outcome(job, "paused", self.last_pause.describe() if self.last_pause else "")
            try:
                await asyncio.to_thread(self._check_prompt, job)
                job_input = await self.engine.resolve(job)
                job.checkpoint_dir = await asyncio.to_thread(self._checkpoint_dir, job, job_input)
                # the same input named twice: one at a time, each its own paid result
                async with self._in_use.setdefault(job.checkpoint_dir, asyncio.Lock()):
                    await self.engine.run(job, job_input=job_input)
                    await asyncio.to_thread(shutil.rmtree, job.checkpoint_dir, True)
            except HotfolderError as exc:
                if pauses_work(exc) and self.watch.current() is not None:
                    continue  # wait for it to end, then run the job again
                named = Path(job.source).name in exc.message
                logger.bind(
                    job=job.id, file=job.display, chain=job.chain, step=exc.step, hint=exc.hint
                ).error("{}", exc if named else f"{job.display}: {exc}")
                return Outcome(job, "paused" if pauses_work(exc) else "failed", str(exc))
            return Outcome(job, "done")

    def _check_prompt(self, job: Job) -> None:
        """When the job's chain uses ``{prompt}``, read its prompt file now: a missing or
        unreadable one fails the job before any step (paid or not) runs."""
        if not job.chain or is_manifest(job.source):
            return  # a manifest's steps are checked when they run
        steps = self.runtime.config.chain(job.chain).steps
        using = steps_using_prompt(steps)
        if not using:
            return
        path = prompt_file_of(job.source)
        if path is None:
            msg = (
                f"{job.display}: chain {job.chain!r} step {using[0]} uses {{prompt}}, which "
                "only a local image file with a prompt file beside it can fill"
            )
            raise InputError(msg, hint="pass the image file, with NAME.prompt.txt beside it")
        read_prompt(path)

    def _checkpoint_dir(self, job: Job, job_input: Any) -> Path:
        """The job's own checkpoint folder, the same in the next run of the same command: by
        the input's bytes, the chain and where the input came from (two copies of one image
        are two jobs, each with its own paid result)."""
        chain = self.runtime.config.chain(job_input.chain or job.chain)
        source = hashlib.sha256(job.source.encode()).hexdigest()[:16]
        name = f"{job_input.artifact.sha256[:32]}-{chain.digest[:16]}-{source}"
        local = prompt_file_of(job.source) is not None
        if local and (digest := prompt_digest(Path(job.source))) is not None:
            name += f"-{digest[:16]}"  # the same image with another prompt is another job
        return self.checkpoints / name

    async def resumed(self) -> bool:
        """True once nothing is paused; False when ``--wait-paused`` ran out first."""
        while (pause := self.watch.current()) is not None:
            self.last_pause = pause
            now = time.time()
            if self._deadline is None:
                self._deadline = now + self.wait_paused_seconds
                if self.wait_paused_seconds and pause.lifts_by_probe:
                    logger.warning(
                        "{}; waiting up to {:g}s for it to resume (checking every {:g}s)",
                        pause.describe(),
                        self.wait_paused_seconds,
                        self.watch.reprobe_seconds,
                    )
            if now >= self._deadline or not pause.lifts_by_probe:
                return False
            self.progress.paused(pause, self._deadline)
            next_probe = self.watch.next_probe_at() or now
            await asyncio.sleep(max(0.0, min(next_probe, self._deadline) - now))
            async with self._probe_lock:
                if self.watch.due() and await self.watch.probe():
                    self._deadline = None
                    self.progress.paused(None, None)
        return True


def _remove_stale(checkpoints: Path) -> None:
    """Remove checkpoints of runs long gone (their inputs were never run again)."""
    cutoff = time.time() - STALE_CHECKPOINT_SECONDS
    with contextlib.suppress(FileNotFoundError):
        for entry in checkpoints.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_dir() and entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)


class _Progress:
    """A rich progress bar with counts and ETA on a terminal; nothing extra otherwise (each
    job logs its own line)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.counts: Counter[str] = Counter()
        self._bar: Any = None
        self._task: Any = None
        self._waits: dict[str, Wait] = {}
        self._pause: str | None = None

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
        self._show(advance=1)

    def waiting(self, job: Job, wait: Wait | None) -> None:
        """A job started or stopped waiting for something shared (a Venice rate slot)."""
        if wait is None:
            self._waits.pop(job.id, None)
        else:
            self._waits[job.id] = wait
        self._show()

    def paused(self, pause: Pause | None, until: float | None) -> None:
        """Work is paused (and waited for until ``until``), or no longer."""
        if pause is None or until is None:
            self._pause = None
        else:
            left = max(0, round(until - time.time()))
            self._pause = f"paused: {pause.kind} ({left}s left to wait)"
        self._show()

    def _show(self, advance: int = 0) -> None:
        if self._bar is None:
            return
        parts = [" ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "processing"]
        if self._pause:
            parts.append(self._pause)
        elif self._waits:
            what = next(iter(self._waits.values())).what
            parts.append(f"{len(self._waits)} waiting for {what}")
        self._bar.update(self._task, advance=advance, description=" · ".join(parts))

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    cli.add_command(process)
