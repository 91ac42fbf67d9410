"""Sending control for one API key: rate limit, circuit breaker, and the pauses.

* :class:`RateLimiter` keeps image requests under the account's per-minute limit. It starts
  from ``requests_per_minute`` and follows the ``x-ratelimit-*-requests`` headers, so a
  steady stream never sees a 429; a 429 holds every sender until its reset.
* :class:`CircuitBreaker` keeps failed responses well under Venice's lockout rule (more than
  20 failures in 30 s lock the key for 30 s): a request is only sent while the failures in
  the window plus the requests in flight stay below the threshold, so even a storm of 500s
  can never produce more than ``breaker_failures`` failures in any window.
* :class:`Throttle` ties them together with the client's pause and a cap on requests in
  flight, and reports each wait for a slot (:mod:`hotfolder.waits`).

All of it is asyncio-safe for the tasks of one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from hotfolder.fsutil import atomic_write
from hotfolder.venice.headers import RateLimitState
from hotfolder.venice.sharing import FailureGate, SendLimiter
from hotfolder.waits import waiting

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """At most ``per_minute`` sends in any sliding window of ``window_seconds`` (plus a margin for
    the skew between our clock and the server's), corrected by the server's headers."""

    def __init__(
        self,
        per_minute: int,
        *,
        window_seconds: float = 60.0,
        margin_seconds: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.configured = per_minute
        self.capacity = per_minute
        self.window_seconds = window_seconds + margin_seconds
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._hold_until = 0.0
        self._remaining: int | None = None
        self._reset_at = 0.0  # on our clock

    async def acquire(self) -> None:
        """Wait for a slot, then count one send."""
        async with self._lock:
            while (wait := self._wait()) > 0:
                logger.debug("Venice rate limit: waiting {:.2f}s for a slot", wait)
                await self._sleep(wait)
            self._sent.append(self._clock())
            if self._remaining is not None:
                self._remaining -= 1

    def would_wait(self) -> bool:
        """Whether :meth:`acquire` would have to wait now."""
        return self._lock.locked() or self._wait() > 0

    def _wait(self) -> float:
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.window_seconds:
            self._sent.popleft()
        if self._remaining is not None and now >= self._reset_at:
            self._remaining = None
        waits = [self._hold_until - now]
        if len(self._sent) >= self.capacity:
            waits.append(self._sent[0] + self.window_seconds - now)
        if self._remaining is not None and self._remaining <= 0:
            waits.append(self._reset_at - now)
        return max(waits)

    def state(self) -> dict[str, Any]:
        """For ``status``: the limit, the sends in the current window, seconds until the
        next slot is free (0: now)."""
        wait = max(0.0, self._wait())
        return {"limit": self.capacity, "sent": len(self._sent), "free_in_seconds": round(wait, 1)}

    def observe(self, state: RateLimitState) -> None:
        """Follow a response's ``x-ratelimit-*-requests`` headers."""
        if state.limit is not None and state.limit > 0:
            self.capacity = min(self.configured, state.limit)
        if state.remaining is None or state.reset_at is None:
            return
        reset_at = self._clock() + min(max(0.0, state.reset_at - time.time()), self.window_seconds)
        if self._remaining is None or reset_at > self._reset_at + 0.5:
            self._remaining, self._reset_at = state.remaining, reset_at  # a new window
        else:  # the same window: answers may arrive out of order, keep the lower count
            self._remaining = min(self._remaining, state.remaining)

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (after a 429), whoever asks."""
        self._hold_until = max(self._hold_until, self._clock() + seconds)


class CircuitBreaker:
    """Sends only while ``failures in the window + requests in flight < max_failures``.

    The sum can only grow by admitting a request, so no window ever holds more than
    ``max_failures`` failures however the requests end. With a ``memory`` file the recent
    failures outlive the process: a client started again during an outage (after a crash, a
    restart, the next ``process`` run) counts the failures of the one before, and so never
    walks into the key lockout.
    """

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        *,
        clock: Clock = time.monotonic,
        memory: Path | None = None,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._failures: deque[float] = deque()
        self._in_flight = 0
        self._changed = asyncio.Condition()
        self.opened = 0  # how many times a sender had to wait, for logs and tests
        self._memory = memory
        self._recall()

    def _recall(self) -> None:
        """Count the failures the file remembers from the last ``window_seconds``."""
        if self._memory is None:
            return
        try:
            stamps = json.loads(self._memory.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            logger.warning("ignoring the unreadable failure record {}: {}", self._memory, exc)
            return
        now_wall, now = time.time(), self._clock()
        recent = sorted(
            now - (now_wall - t)
            for t in stamps
            if isinstance(t, int | float) and 0 <= now_wall - t < self.window_seconds
        )
        self._failures.extend(recent)
        if recent:
            logger.warning(
                "Venice: {} request(s) failed in the last {:.0f}s before this start; sending "
                "carefully until the window clears",
                len(recent),
                self.window_seconds,
            )

    def _remember(self) -> None:
        if self._memory is None:
            return
        now_wall, now = time.time(), self._clock()
        stamps = [round(now_wall - (now - t), 3) for t in self._failures]
        try:
            self._memory.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self._memory, json.dumps(stamps).encode())
        except OSError as exc:
            logger.warning("cannot record Venice failures in {}: {}", self._memory, exc)

    def recent_failures(self) -> int:
        now = self._clock()
        while self._failures and self._failures[0] <= now - self.window_seconds:
            self._failures.popleft()
        return len(self._failures)

    def would_wait(self) -> bool:
        """Whether :meth:`acquire` would have to wait now."""
        return self.recent_failures() + self._in_flight >= self.max_failures

    async def acquire(self) -> None:
        async with self._changed:
            waited = False
            while self.recent_failures() + self._in_flight >= self.max_failures:
                if not waited:
                    self.opened += 1
                    waited = True
                    logger.warning(
                        "Venice circuit open: {} failed requests in the last {:.0f}s; "
                        "holding requests to stay clear of the key lockout",
                        len(self._failures),
                        self.window_seconds,
                    )
                timeout = (
                    self._failures[0] + self.window_seconds - self._clock()
                    if self._failures
                    else None
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
            self._in_flight += 1

    async def release(self, *, failed: bool) -> None:
        async with self._changed:
            self._in_flight -= 1
            if failed:
                self._failures.append(self._clock())
                self.recent_failures()  # drop the old ones before they are written
                self._remember()
            self._changed.notify_all()


class Throttle:
    """Every Venice request goes through :meth:`sending`: the pause, concurrency, rate, breaker.

    ``gate`` raises the pause's error when the client is paused for this kind of request; it
    is asked before a request queues and again once it has its slots, so a request that
    queued while the client paused is never sent. Each wait for a shared slot is reported
    through :func:`hotfolder.waits.waiting` (a job's step timer stands still meanwhile).
    """

    def __init__(
        self,
        limiter: SendLimiter,
        breaker: FailureGate,
        *,
        max_in_flight: int,
        gate: Callable[[bool], None] = lambda image: None,
    ) -> None:
        self.limiter = limiter
        self.breaker = breaker
        self._slots = asyncio.Semaphore(max_in_flight)
        self._gate = gate

    @contextlib.asynccontextmanager
    async def sending(self, *, image: bool, probe: bool = False) -> AsyncIterator[SendOutcome]:
        """Hold a sending slot; the body sets ``outcome.failed`` from the response.

        Image requests also take a per-minute slot; other requests (models, balance) only
        wait for the breaker and the in-flight cap. A ``probe`` (the balance request that
        checks whether a pause can end) passes the pause. An exception in the body counts as
        a failure.
        """
        if not probe:
            self._gate(image)
        outcome = SendOutcome()
        async with contextlib.AsyncExitStack() as stack:
            await _take(outcome, "a free Venice connection", self._slots.locked(), self._slots)
            stack.callback(self._slots.release)
            what = "the Venice circuit breaker (too many failed requests)"
            await _take(outcome, what, self.breaker.would_wait(), self.breaker)
            stack.push_async_callback(self._release, outcome)
            if image:
                await _take(outcome, "a Venice rate slot", self.limiter.would_wait(), self.limiter)
            if not probe:
                self._gate(image)  # paused while this request queued: it is not sent
            outcome.failed = True
            yield outcome

    async def _release(self, outcome: SendOutcome) -> None:
        await self.breaker.release(failed=outcome.failed)


class _Acquirable(Protocol):
    async def acquire(self) -> Any: ...


async def _take(outcome: SendOutcome, what: str, busy: bool, slot: _Acquirable) -> None:
    """Acquire ``slot``; when it is ``busy``, as a reported wait (counted in ``outcome``)."""
    if not busy:
        await slot.acquire()
        return
    with waiting(what) as waited:
        await slot.acquire()
    outcome.waited_seconds += waited.seconds


@dataclass
class SendOutcome:
    """How a sent request ended, as far as the breaker cares, and how long it queued."""

    failed: bool = False
    waited_seconds: float = 0.0
