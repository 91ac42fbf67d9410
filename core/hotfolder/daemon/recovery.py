"""At start-up, make the journal and the processing folders agree again after any crash.

* Jobs left ``running`` go back to the queue; their checkpoints are reused, so a paid step
  that finished is not paid for again. The stop counts as one of their attempts only if they
  were working, not waiting for a Venice slot or a retry (the journal's meta ``waits``).
* A finished job whose original was not moved yet (a crash between the journal's commit and
  the rename) is moved now to the place the journal recorded.
* A claimed file with no journal row (a crash between the rename and the insert) is recorded
  as a queued job; a job's folder with no row is removed.
* The claimed files of an older layout (``processing/<job-id>/photo.jpg``) are moved to their
  names now (``processing/<job-id>.photo.jpg``), and the empty spare folders it made ahead
  (``.hotfolder/spare/``) are removed.
* A queued job whose claimed file is gone is marked failed, so that nothing is silently lost.
* A failed job's processing folder keeps its paid results for ``hotfolder retry`` (which then
  pays nothing again) for ``FAILED_CHECKPOINTS_KEEP_SECONDS``; then it is removed.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from loguru import logger

from hotfolder.daemon import claim, settings
from hotfolder.daemon.folders import FolderPlan
from hotfolder.daemon.journal import FINAL_STATES, JobRow, Journal, NewJob
from hotfolder.daemon.readiness import Signature
from hotfolder.fsutil import fsync_dir
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
    _remove_spares(plan.root)
    listed = _listed(processing)
    moved = [
        _move_old_layout(plan.root, Path(entry.path))
        for entry in listed
        if entry.is_dir(follow_symlinks=False) and entry.name not in busy
    ]
    if any(moved):
        listed = _listed(processing)
    folders: set[str] = set()
    images: dict[str, str | None] = {}  # job id -> its claimed file's name (None: a prompt's)
    for entry in listed:
        if entry.is_dir(follow_symlinks=False):
            folders.add(entry.name)
        elif (parsed := claim.split_claimed(entry.name)) is None:
            logger.warning("{} is no claimed file; leaving it for you to look at", entry.path)
        elif is_prompt_file(parsed[1]):
            images.setdefault(parsed[0], None)
        else:
            images[parsed[0]] = parsed[1]
    adopted: list[NewJob] = []
    for job_id in sorted((folders | set(images)) - set(busy)):
        row = journal.get(job_id)
        if row is None:
            if (name := images.get(job_id)) is not None:
                path = claim.input_path(plan.root, job_id, name)
                chain = plan.chain_for(name) or plan.chain or ""
                adopted.append(
                    NewJob(job_id, plan.key, name, chain, str(Signature.of(path.lstat())))
                )
            elif job_id in images:
                logger.warning(
                    "job {}: a prompt file with no image and no journal row; leaving it for "
                    "you to look at",
                    job_id,
                )
            else:
                claim.remove_job_dir(plan.root, job_id)
        elif row.state == "failed" and not os.path.lexists(
            claim.input_path(plan.root, row.id, row.name)
        ):
            _prune_failed_checkpoints(plan, row)
        elif row.state in FINAL_STATES:
            logger.info("job {} ({}) was {}; finishing its move", row.id, row.name, row.state)
            claim.finish_move(
                plan.root, row.id, row.name, row.place, keep_checkpoints=row.state == "failed"
            )
    if adopted:
        logger.warning(
            "{}: {} file(s) claimed just before a crash were not recorded; queued now",
            plan.root, len(adopted),
        )  # fmt: skip
        journal.add(adopted)


def _listed(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if not e.is_symlink()), key=lambda e: e.name)


def _move_old_layout(folder_root: Path, folder: Path) -> bool:
    """Move the claimed file (and its prompt file) out of a job's folder of the layout before
    this one, to where :func:`claim.input_path` now looks; the folder keeps its checkpoints.
    Whether anything moved."""
    job_id = folder.name
    inside = [p for p in folder.iterdir() if p.name != claim.CHECKPOINTS and p.is_file()]
    images = [p for p in inside if not is_prompt_file(p.name)]
    if len(images) > 1:
        logger.warning("{} holds {} files; leaving it for you to look at", folder, len(images))
        return False
    # the image first; its prompt file beside it as the claim puts it
    named = images[0].name if images else None
    for path in sorted(inside, key=lambda p: is_prompt_file(p.name)):
        if named is None:
            target = claim.processing_root(folder_root) / claim.claimed_name(job_id, path.name)
        elif path.name == named:
            target = claim.input_path(folder_root, job_id, named)
        else:
            target = claim.prompt_path(folder_root, job_id, named)
        os.rename(path, target)
        logger.info("job {}: {} moved to {} (the new layout)", job_id, path.name, target.name)
    if inside:
        fsync_dir(folder.parent)
    with contextlib.suppress(OSError):
        folder.rmdir()  # no checkpoints: the folder is not needed any more
    return bool(inside)


def _remove_spares(folder_root: Path) -> None:
    """Remove the empty folders an older hotfolder made ahead in ``.hotfolder/spare/``."""
    spare = folder_root / settings.STATE_SUBDIR / "spare"
    for path, _, _ in os.walk(spare, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(path)  # an empty folder; anything else stays


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
