"""``hotfolder retry``: a failed job's original moves back into ``processing/`` and the
job is queued again; a running daemon picks it up within a second."""

from __future__ import annotations

import os
from pathlib import Path

from hotfolder.daemon import claim
from hotfolder.daemon.journal import JobRow, Journal
from hotfolder.errors import HotfolderError
from hotfolder.localfiles import STRICT, LocalFilePolicy, unsafe_reason


def requeue(journal: Journal, row: JobRow, policy: LocalFilePolicy = STRICT) -> None:
    """Move a failed job's original back into ``processing/`` and queue the job; an
    original the local-file ``policy`` (``[resolvers.path]``) refuses stays where it is."""
    if row.state != "failed":
        msg = f"job {row.id} ({row.name}) is {row.state}, not failed"
        raise HotfolderError(msg, hint="only failed jobs are retried")
    root = Path(row.folder)
    source = claim.input_path(root, row.id, row.name)
    place = Path(row.place) if row.place else None
    if not os.path.lexists(source):
        if place is None or not os.path.lexists(place):
            msg = f"job {row.id}: the original of {row.name} is no longer at {place}"
            raise HotfolderError(msg, hint="drop the file into the folder again instead")
        if reason := unsafe_reason(place.lstat(), policy):
            msg = f"job {row.id}: {place} is never processed: {reason}"
            raise HotfolderError(msg, hint="drop the file itself into the folder instead")
        claim.move_with_prompt(place, source)
        Path(str(place) + claim.ERROR_SUFFIX).unlink(missing_ok=True)
    journal.update(
        row.id,
        state="queued",
        attempts=0,
        not_before=0,
        error=None,
        place=None,
        finished=None,
    )
