"""``hotfolder worker``: run a fleet's chains (``[executor] kind = "dramatiq"``).

With ``--processes N`` (more than one) this process only supervises: it starts N worker
processes, restarts one that dies, and passes SIGTERM/SIGINT on to them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import click
from loguru import logger

from hotfolder.cli._state import CliState, fail, pass_state
from hotfolder.hookspecs import hookimpl

#: How long a worker waits for running jobs on SIGTERM before their messages go back.
GRACE_SECONDS = 30.0


@click.command()
@click.option(
    "--processes",
    "-p",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Worker processes to run (each with its own Venice connections).",
)
@click.option(
    "--threads",
    "-t",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Jobs each process runs at once.",
)
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=GRACE_SECONDS,
    show_default=True,
    help="Seconds running jobs get to finish on SIGTERM; then they go to another worker.",
)
@pass_state
def worker(state: CliState, processes: int, threads: int, grace: float) -> None:  # fmt: skip
    """Run the jobs a `hotfolder run` with [executor] kind = "dramatiq" sends, until stopped.

    Start any number, on any machine that sees the watched folders at the same paths (or
    maps them with [executor] path_map) and has the same config. See docs/scale-out.md.
    """
    from hotfolder.cli import _fleet
    from hotfolder.cli._allocator import fix_mmap_threshold

    fix_mmap_threshold()
    config = state.config()
    section = _fleet.executor(config)
    if section is None:
        fail(
            f'{config.path}: [executor] kind is "local": chains run inside `hotfolder run`, '
            'there is nothing for a worker to do. Set [executor] kind = "dramatiq" (and '
            "redis_url) to share the work; see docs/scale-out.md"
        )
    if processes > 1:
        raise SystemExit(_supervise(processes))
    from hotfolder.fleet.worker import FleetWorker
    from hotfolder.runtime import Runtime

    pm, registry = state.plugin_manager(), state.registry()
    make_runtime = _fleet.sharing_account(lambda cfg: Runtime(cfg, pm, registry), section)
    fleet_worker = FleetWorker(section, lambda: make_runtime(config), threads=threads)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    fleet_worker.start()
    stop.wait()
    logger.info("stopping: running jobs get up to {:g}s", grace)
    fleet_worker.stop(grace)
    logger.info("worker stopped")


def _supervise(processes: int) -> int:
    """Run ``processes`` copies of this command with ``--processes 1``; restart one that dies
    unless stopping; pass SIGTERM/SIGINT on."""
    argv = _single_process_argv(sys.argv)
    stopping = threading.Event()
    children: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    children.extend(subprocess.Popen(argv) for _ in range(processes))
    logger.info("supervising {} worker processes: {}", processes,
                ", ".join(str(c.pid) for c in children))  # fmt: skip
    while not stopping.is_set():
        for i, child in enumerate(children):
            if child.poll() is not None and not stopping.is_set():
                logger.warning("worker process {} ended ({}); starting another", child.pid,
                               child.returncode)  # fmt: skip
                children[i] = subprocess.Popen(argv)
        stopping.wait(1.0)
    return max((child.wait() for child in children), default=0)


def _single_process_argv(argv: list[str]) -> list[str]:
    args, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg in ("--processes", "-p"):
            skip = True
            continue
        if arg.startswith("--processes="):
            continue
        args.append(arg)
    return [sys.executable, "-m", "hotfolder", *args, "--processes", "1"]


@hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    cli.add_command(worker)
