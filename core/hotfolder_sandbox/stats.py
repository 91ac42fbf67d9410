"""Counters of what the sandbox saw and answered, for ``GET /_sandbox/stats`` and benchmarks."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

__all__ = ["Stats"]


class Stats:
    """Requests per endpoint and status, paid calls, bytes received, lockouts, 429s, resets.

    ``bytes_received`` is the request body size per endpoint (the body read, else the
    Content-Length), so multipart and JSON+base64 uploads can be compared.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._bytes: Counter[str] = Counter()
            self._paid: Counter[str] = Counter()
            self._charged = Decimal(0)
            self._lockouts = 0
            self._sent_429 = 0
            self._resets = 0

    def record(self, endpoint: str, outcome: int | str, body_bytes: int) -> None:
        """One finished request; ``outcome`` is the status, or ``"reset"`` for a drop."""
        with self._lock:
            self._requests[endpoint][str(outcome)] += 1
            self._bytes[endpoint] += body_bytes
            if outcome == 429:
                self._sent_429 += 1
            elif outcome == "reset":
                self._resets += 1

    def paid(self, endpoint: str, usd: Decimal) -> None:
        with self._lock:
            self._paid[endpoint] += 1
            self._charged += usd

    def lockout(self) -> None:
        with self._lock:
            self._lockouts += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready data."""
        with self._lock:
            requests = {endpoint: dict(counts) for endpoint, counts in self._requests.items()}
            return {
                "requests": requests,
                "requests_total": sum(sum(c.values()) for c in self._requests.values()),
                "paid_calls": dict(self._paid),
                "paid_total": sum(self._paid.values()),
                "charged_usd": float(self._charged),
                "bytes_received": dict(self._bytes),
                "lockouts_triggered": self._lockouts,
                "sent_429": self._sent_429,
                "connection_resets": self._resets,
            }
