"""What a running job waits for that is not its own work: a rate slot, a free connection.

A service that queues callers (the Venice client, for its rate limit, its circuit breaker and
its connections) wraps each such wait in :func:`waiting`::

    with waiting("a Venice rate slot") as waited:
        await limiter.acquire()
    waited.seconds

Inside a job the engine has opened a :class:`StepWaits` for the running step or sink (a
context variable, so it follows the step into the tasks it starts). While the step waits, its
time limit stands still (a queue is not the step being slow), and the run's observer hears the
wait begin and end: the daemon journals it for ``hotfolder status``, ``hotfolder process``
shows it on its progress line. Outside a job, and in a worker thread, ``waiting`` only measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["StepWaits", "Wait", "WaitObserver", "Waited", "waiting"]


@dataclass(frozen=True)
class Wait:
    """A job waiting for something it shares with other jobs."""

    #: What it waits for: ``"a Venice rate slot"``.
    what: str
    #: Since when (``time.time()``).
    since: float


#: Hears a job's wait begin (a :class:`Wait`) and end (None).
WaitObserver = Callable[[Wait | None], None]


@dataclass
class Waited:
    """How long one :func:`waiting` block took, once it has ended."""

    seconds: float = 0.0


class StepWaits:
    """The waits of one step: stops its time limit while any is on, and tells the observer."""

    def __init__(
        self, timeout: asyncio.Timeout | None = None, observer: WaitObserver | None = None
    ) -> None:
        self._timeout = timeout
        self._observer = observer
        self._depth = 0
        self._remaining: float | None = None

    def begin(self, what: str) -> None:
        self._depth += 1
        if self._depth > 1:
            return
        if self._timeout is not None and (when := self._timeout.when()) is not None:
            loop = asyncio.get_running_loop()
            self._remaining = max(0.0, when - loop.time())
            self._timeout.reschedule(None)
        if self._observer is not None:
            self._observer(Wait(what, time.time()))

    def end(self) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        if self._timeout is not None and self._remaining is not None:
            loop = asyncio.get_running_loop()
            self._timeout.reschedule(loop.time() + self._remaining)
            self._remaining = None
        if self._observer is not None:
            self._observer(None)


_current: ContextVar[StepWaits | None] = ContextVar("hotfolder_step_waits", default=None)


@contextlib.contextmanager
def step_waits(waits: StepWaits) -> Iterator[StepWaits]:
    """Make ``waits`` the running step's (the engine does, around each step and sink)."""
    token = _current.set(waits)
    try:
        yield waits
    finally:
        _current.reset(token)


@contextlib.contextmanager
def waiting(what: str) -> Iterator[Waited]:
    """Around a wait for something shared: the step's time limit stands still and the run
    hears of it (on the event loop, inside a job); the result says how long it took."""
    waited = Waited()
    waits = _current.get()
    if waits is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: the step's timer lives on the loop
            waits = None
    started = time.monotonic()
    if waits is not None:
        waits.begin(what)
    try:
        yield waited
    finally:
        waited.seconds = time.monotonic() - started
        if waits is not None:
            waits.end()
