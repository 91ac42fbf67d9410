"""Which failures are retried, and how long to wait between tries (tenacity policy).

Retried: 429, 408, 425, 500, 502, 503, 504, timeouts, refused connections and resets
(:class:`~hotfolder.errors.Unavailable`). Never retried: every other status, in particular
400, 401, 402, 403, 404, 413, 415 and 422. Waits are capped exponential with full jitter; a
429 waits until the server's reset or ``Retry-After`` instead. Tries are bounded in number
and in total time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.wait import wait_base

from hotfolder.errors import Unavailable
from hotfolder.venice.settings import VeniceSection


class wait_venice(wait_base):
    """Full jitter ``uniform(0, min(cap, base * 2**n))``; a known server delay instead when the
    failure carries one (429 reset, Retry-After), capped at ``max_rate_wait_seconds``."""

    def __init__(self, base: float, cap: float, max_server_wait: float) -> None:
        self.base = base
        self.cap = cap
        self.max_server_wait = max_server_wait

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, Unavailable) and exc.retry_after is not None:
            return min(self.max_server_wait, exc.retry_after) + random.uniform(0, 0.25)
        ceiling = min(self.cap, self.base * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(0, ceiling)


def retrying(
    settings: VeniceSection,
    *,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """The retry loop for one request (``async for attempt in retrying(...): with attempt:
    ...``); ``what`` names the request in the log lines."""

    def log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "{} failed (try {}/{}): {}; retrying in {:.1f}s",
            what,
            state.attempt_number,
            settings.max_attempts,
            getattr(exc, "message", exc),
            wait,
        )

    return AsyncRetrying(
        retry=retry_if_exception_type(Unavailable),
        stop=stop_after_attempt(settings.max_attempts)
        | stop_before_delay(settings.max_retry_seconds),
        wait=wait_venice(
            settings.backoff_base_seconds,
            settings.backoff_cap_seconds,
            settings.max_rate_wait_seconds,
        ),
        sleep=sleep,
        before_sleep=log,
        reraise=True,
    )
