"""Run the benchmarks and write their report.

``python -m tests.bench.run --output docs/benchmarks.md`` (``make bench``) runs every benchmark
at full size, 3 repetitions; ``--quick`` (``make bench-quick``, part of ``make test``) runs each
once on a tiny size and prints the report. The exit code is 1 when a benchmark crashed, never
because a goal was missed: the figures are the product, not a pass mark.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from loguru import logger

from tests.bench import (
    drop_latency,
    local_chain,
    memory,
    startup_scan,
    venice_throughput,
    wire_bytes,
)
from tests.bench.common import Bench, Benchmark, Section
from tests.bench.report import machine, render

BENCHMARKS: tuple[Benchmark, ...] = (
    venice_throughput,
    drop_latency,
    local_chain,
    wire_bytes,
    memory,
    startup_scan,
)
FULL_REPS = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--output", type=Path, help="write the report here (default: stdout)")
    parser.add_argument(
        "--only", type=int, action="append", metavar="N", help="run benchmark N (repeatable)"
    )
    parser.add_argument("--reps", type=int, help=f"repetitions (default {FULL_REPS}; quick 1)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else FULL_REPS)
    logger.remove()  # the in-process sandbox logs through loguru: keep the progress readable
    logger.add(sys.stderr, level="WARNING")

    machine_rows = machine()
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
    report = render(
        sections,
        machine_rows,
        quick=args.quick,
        reps=reps,
        seconds=time.monotonic() - started,
        command=command,
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


def _run_one(module: Benchmark, bench: Bench) -> Section:
    number, title = module.NUMBER, module.TITLE
    print(f"== {number}. {title}", flush=True)
    load = os.getloadavg()
    started = time.monotonic()
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
    print(f"   took {section.seconds:.0f}s", flush=True)
    return section


if __name__ == "__main__":
    sys.exit(main())
