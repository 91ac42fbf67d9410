"""What became of every file the daemon met, for the log and for ``hotfolder status``.

A file in a watched folder is *taken* (a job in the journal), *quarantined* or failed (a failed
job), *waiting* (with why: being written, open for writing, empty, incomplete image, the quiet
period, its prompt file) or *ignored* (with why: not in ``include``, a format the gate does not
accept, excluded, a temp name, a subfolder of a folder that is not recursive, no route and no
fallback chain). A companion prompt file (``NAME.prompt.txt``) is none of these: it goes with
its image, and waits for it (listed as waiting) until it comes. Jobs are journal rows already; the
:class:`Board` keeps the other two per folder, logs each ignored or long-waiting file once, by
name, with its reason and fix, and writes the lists to the journal's meta table
(``ignored:<folder>``, ``waiting:<folder>``) only when they change, at most
:data:`LIST_CAP` names each, so ``status`` (another process) can read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from loguru import logger

from hotfolder import imaging
from hotfolder.daemon.journal import Journal
from hotfolder.daemon.readiness import WAIT_REASONS
from hotfolder.daemon.watcher import SUBFOLDER
from hotfolder.pauses import iso_time

#: Most names each list keeps in the journal (the counts are always whole).
LIST_CAP = 100
#: A file waiting this long is logged once and listed by ``status`` (an empty one at once).
LONG_WAIT_SECONDS = 5.0
#: Why a file that passes the name filter is not taken: no route matches it, and the folder
#: has no chain of its own.
NO_ROUTE = "matches no route"
#: Reasons that ``on_unmatched = "fail"`` sends to the failed place.
UNMATCHED = frozenset({"not in include", "unsupported format", NO_ROUTE})


@dataclass(frozen=True)
class Ignored:
    """Why a file is not taken, and what would make it taken."""

    reason: str
    fix: str

    @property
    def unmatched(self) -> bool:
        """Whether ``on_unmatched = "fail"`` applies: the folder simply does not take it."""
        return self.reason in UNMATCHED

    @property
    def loud(self) -> bool:
        """Whether it is logged at info level (a temp name or an exclusion is chosen)."""
        return self.reason in UNMATCHED or self.reason == SUBFOLDER


def ignored_fate(rel: str, why: str) -> Ignored:
    """The reason and fix for ``rel``, which the folder's filter did not take for ``why``
    (see :meth:`~hotfolder.daemon.readiness.NameFilter.why_not`)."""
    suffix = PurePosixPath(rel.rstrip("/")).suffix.lower()
    glob = f"'*{suffix}'" if suffix else "its name"
    if why == SUBFOLDER:
        return Ignored(why, "set recursive = true, or watch it as its own [[folders]] entry")
    if why == "temp name":
        return Ignored(why, "it is taken once renamed to its final name")
    if why == "ignored":
        return Ignored("in the folder's ignore list", "remove the matching pattern from ignore")
    if why == "excluded":
        return Ignored(why, "remove the matching pattern from the folder's exclude")
    if why == NO_ROUTE:
        return Ignored(
            why, "add a route whose match takes it, or give the folder a chain for the rest"
        )
    reader = imaging.reader_for(rel)
    if reader is not None and reader not in imaging.DEFAULT_FORMATS:
        return Ignored(
            "unsupported format",
            f"{reader} is not among the formats the [imaging] gate accepts: convert it to PNG "
            f"or JPEG, or add {reader!r} to [imaging] formats and {glob} to include",
        )
    if not suffix:
        return Ignored(why, "give it an image extension (.jpg, .png, .heic...)")
    return Ignored(why, f"add {glob} to include")


def meta_names(folder: str) -> tuple[str, str]:
    """The journal meta names of a folder's ignored and waiting lists."""
    return f"ignored:{folder}", f"waiting:{folder}"


def read(journal: Journal, folder: str) -> dict[str, Any]:
    """``{"ignored": {"count", "files"}, "waiting": {"count", "files"}}`` as last written."""
    empty = {"count": 0, "files": []}
    ignored, waiting = (journal.meta(name) or empty for name in meta_names(folder))
    return {"ignored": ignored, "waiting": waiting}


class Board:
    """The ignored and long-waiting files of every folder, published when they change."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.ignored: dict[str, dict[str, Ignored]] = {}
        self.waiting: dict[str, dict[str, tuple[str, float]]] = {}
        self._dirty: set[str] = set()

    def forget(self, folder: str) -> None:
        """Clear a folder's lists (at start-up, or when it leaves the config)."""
        self.ignored.pop(folder, None)
        self.waiting.pop(folder, None)
        for name in meta_names(folder):
            self.journal.set_meta(name, None)
        self._dirty.discard(folder)

    # --- ignored -----------------------------------------------------------------------------

    def ignore(self, folder: str, rel: str, fate: Ignored) -> None:
        """``rel`` is in ``folder`` and not taken; logged the first time."""
        known = self.ignored.setdefault(folder, {})
        if known.get(rel) == fate:
            return
        known[rel] = fate
        self._dirty.add(folder)
        log = logger.info if fate.loud else logger.debug
        log("{}/{}: ignored ({}); to take it: {}", folder, rel, fate.reason, fate.fix)

    def surveyed(self, folder: str, present: dict[str, Ignored]) -> None:
        """A scan found exactly ``present`` ignored in ``folder``: new ones are logged, gone
        ones dropped."""
        known = self.ignored.setdefault(folder, {})
        for rel in [r for r in known if r not in present]:
            del known[rel]
            self._dirty.add(folder)
        for rel, fate in present.items():
            self.ignore(folder, rel, fate)

    def unignore(self, folder: str, rel: str) -> None:
        if self.ignored.get(folder, {}).pop(rel, None) is not None:
            self._dirty.add(folder)

    # --- waiting -----------------------------------------------------------------------------

    def wait(self, folder: str, rel: str, why: str, since: float, waited: float) -> None:
        """``rel`` waits for ``why`` since ``since`` (wall clock), ``waited`` seconds so far;
        listed (and logged once) when empty or waiting long."""
        if why != "empty" and waited < LONG_WAIT_SECONDS:
            return
        known = self.waiting.setdefault(folder, {})
        before = known.get(rel)
        if before is not None and before[0] == why:
            return
        known[rel] = (why, since)
        self._dirty.add(folder)
        if before is None:
            logger.info(
                "{}/{}: waiting since {} ({}): {}",
                folder, rel, iso_time(since), why, WAIT_REASONS.get(why, ""),
            )  # fmt: skip

    def done_waiting(self, folder: str, rel: str) -> None:
        if self.waiting.get(folder, {}).pop(rel, None) is not None:
            self._dirty.add(folder)

    # --- publishing --------------------------------------------------------------------------

    def publish(self) -> None:
        """Write the lists of every folder that changed since the last call."""
        for folder in sorted(self._dirty):
            ignored_name, waiting_name = meta_names(folder)
            ignored = self.ignored.get(folder, {})
            waiting = self.waiting.get(folder, {})
            self.journal.set_meta(
                ignored_name,
                {
                    "count": len(ignored),
                    "files": [
                        {"name": rel, "reason": fate.reason, "fix": fate.fix}
                        for rel, fate in sorted(ignored.items())[:LIST_CAP]
                    ],
                },
            )
            self.journal.set_meta(
                waiting_name,
                {
                    "count": len(waiting),
                    "files": [
                        {"name": rel, "reason": why, "since": iso_time(since)}
                        for rel, (why, since) in sorted(waiting.items())[:LIST_CAP]
                    ],
                },
            )
        self._dirty.clear()
