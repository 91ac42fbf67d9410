"""Per-key request limits: the requests-per-minute rate limit and the failed-requests lockout.

Both take the clock as a callable so tests can move time by hand. Limits and windows are
passed on each call, so a config change applies to the next request.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FailureLockout", "KeyRateLimiter", "RateDecision"]

Clock = Callable[[], float]


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one request against the rate limit, and what the headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float

    def headers(self) -> dict[str, str]:
        """``x-ratelimit-*-requests``; the reset is a Unix timestamp in whole seconds."""
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": str(math.ceil(self.reset_at)),
        }

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset_at - now))


class KeyRateLimiter:
    """A sliding-window log per key: at most ``limit`` requests in any ``window_seconds``."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._log: dict[str, deque[float]] = {}

    def hit(self, key: str, limit: int, window_seconds: float) -> RateDecision:
        """Count a request unless it is over the limit; denied requests are not counted."""
        now = self._clock()
        with self._lock:
            log = self._log.setdefault(key, deque())
            while log and log[0] <= now - window_seconds:
                log.popleft()
            allowed = len(log) < limit
            if allowed:
                log.append(now)
            reset_at = log[0] + window_seconds if log else now + window_seconds
            return RateDecision(allowed, limit, max(0, limit - len(log)), reset_at)

    def reset(self) -> None:
        with self._lock:
            self._log.clear()


class FailureLockout:
    """Locks a key out for ``duration_seconds`` once it has more than ``threshold`` failures
    within ``window_seconds``."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked_until(self, key: str) -> float | None:
        """When the key's lockout ends, or None if it is not locked out now."""
        now = self._clock()
        with self._lock:
            until = self._locked_until.get(key)
            if until is not None and until <= now:
                del self._locked_until[key]
                return None
            return until

    def record_failure(
        self, key: str, threshold: int, window_seconds: float, duration_seconds: float
    ) -> bool:
        """Count a non-2xx answer; True when this failure starts a lockout."""
        now = self._clock()
        with self._lock:
            log = self._failures.setdefault(key, deque())
            while log and log[0] <= now - window_seconds:
                log.popleft()
            log.append(now)
            if len(log) > threshold and self._locked_until.get(key, 0.0) <= now:
                self._locked_until[key] = now + duration_seconds
                log.clear()
                return True
            return False

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._locked_until.clear()
