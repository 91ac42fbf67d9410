"""Reading Venice's response headers: request ids, rate-limit state, balance and flags."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    import httpx  # the client's; not imported for the rate-limit state the package shares


def request_id(response: httpx.Response) -> str | None:
    """The CF-RAY header: the id to quote to Venice support."""
    value: str | None = response.headers.get("cf-ray")
    return value


def as_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def as_bool(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def epoch_seconds(value: str | None) -> float | None:
    """A Unix timestamp in seconds from a header that may be fractional or in milliseconds."""
    number = as_float(value)
    if number is None or number <= 0:
        return None
    return number / 1000 if number > 1e11 else number


def parse_retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds to wait before trying again, or None when the response does not say.

    When the rate limit is used up (``x-ratelimit-remaining-requests: 0``) the wait lasts
    until ``x-ratelimit-reset-requests`` (a Unix time); otherwise (a model overloaded, a
    lockout) ``Retry-After`` (seconds or an HTTP date) says how long.
    """
    now = time.time() if now is None else now
    retry_after = _retry_after(response.headers.get("retry-after"), now)
    state = RateLimitState.from_response(response)
    if state.reset_at is not None and state.remaining in (0, None):
        return max(0.0, state.reset_at - now, retry_after or 0.0)
    return retry_after


def _retry_after(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    seconds = as_float(value)
    if seconds is None:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RateLimitState:
    """The ``x-ratelimit-*-requests`` headers of one response."""

    limit: int | None
    remaining: int | None
    #: Unix time (seconds) at which the window resets.
    reset_at: float | None

    @classmethod
    def from_response(cls, response: httpx.Response) -> RateLimitState:
        h = response.headers
        limit = as_float(h.get("x-ratelimit-limit-requests"))
        remaining = as_float(h.get("x-ratelimit-remaining-requests"))
        return cls(
            limit=int(limit) if limit is not None else None,
            remaining=int(remaining) if remaining is not None else None,
            reset_at=epoch_seconds(h.get("x-ratelimit-reset-requests")),
        )


@dataclass(frozen=True)
class ResultHeaders:
    """What a successful image response says besides its bytes."""

    request_id: str | None
    model_id: str | None
    balance_usd: float | None
    balance_diem: float | None
    content_violation: bool
    enhanced_prompt: str | None
    deprecation: str | None
    replacement: str | None

    @classmethod
    def from_response(cls, response: httpx.Response) -> ResultHeaders:
        h = response.headers
        enhanced = h.get("x-venice-enhanced-prompt")
        deprecation = h.get("x-venice-model-deprecation-warning")
        if deprecation is None and as_bool(h.get("x-venice-deprecated")):
            deprecation = "the model is deprecated"
        if deprecation and (date := h.get("x-venice-model-deprecation-date")):
            deprecation += f" (date {date})"
        balance = h.get("x-venice-balance-usd") or h.get("x-balance-remaining")
        return cls(
            request_id=request_id(response),
            model_id=h.get("x-venice-model-id"),
            balance_usd=as_float(balance),
            balance_diem=as_float(h.get("x-venice-balance-diem")),
            content_violation=as_bool(h.get("x-venice-is-content-violation")),
            enhanced_prompt=unquote(enhanced) if enhanced else None,
            deprecation=deprecation,
            replacement=h.get("x-venice-deprecated-replacement"),
        )
