"""Run the benchmarks and write their report.

``python -m tests.bench.run --output docs/benchmarks.md`` (``make bench``) runs every benchmark
at full size, 3 repetitions; ``--quick`` (``make bench-quick``, part of ``make test``) runs each
once on a tiny size and prints the report. The exit code is 1 when a benchmark crashed, never
because a goal was missed: the figures are the product, not a pass mark.
"""

from __future__ import annotations

import argparse
import compileall
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from loguru import logger

from tests.bench import (
    dashboard,
    drop_latency,
    fleet,
    local_chain,
    memory,
    real_rate,
    startup_scan,
    venice_throughput,
    wire_bytes,
)
from tests.bench.common import REPO, STOPS, Bench, Benchmark, Section
from tests.bench.report import code_state, machine, render

BENCHMARKS: tuple[Benchmark, ...] = (
    venice_throughput,
    drop_latency,
    local_chain,
    wire_bytes,
    memory,
    startup_scan,
    dashboard,
    fleet,
    real_rate,
)
FULL_REPS = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and write their report.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--output", type=Path, help="write the report here (default: stdout)")
    parser.add_argument(
        "--only", type=int, action="append", metavar="N", help="run benchmark N (repeatable)"
    )
    parser.add_argument("--reps", type=int, help=f"repetitions (default {FULL_REPS}; quick 1)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else FULL_REPS)
    STOPS.timeout_s = 5.0 if args.quick else 20.0
    logger.remove()  # the in-process sandbox logs through loguru: keep the progress readable
    logger.add(sys.stderr, level="WARNING")
    # Stopping a sandbox that still holds requests (benchmark 5) makes uvicorn log each one.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)

    _compile_bytecode()
    machine_rows = machine()
    code = code_state()
    work = Path(tempfile.mkdtemp(prefix="hotfolder-bench-"))
    started = time.monotonic()
    sections: list[Section] = []
    try:
        for module in BENCHMARKS:
            if args.only and module.NUMBER not in args.only:
                continue
            sections.append(_run_one(module, Bench(args.quick, reps, work / str(module.NUMBER))))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "make bench-quick" if args.quick else "make bench"
    code_changed = code_state() != code
    if code_changed:
        print("warning: the code under test changed during the run", file=sys.stderr)
    report = render(
        sections,
        machine_rows,
        quick=args.quick,
        reps=reps,
        seconds=time.monotonic() - started,
        command=command,
        code_changed=code_changed,
    )
    if args.output:
        args.output.write_text(report)
        print(f"report written to {args.output}")
    else:
        print(report)
    crashed = [s for s in sections if s.error]
    for section in crashed:
        print(f"benchmark {section.number} ({section.title}) crashed", file=sys.stderr)
    return 1 if crashed else 0


def _compile_bytecode() -> None:
    """Compile the code under test to bytecode first, as ``pip install`` does: the ``hotfolder``
    processes the benchmarks start then load it rather than compiling their modules from source
    at every start (which they would under ``PYTHONDONTWRITEBYTECODE``, or on a first run)."""
    for folder in ("core", "plugins", "contrib"):
        compileall.compile_dir(REPO / folder, quiet=1)


def _run_one(module: Benchmark, bench: Bench) -> Section:
    number, title = module.NUMBER, module.TITLE
    print(f"== {number}. {title}", flush=True)
    load = os.getloadavg()
    started = time.monotonic()
    stops, killed, lost = STOPS.stops, STOPS.killed, STOPS.lost
    bench.work.mkdir(parents=True)
    try:
        section = module.run(bench)
    except Exception:
        section = Section(number, title, setup="", error=traceback.format_exc())
        print(section.error, file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    section.seconds = time.monotonic() - started
    section.load = load
    if STOPS.killed > killed:
        section.notes.append(
            f"{STOPS.killed - killed} of the {STOPS.stops - stops} daemons stopped with SIGTERM "
            f"were still running {STOPS.timeout_s:g} s later and were killed (the figures were "
            f"taken before the stop). In {STOPS.lost - lost} of them the daemon's log shows "
            "Python failing to write the signal to asyncio's wakeup fd (its self-pipe was "
            "full), so the SIGTERM was lost."
        )
    print(f"   took {section.seconds:.0f}s", flush=True)
    return section


if __name__ == "__main__":
    sys.exit(main())
