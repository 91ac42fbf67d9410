"""When each candidate file is looked at next.

A tick looks only at the candidates that are due. With thousands of files waiting (a scan of
files still within their quiet period, a folder being filled), going through every one at every
tick to find the few that are due cost more than looking at them; a heap hands the due ones
over, earliest first, and a file whose time is moved leaves a stale entry behind that is
skipped when it comes up.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator


class DueTimes:
    """``path -> monotonic time`` it is due, with the due ones found in ``O(log n)``."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()  # equal times come out in the order they were set

    def __contains__(self, path: object) -> bool:
        return path in self._at

    def __len__(self) -> int:
        return len(self._at)

    def __iter__(self) -> Iterator[str]:
        """The paths, as a copy: setting their times while going through them is allowed."""
        return iter(list(self._at))

    def __getitem__(self, path: str) -> float:
        return self._at[path]

    def __setitem__(self, path: str, when: float) -> None:
        if self._at.get(path) == when:
            return  # already due then (a file's every event sets "now")
        self._at[path] = when
        heapq.heappush(self._heap, (when, next(self._order), path))

    def pop(self, path: str) -> None:
        """Forget ``path`` (its heap entry is skipped when it comes up)."""
        self._at.pop(path, None)

    def due(self, now: float) -> Iterator[str]:
        """The paths due at ``now``, earliest first, each taken off as it is handed over:
        the caller sets a new time (or pops it), or :meth:`put_back` one it did not look at."""
        heap, at = self._heap, self._at
        while heap and heap[0][0] <= now:
            when, _, path = heapq.heappop(heap)
            if at.get(path) == when:
                yield path

    def put_back(self, path: str) -> None:
        """Hand ``path`` over again at the next :meth:`due` (a tick that stopped at its limit)."""
        heapq.heappush(self._heap, (self._at[path], next(self._order), path))
