"""Sending control for one API key: rate limit, circuit breaker, and the pauses.

* :class:`RateLimiter` keeps image requests under the account's per-minute limit. It starts
  from ``requests_per_minute`` and follows the ``x-ratelimit-*-requests`` headers, so a
  steady stream never sees a 429; a 429 holds every sender until its reset.
* :class:`CircuitBreaker` keeps failed responses well under Venice's lockout rule (more than
  20 failures in 30 s lock the key for 30 s): a request is only sent while the failures in
  the window plus the requests in flight stay below the threshold, so even a storm of 500s
  can never produce more than ``breaker_failures`` failures in any window.
* :class:`BalanceGate` holds image requests after a 402 and polls the balance until Venice
  says the account can pay again; :class:`Throttle` ties them together with an auth pause
  and a cap on requests in flight.

All of it is asyncio-safe for the tasks of one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loguru import logger

from hotfolder.errors import AuthError, BalanceError, HotfolderError
from hotfolder.venice.headers import RateLimitState

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
    ``max_failures`` failures however the requests end.
    """

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._failures: deque[float] = deque()
        self._in_flight = 0
        self._changed = asyncio.Condition()
        self.opened = 0  # how many times a sender had to wait, for logs and tests

    def recent_failures(self) -> int:
        now = self._clock()
        while self._failures and self._failures[0] <= now - self.window_seconds:
            self._failures.popleft()
        return len(self._failures)

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
            self._changed.notify_all()


class BalanceGate:
    """After a 402: hold image requests and poll the balance until it can pay again.

    The balance must be able to pay for the dearest request that is waiting, not merely be
    above zero (``canConsume``), or the requests would only meet another 402. The pause
    between polls grows from ``first_seconds`` to ``max_seconds`` and only starts over after a
    request succeeds, so repeated 402s cannot turn into a stream of failed requests.
    """

    def __init__(
        self,
        poll: Callable[[], Awaitable[Mapping[str, Any]]],
        *,
        first_seconds: float,
        max_seconds: float,
        wait_seconds: float | None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._poll = poll
        self._first_seconds = first_seconds
        self._max_seconds = max_seconds
        self._wait_seconds = wait_seconds
        self._sleep = sleep
        self._funded = asyncio.Event()
        self._funded.set()
        self._task: asyncio.Task[None] | None = None
        self._error: HotfolderError | None = None
        self._delay = first_seconds
        self._needed = 0.0
        self.trips = 0

    @property
    def waiting(self) -> bool:
        return not self._funded.is_set()

    def trip(self, error: BalanceError, *, needed_usd: float | None = None) -> None:
        """Start waiting for a balance of at least ``needed_usd`` (once, however many
        requests saw the 402)."""
        self._needed = max(self._needed, needed_usd or 0.0)
        if not self._funded.is_set():
            return
        self.trips += 1
        self._error = error
        self._funded.clear()
        logger.warning(
            "Venice says the balance is too low ({}); pausing Venice work and checking the "
            "balance until it can pay again",
            error.message,
        )
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="venice-balance")

    def succeeded(self) -> None:
        """A paid request went through: the next 402 starts with short polls again. (One
        that was sent before the pause says nothing about the balance now.)"""
        if not self.waiting:
            self._delay = self._first_seconds

    async def wait(self) -> None:
        """Return once the account can pay; BalanceError if ``wait_seconds`` runs out first."""
        if self._funded.is_set():
            return
        try:
            await asyncio.wait_for(self._funded.wait(), self._wait_seconds)
        except TimeoutError:
            assert self._error is not None
            msg = f"{self._error.message}; still no balance after {self._wait_seconds:.0f}s"
            raise BalanceError(msg, hint=self._error.hint, status=402) from None

    async def _watch(self) -> None:
        while True:
            await self._sleep(random.uniform(self._delay / 2, self._delay))
            self._delay = min(self._max_seconds, self._delay * 2)
            try:
                if _can_pay(await self._poll(), self._needed):
                    logger.info("Venice balance is back; resuming Venice work")
                    self._needed = 0.0
                    self._funded.set()
                    return
            except AuthError:
                self._funded.set()  # the auth pause takes over: waiters raise AuthError
                return
            except HotfolderError as exc:
                logger.warning("checking the Venice balance failed: {}", exc)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _can_pay(balance: Mapping[str, Any], needed: float) -> bool:
    """``GET /billing/balance`` says the account can pay ``needed`` USD (or DIEM)."""
    if not balance.get("canConsume"):
        return False
    amounts = [v for v in (balance.get("balances") or {}).values() if isinstance(v, int | float)]
    return not amounts or needed <= 0 or max(amounts) >= needed


class Throttle:
    """Every Venice request goes through :meth:`sending`: pauses, concurrency, rate, breaker."""

    def __init__(
        self,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        balance: BalanceGate,
        *,
        max_in_flight: int,
    ) -> None:
        self.limiter = limiter
        self.breaker = breaker
        self.balance = balance
        self._slots = asyncio.Semaphore(max_in_flight)
        self.auth_error: AuthError | None = None

    def pause_for_auth(self, error: AuthError) -> None:
        """Stop all sending: every later request raises this error without being sent."""
        if self.auth_error is None:
            logger.error("Venice work paused: {}", error)
        self.auth_error = error

    def resume_auth(self) -> None:
        """Allow sending again after the key was fixed."""
        self.auth_error = None

    def check_auth(self) -> None:
        if self.auth_error is not None:
            error = self.auth_error
            raise AuthError(error.message, hint=error.hint, status=error.status, code=error.code)

    @contextlib.asynccontextmanager
    async def sending(self, *, image: bool) -> AsyncIterator[SendOutcome]:
        """Hold a sending slot; the body sets ``outcome.failed`` from the response.

        Image requests also wait out a balance pause and take a per-minute slot; other
        requests (models, balance) only wait for the breaker and the in-flight cap. An
        exception in the body counts as a failure.
        """
        while True:
            self.check_auth()
            if image:
                await self.balance.wait()
            async with contextlib.AsyncExitStack() as stack:
                await self._slots.acquire()
                stack.callback(self._slots.release)
                await self.breaker.acquire()
                outcome = SendOutcome()
                stack.push_async_callback(self._release, outcome)
                if image:
                    await self.limiter.acquire()
                if self.auth_error is None and not (image and self.balance.waiting):
                    outcome.failed = True
                    yield outcome
                    return
            # paused while this request queued: nothing was sent, go back and wait

    async def _release(self, outcome: SendOutcome) -> None:
        await self.breaker.release(failed=outcome.failed)


@dataclass
class SendOutcome:
    """How a sent request ended, as far as the breaker cares."""

    failed: bool = False
