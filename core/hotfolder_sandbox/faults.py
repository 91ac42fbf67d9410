"""Injected faults: a seeded draw per paid request decides between a normal answer, an error
status, or a dropped connection.

Exactly one random number is drawn per request that reaches the draw, so a seeded sandbox
answers the same sequence of requests with the same sequence of faults.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import Literal

__all__ = ["RESET", "Fault", "FaultPlan"]

RESET: Literal["reset"] = "reset"
Fault = int | Literal["reset"]


class FaultPlan:
    """Draws faults from configured rates with its own seeded random generator."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._random = random.Random(seed)

    def draw(self, rates: Mapping[int, float], reset_rate: float) -> Fault | None:
        """``"reset"``, an error status, or None for a normal answer."""
        if not rates and not reset_rate:
            return None
        with self._lock:
            roll = self._random.random()
        threshold = reset_rate
        if roll < threshold:
            return RESET
        for status in sorted(rates):
            threshold += rates[status]
            if roll < threshold:
                return status
        return None
