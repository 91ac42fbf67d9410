"""Paid work held back until the service it needs says it can go on.

A service that paid steps call (the Venice client) owns its own pause. When the key is
refused, the balance is empty or the daily budget is spent, it records a :class:`Pause`: what
is paused, why, since when, what fixes it. From then on every call raises the pause's error
at once, without sending and without waiting, so no step timeout and no job attempt runs down
while nothing can be done. Only the service's :meth:`Pausable.probe` lifts the pause: one cheap
real request (``GET /billing/balance`` for a key or a balance), or a look at the clock (the
budget, on the next local day).

Whoever runs jobs (the daemon's scheduler, ``hotfolder process``) keeps a :class:`PauseWatch`
over its runtime's services. It holds back chains with paid steps while a pause is on, probes
every ``reprobe_seconds``, and reports when work can go on. A job that meets a pause is not
failed: its files stay claimed, its paid checkpoints stay saved, and it runs again once the
pause is lifted. A pause that no probe can lift (no key was configured) ends only with a new
service: a reloaded config or a restart.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from loguru import logger

from hotfolder.errors import AuthError, BalanceError, BudgetExceeded, HotfolderError

__all__ = ["PAUSE_ERRORS", "Pausable", "Pause", "PauseWatch", "pauses_work"]

#: The errors that pause work rather than fail a job.
PAUSE_ERRORS = (AuthError, BalanceError, BudgetExceeded)


def pauses_work(exc: BaseException) -> bool:
    """Whether ``exc`` pauses paid work (a refused key, no balance, the budget spent)."""
    return isinstance(exc, PAUSE_ERRORS)


@dataclass(frozen=True)
class Pause:
    """Why a service holds paid work back, since when, and what fixes it."""

    #: The service that paused (``"venice"``).
    service: str
    #: ``auth`` (the key is refused), ``balance`` (the account cannot pay) or ``budget``
    #: (``max_usd_per_day`` is spent).
    kind: str
    reason: str
    hint: str | None
    #: When it began (``time.time()``).
    since: float
    #: No probe can succeed before this time (the budget: the next local midnight); shown to
    #: the user. (Probing the budget is free, so it is still probed as often as the rest.)
    not_before: float | None = None
    #: False when no probe can end it, only a new service (a reloaded config, a restart):
    #: no key was configured, say. ``process`` then does not wait for it.
    lifts_by_probe: bool = True

    def describe(self) -> str:
        """One line for logs and progress bars."""
        fix = f" ({self.hint})" if self.hint else ""
        return f"{self.service} work paused ({self.kind}): {self.reason}{fix}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "kind": self.kind,
            "reason": self.reason,
            "hint": self.hint,
            "since": iso_time(self.since),
            "not_before": iso_time(self.not_before) if self.not_before else None,
            "lifts_by_probe": self.lifts_by_probe,
        }


@runtime_checkable
class Pausable(Protocol):
    """A service that can pause paid work, and find out when it may go on."""

    @property
    def pause(self) -> Pause | None:
        """The pause in force, or None."""
        ...

    async def probe(self) -> bool:
        """Check whether work can go on (one cheap real request at most); lift the pause and
        return True if it can."""
        ...


class PauseWatch:
    """Watches the pausable services of a run and probes them while they are paused.

    ``services`` gives the run's services (they may change, e.g. after a config reload);
    ``reprobe_seconds`` spaces the probes; ``clock`` is ``time.time`` but for tests.
    """

    def __init__(
        self,
        services: Callable[[], Iterable[object]],
        *,
        reprobe_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._services = services
        self.reprobe_seconds = reprobe_seconds
        self._clock = clock
        self._last_probe: float | None = None

    def paused(self) -> list[Pausable]:
        return [s for s in self._services() if isinstance(s, Pausable) and s.pause is not None]

    def current(self) -> Pause | None:
        """The pause in force (the first, if several services paused), or None."""
        return next((s.pause for s in self.paused()), None)

    def next_probe_at(self) -> float | None:
        """When the next probe is due, or None when nothing is paused."""
        pause = self.current()
        if pause is None:
            return None
        after = self._last_probe if self._last_probe is not None else pause.since
        return after + self.reprobe_seconds

    def due(self) -> bool:
        at = self.next_probe_at()
        return at is not None and self._clock() >= at

    async def probe(self) -> bool:
        """Probe every paused service; True when none is paused any more."""
        self._last_probe = self._clock()
        for service in self.paused():
            try:
                await service.probe()
            except HotfolderError as exc:  # a probe that cannot reach the service: try later
                logger.warning("checking whether paid work can go on failed: {}", exc)
        resumed = not self.paused()
        if resumed:
            self._last_probe = None
        return resumed


def iso_time(ts: float) -> str:
    """A local ISO 8601 time with offset, to the second."""
    return dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def next_local_midnight(now: float) -> float:
    """The start of the next local day after ``now``."""
    today = dt.datetime.fromtimestamp(now).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time()).timestamp()
