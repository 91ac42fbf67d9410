"""What the hotfolder processes on one Venice account share, when there are several.

One process keeps everything in memory (and the spend and recent failures in its cache
folder). A fleet — a watcher and workers on several machines (:mod:`hotfolder.fleet`) — must
keep to one account's limits together: a :class:`SharedAccount` given to
:class:`~hotfolder.venice.VeniceClient` supplies the rate limiter, the circuit breaker, the
pause and the day's spend from a store every process sees (Redis). The client's policy is the
same either way; only where its state lives changes.
"""

from __future__ import annotations

from typing import Any, Protocol

from hotfolder.venice.headers import RateLimitState

__all__ = ["FailureGate", "PauseStore", "SendLimiter", "SharedAccount", "SpendStore"]


class SendLimiter(Protocol):
    """Keeps image requests under the account's per-minute limit."""

    async def acquire(self) -> None:
        """Wait for a slot, then count one send."""

    def would_wait(self) -> bool:
        """Whether :meth:`acquire` would have to wait now (the wait is then reported)."""
        ...

    def state(self) -> dict[str, Any]:
        """``{"limit", "sent", "free_in_seconds"}``: the limit, the sends in the current
        window (of every process sharing it), seconds until a slot is free."""
        ...

    def observe(self, state: RateLimitState) -> None:
        """Follow a response's ``x-ratelimit-*-requests`` headers."""

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (after a 429), whoever asks."""


class FailureGate(Protocol):
    """The circuit breaker: sends only while recent failures plus requests in flight stay under
    the lockout threshold."""

    opened: int

    def would_wait(self) -> bool: ...

    async def acquire(self) -> None: ...

    async def release(self, *, failed: bool) -> None: ...


class PauseStore(Protocol):
    """Where the pause lives: plain data (see :meth:`VenicePause.state`), None when none."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any] | None) -> None: ...


class SpendStore(Protocol):
    """Where the spend per local day (``YYYY-MM-DD`` -> USD) lives."""

    def read(self) -> dict[str, float]: ...

    def add(self, day: str, usd: float) -> None: ...


class SharedAccount(Protocol):
    """The state of one Venice account shared by every process that uses it."""

    def rate_limiter(self, per_minute: int) -> SendLimiter: ...

    def circuit_breaker(self, max_failures: int, window_seconds: float) -> FailureGate: ...

    def pause_store(self) -> PauseStore: ...

    def spend_store(self) -> SpendStore: ...
