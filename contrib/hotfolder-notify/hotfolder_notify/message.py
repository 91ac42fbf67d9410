"""One message out of a batch of events: a title that counts them, a body that lists them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from hotfolder_notify.settings import EventName

#: The kinds of event lines; ``folder_back`` is sent with the ``folder_unreachable`` setting.
Kind = Literal[
    "job_failed", "paused", "resumed", "budget_reached", "folder_unreachable", "folder_back"
]
#: At most this many lines in a body; the rest are counted.
MAX_LINES = 25

_SETTING: dict[Kind, EventName] = {
    "job_failed": "job_failed",
    "paused": "paused",
    "resumed": "resumed",
    "budget_reached": "budget_reached",
    "folder_unreachable": "folder_unreachable",
    "folder_back": "folder_unreachable",
}
_SUMMARY: dict[Kind, tuple[str, str]] = {  # one, many
    "job_failed": ("1 job failed", "{n} jobs failed"),
    "paused": ("paid work paused", "paid work paused {n} times"),
    "resumed": ("paid work resumed", "paid work resumed {n} times"),
    "budget_reached": ("daily budget reached", "daily budget reached"),
    "folder_unreachable": ("1 folder unreachable", "{n} folders unreachable"),
    "folder_back": ("1 folder back", "{n} folders back"),
}
#: Apprise's notification types, worst first.
_TYPE: dict[Kind, str] = {
    "job_failed": "failure",
    "folder_unreachable": "failure",
    "paused": "warning",
    "budget_reached": "warning",
    "resumed": "success",
    "folder_back": "success",
}
_RANK = ("failure", "warning", "success")


@dataclass(frozen=True)
class Event:
    """Something to tell: its kind, when (``time.time()``), one line, and what to do."""

    kind: Kind
    at: float
    line: str
    hint: str | None = None

    @property
    def setting(self) -> EventName:
        """The name in ``[plugins.notify] events`` that sends it."""
        return _SETTING[self.kind]


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    #: Apprise's ``notify_type``: ``failure``, ``warning`` or ``success``.
    type: str


def render(events: list[Event], prefix: str) -> Message:
    """The one message for ``events`` (in the order they happened)."""
    counts = Counter(e.kind for e in events)
    lines = []
    for event in events[:MAX_LINES]:
        when = dt.datetime.fromtimestamp(event.at).astimezone().strftime("%H:%M:%S")
        fix = f" (fix: {event.hint})" if event.hint else ""
        lines.append(f"{when} {event.line}{fix}")
    if len(events) > MAX_LINES:
        rest = Counter(e.kind for e in events[MAX_LINES:])
        lines.append(f"… and {len(events) - MAX_LINES} more: {_summary(rest)}")
    kind = min((_TYPE[k] for k in counts), key=_RANK.index)
    return Message(f"{prefix}: {_summary(counts)}", "\n".join(lines), kind)


def _summary(counts: Counter[Kind]) -> str:
    """``3 jobs failed, paid work paused``."""
    return ", ".join(
        (_SUMMARY[kind][0] if n == 1 else _SUMMARY[kind][1]).format(n=n)
        for kind, n in counts.items()
    )
