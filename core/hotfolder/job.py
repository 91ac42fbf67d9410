"""A job as plain data: what to run, and the record of what ran.

Plain dataclasses, so a job can be journaled, sent to another process, and written to a sidecar
without dragging live objects along.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any

#: How much of a ``data:`` URI a log line or a sidecar shows.
DATA_URI_SHOWN = 48
_JOB_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{8}")


def short_ref(ref: str) -> str:
    """``ref`` as logs and sidecars show it: a ``data:`` URI cut after its first characters,
    with its length (``data:image/png;base64,iVBORw0KGgo…(18,304 chars)``); others whole."""
    if ref.startswith("data:") and len(ref) > DATA_URI_SHOWN:
        return f"{ref[:DATA_URI_SHOWN]}…({len(ref):,} chars)"
    return ref


def new_job_id() -> str:
    """A short unique id that sorts by creation time: ``20261121T210233-3f9c1a2b``; never
    the same twice in one process (32 random bits alone meet twice in about one start-up
    scan of 10,000 files in 200, and the journal refuses the second)."""
    second = int(time.time())
    return _second_stamp(second) + "-" + _TAILS.new(second)


class _Tails:
    """The random parts of the ids made in the current second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._second = 0
        self._made: set[str] = set()

    def new(self, second: int) -> str:
        with self._lock:
            if second != self._second:
                self._second, self._made = second, set()
            tail = os.urandom(4).hex()
            while tail in self._made:
                tail = os.urandom(4).hex()
            self._made.add(tail)
            return tail


_TAILS = _Tails()


def is_job_id(text: str) -> bool:
    """Whether ``text`` is spelt as :func:`new_job_id` spells ids."""
    return _JOB_ID.fullmatch(text) is not None


@functools.lru_cache(maxsize=1)
def _second_stamp(second: int) -> str:
    # one strftime a second, not one a job: thousands are made a second at start-up
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(second))


@dataclass
class Job:
    """One input through one chain."""

    #: The reference to resolve: a path, URL, ``data:`` URI or manifest.
    source: str
    #: Name of the chain in ``[chains.NAME]``; a manifest may name its own.
    chain: str
    id: str = field(default_factory=new_job_id)
    #: 1-based number of the job in this run (``{n}`` in name templates).
    seq: int = 1
    #: Folder that relative references are resolved against.
    base_dir: Path | None = None
    #: Per-step parameter overrides, ``{step_index: {param: value}}``.
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Where paid step results are kept so that a rerun never pays twice (None: not kept).
    checkpoint_dir: Path | None = None
    #: Images beyond the first that the job's input named (a manifest's ``images[1:]``).
    extra_refs: list[str] = field(default_factory=list)
    #: Where the input came from, when ``source`` is a copy of it (the daemon's job reads the
    #: file it claimed into ``.hotfolder/processing/``, a path gone once it ends).
    origin: str | None = None
    #: The watched folder the input was dropped into (the daemon's), for log fields.
    folder: str | None = None
    #: Where the original goes once the job is done (the daemon's archive path, ``deleted``
    #: or ``kept``); None when nobody moves it.
    archive: str | None = None

    @property
    def display(self) -> str:
        """The input as logs and sidecars name it: the origin, else the source (a ``data:``
        URI shortened)."""
        return short_ref(self.origin or self.source)

    @property
    def origin_path(self) -> Path | None:
        """:attr:`origin` as a path; None without one."""
        return Path(self.origin) if self.origin else None

    @property
    def origin_name(self) -> str | None:
        """The file name of :attr:`origin`, which the input goes by; None without one."""
        return PurePath(self.origin).name if self.origin else None


@dataclass
class StepRecord:
    """What one step did, for sidecars, hooks and the journal."""

    index: int
    op: str
    params: dict[str, Any]
    paid: bool = False
    seconds: float = 0.0
    cost_usd: float | None = None
    request_ids: list[str] = field(default_factory=list)
    #: True when the result came from a checkpoint instead of a new run.
    from_checkpoint: bool = False
    notes: dict[str, Any] = field(default_factory=dict)
    #: True for a paid step that a simulated server answered (the local sandbox): its
    #: ``cost_usd`` is what the call would have cost, and nobody paid it.
    simulated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Output:
    """One thing a sink wrote."""

    sink: str
    #: Where it went: a file path, or a URL for remote sinks.
    location: str
    bytes: int = 0
    media_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobResult:
    """What a successful job produced."""

    job: Job
    input_sha256: str
    steps: list[StepRecord]
    outputs: list[Output]
    seconds: float

    @property
    def cost_usd(self) -> float:
        """What this run spent: the costs of the steps it paid for (not those reused from a
        checkpoint, not simulated ones; an unknown cost counts as 0)."""
        return sum(
            s.cost_usd or 0.0 for s in self.steps if not s.from_checkpoint and not s.simulated
        )

    @property
    def simulated_usd(self) -> float:
        """What this run's simulated paid steps would have cost (nobody paid it)."""
        return sum(s.cost_usd or 0.0 for s in self.steps if not s.from_checkpoint and s.simulated)
