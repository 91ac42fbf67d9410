"""At start-up, make the journal and the processing folders agree again after any crash.

* Jobs left ``running`` go back to the queue; their checkpoints are reused, so a paid step
  that finished is not paid for again. The stop counts as one of their attempts only if they
  were working, not waiting for a Venice slot or a retry (the journal's meta ``waits``).
* A finished job whose original was not moved yet (a crash between the journal's commit and
  the rename) is moved now to the place the journal recorded.
* A processing folder with no journal row (a crash between the rename and the insert) is
  recorded as a queued job; an empty one is removed.
* A queued job whose claimed file is gone is marked failed, so that nothing is silently lost.
* A failed job's processing folder keeps its paid results for ``hotfolder retry`` (which then
  pays nothing again) for ``FAILED_CHECKPOINTS_KEEP_SECONDS``; then it is removed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from loguru import logger

from hotfolder.daemon import claim
from hotfolder.daemon.folders import FolderPlan
from hotfolder.daemon.journal import FINAL_STATES, JobRow, Journal, NewJob
from hotfolder.daemon.readiness import Signature
from hotfolder.prompts import is_prompt_file


def recover(journal: Journal, plans: list[FolderPlan]) -> None:
    _uncharge_waiting(journal)
    if n := journal.requeue_running():
        logger.warning("{} job(s) were running when the daemon stopped; they run again", n)
    for plan in plans:
        reconcile(journal, plan)
    _check_claimed(journal)


def reconcile(
    journal: Journal, plan: FolderPlan, *, busy: frozenset[str] | set[str] = frozenset()
) -> None:
    """Match ``<folder>/.hotfolder/processing/*`` against the journal; ``busy`` names jobs
    running now, which are left alone."""
    processing = claim.processing_root(plan.root)
    if not processing.is_dir():
        return
    adopted: list[NewJob] = []
    for entry in sorted(processing.iterdir()):
        if not entry.is_dir() or entry.is_symlink() or entry.name in busy:
            continue
        row = journal.get(entry.name)
        if row is not None:
            if row.state == "failed" and not os.path.lexists(
                claim.input_path(plan.root, row.id, row.name)
            ):
                _prune_failed_checkpoints(plan, row)
            elif row.state in FINAL_STATES:
                logger.info("job {} ({}) was {}; finishing its move", row.id, row.name, row.state)
                claim.finish_move(
                    plan.root, row.id, row.name, row.place, keep_checkpoints=row.state == "failed"
                )
            continue
        inputs = [
            p for p in entry.iterdir() if p.name != claim.CHECKPOINTS and not is_prompt_file(p)
        ]
        if not inputs:
            claim.remove_job_dir(plan.root, entry.name)
            continue
        if len(inputs) > 1:
            logger.warning("{} holds {} files; leaving it for you to look at", entry, len(inputs))
            continue
        sig = Signature.of(inputs[0].lstat())
        chain = plan.chain_for(inputs[0].name) or plan.chain or ""
        adopted.append(NewJob(entry.name, plan.key, inputs[0].name, chain, str(sig)))
    if adopted:
        logger.warning(
            "{}: {} file(s) claimed just before a crash were not recorded; queued now",
            plan.root, len(adopted),
        )  # fmt: skip
        journal.add(adopted)


def _uncharge_waiting(journal: Journal) -> None:
    """A job that was only waiting (for a Venice slot, a retry's backoff) when the daemon
    stopped did no work in that attempt: it is not charged for it. A job that was working is,
    so that an input which crashes the daemon cannot do so forever."""
    waiting = journal.meta("waits") or {}
    for row in journal.jobs(states=["running"]):
        if row.id in waiting and row.attempts > 0:
            journal.update(row.id, attempts=row.attempts - 1)
            logger.info(
                "job {} ({}) was waiting for {} when the daemon stopped: not counted as an attempt",
                row.id, row.name, waiting[row.id].get("what", "something"),
            )  # fmt: skip


def _prune_failed_checkpoints(plan: FolderPlan, row: JobRow) -> None:
    """A failed job's processing folder holds only its paid results, kept for ``hotfolder
    retry``; after ``FAILED_CHECKPOINTS_KEEP_SECONDS`` they go."""
    finished = row.finished or row.updated or 0.0
    if time.time() - finished < claim.FAILED_CHECKPOINTS_KEEP_SECONDS:
        return
    logger.info("job {} ({}) failed long ago; removing its saved paid results", row.id, row.name)
    claim.remove_job_dir(plan.root, row.id)


def _check_claimed(journal: Journal) -> None:
    for row in journal.jobs(states=["queued", "paused"]):
        if not claim.processing_root(Path(row.folder)).is_dir():
            continue  # the folder is unreachable now: judge its jobs when it is back
        if os.path.lexists(claim.input_path(Path(row.folder), row.id, row.name)):
            continue
        logger.error("job {}: the claimed file {} is gone; marked failed", row.id, row.name)
        journal.update(
            row.id,
            state="failed",
            finished=time.time(),
            error={
                "class": "InputError",
                "message": f"the claimed file {row.name} disappeared from its processing folder",
                "hint": "something outside hotfolder removed it",
            },
        )
