"""Moving files between a folder's places, each move one atomic rename on one file system.

::

    <folder>/photo.jpg
      └─ claim ──> <folder>/.hotfolder/processing/<job-id>.photo.jpg
                     ├─ done ────> archive/<YYYY-MM-DD>/photo.jpg  (or deleted, or put back)
                     └─ failed ──> failed/photo.jpg + failed/photo.jpg.error.json
                   <folder>/.hotfolder/processing/<job-id>/checkpoints/   (paid results)

A claim is one rename, into ``processing/`` itself under a name that starts with the job id.
The job's own folder is made only when a paid step saves its result there: making a folder
costs ext4 100-350 µs of kernel time on the machines measured (an inode and a block,
journaled, holding the parent's lock), several times a rename, and with thousands of files
present at start-up a folder per claim was most of the claiming (``docs/benchmarks.md``).

A companion prompt file (``photo.prompt.txt``, :mod:`hotfolder.prompts`) is claimed with its
image, beside it (``<job-id>.photo.prompt.txt``), and goes wherever the image goes, renamed
alike (``photo.<job-id>.jpg`` takes ``photo.<job-id>.prompt.txt`` with it).

The journal records where a file is going *before* it is moved (``place``), so a crash between
the two is finished at the next start by :func:`finish_move`. Every name made here fits the file
system's limit of 255 bytes, with room for the ``.error.json`` (or the prompt suffix) beside
it: a name that would not (a long name in a script of many bytes per character, plus a job id)
keeps its start and extension and gets a short hash of the whole name instead of its middle.
A claimed file with no journal row (a crash between the rename and the insert) is adopted at
start-up by :mod:`hotfolder.daemon.recovery`, which also moves the files of an older layout
(``processing/<job-id>/photo.jpg``) to their names here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hotfolder.daemon import settings
from hotfolder.daemon.readiness import Signature
from hotfolder.fsutil import atomic_write, fsync_dir
from hotfolder.job import is_job_id, new_job_id
from hotfolder.localfiles import STRICT, LocalFilePolicy, stat_path, unsafe_reason
from hotfolder.pauses import iso_time
from hotfolder.prompts import PROMPT_SUFFIX, companion

PROCESSING = "processing"
CHECKPOINTS = "checkpoints"
ERROR_SUFFIX = ".error.json"
#: How long a failed job's paid results stay in its processing folder for ``hotfolder retry``.
FAILED_CHECKPOINTS_KEEP_SECONDS = 30 * 24 * 3600
#: The longest file name (in bytes) of the file systems hotfolder runs on (ext4, xfs, btrfs,
#: APFS, NTFS in UTF-8 terms).
NAME_MAX_BYTES = 255


@dataclass(frozen=True)
class Claimed:
    """A file renamed into its processing folder."""

    id: str
    rel: str
    path: Path
    sig: Signature
    #: Its ``lstat`` just after the rename.
    lstat: os.stat_result | None = field(default=None, repr=False, compare=False)

    def stat(self, policy: LocalFilePolicy = STRICT) -> os.stat_result:
        """What :func:`~hotfolder.localfiles.stat_path` says of it now (the ``lstat`` taken
        at the claim, unless the policy follows a link)."""
        if self.lstat is None or (policy.follow_symlinks and stat.S_ISLNK(self.lstat.st_mode)):
            return stat_path(self.path, policy)
        return self.lstat


def processing_root(folder_root: Path) -> Path:
    """``<folder>/.hotfolder/processing``: the claimed files, and the jobs' folders."""
    return folder_root / settings.STATE_SUBDIR / PROCESSING


def job_dir(folder_root: Path, job_id: str) -> Path:
    """``<folder>/.hotfolder/processing/<job-id>``: the job's checkpoints, once it has any."""
    return processing_root(folder_root) / job_id


def claimed_name(job_id: str, name: str) -> str:
    """The name of a claimed file ``name`` in ``processing/``: ``<job-id>.<name>``, shortened
    when needed so that its prompt file's name fits too."""
    joined = f"{job_id}.{name}"
    if len(joined.encode()) <= NAME_MAX_BYTES - len(PROMPT_SUFFIX):
        return joined  # the usual case, without building a Path
    return fitting_name(Path(joined), reserve=len(PROMPT_SUFFIX)).name


def split_claimed(name: str) -> tuple[str, str] | None:
    """``(job_id, name)`` of a claimed file's name in ``processing/``; None for a name that is
    not one (a stranger's file)."""
    job_id, dot, rest = name.partition(".")
    return (job_id, rest) if dot and rest and is_job_id(job_id) else None


def claim(folder_root: Path, rel: str, *, with_prompt: bool = False) -> Claimed | None:
    """Rename ``<folder>/<rel>`` into ``processing/``, and with ``with_prompt`` its prompt file
    after it (the image first: a crash between the two leaves a job without its prompt, never
    a prompt taken for a job); None if the image vanished first."""
    job_id = new_job_id()
    # strings, not pathlib: this runs for every file, thousands a second at start-up
    root = os.fspath(folder_root)
    name = rel.rpartition("/")[2]
    target = os.path.join(root, settings.STATE_SUBDIR, PROCESSING, claimed_name(job_id, name))
    source = os.path.join(root, rel)
    try:
        os.rename(source, target)
    except FileNotFoundError:
        if not os.path.lexists(source):
            return None
        os.makedirs(os.path.dirname(target), exist_ok=True)  # someone removed processing/
        os.rename(source, target)
    if with_prompt:
        with contextlib.suppress(FileNotFoundError):
            os.rename(companion(Path(root, rel)), companion(Path(target)))
    st = os.lstat(target)
    return Claimed(job_id, rel, Path(target), Signature.of(st), st)


def input_path(folder_root: Path, job_id: str, rel: str) -> Path:
    """Where a claimed file is while its job is not finished."""
    return processing_root(folder_root) / claimed_name(job_id, PurePosixPath(rel).name)


def prompt_path(folder_root: Path, job_id: str, rel: str) -> Path:
    """Where a claimed image's prompt file is, when it came with one."""
    return companion(input_path(folder_root, job_id, rel))


def checkpoint_dir(folder_root: Path, job_id: str) -> Path:
    """Where the job's paid step results are kept (see :class:`hotfolder.engine.Engine`)."""
    return job_dir(folder_root, job_id) / CHECKPOINTS


def archive_target(root: Path, rel: str, job_id: str) -> Path:
    """``<archive>/<YYYY-MM-DD>/<rel>``, or with the job id added when that name is taken."""
    target = root / time.strftime("%Y-%m-%d") / rel
    return _free_name(target, job_id, reserve=0)


def failed_target(root: Path, rel: str, job_id: str) -> Path:
    """``<failed>/<rel>`` (room kept for its ``.error.json``), or with the job id added."""
    return _free_name(root / rel, job_id, reserve=len(ERROR_SUFFIX))


def _free_name(target: Path, job_id: str, *, reserve: int) -> Path:
    first = fitting_name(target, reserve=reserve)
    if not any(os.path.lexists(p) for p in (first, _error_file(first), companion(first))):
        return first
    return fitting_name(target, tag=job_id, reserve=reserve)


def fitting_name(target: Path, *, tag: str | None = None, reserve: int = len(ERROR_SUFFIX)) -> Path:
    """``target`` (with ``.<tag>`` before its extension), its name shortened if needed so that
    the name plus ``reserve`` bytes fits :data:`NAME_MAX_BYTES`."""
    stem, suffix = target.stem, target.suffix
    if len(suffix.encode()) > 16:  # not an extension, just a dot in a long name
        stem, suffix = target.name, ""
    tail = (f".{tag}" if tag else "") + suffix
    name = stem + tail
    room = NAME_MAX_BYTES - reserve
    if len(name.encode()) <= room:
        return target.with_name(name)
    mark = "~" + hashlib.sha256(target.name.encode()).hexdigest()[:10]
    keep = room - len((mark + tail).encode())
    cut = stem.encode()[: max(0, keep)].decode(errors="ignore")  # whole characters only
    return target.with_name(cut + mark + tail)


def _error_file(target: Path) -> Path:
    return target.with_name(target.name + ERROR_SUFFIX)


def move_into(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, making folders as needed (callers pick a free name
    with :func:`archive_target` or :func:`failed_target`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)
    fsync_dir(target.parent)


def move_with_prompt(source: Path, target: Path) -> None:
    """Move an image to ``target`` (see :func:`move_into`), and its prompt file, if it has
    one, beside it under the matching name (never over another file)."""
    prompt = companion(source)
    move_into(source, target)
    if os.path.lexists(prompt):
        move_into(prompt, _prompt_target(target))


def _prompt_target(image: Path) -> Path:
    """``NAME.prompt.txt`` beside ``image``, or, when that is taken (or too long), a name
    with a tag that is not, still ending in ``.prompt.txt``."""
    target = companion(image)
    if os.path.lexists(target) or len(target.name.encode()) > NAME_MAX_BYTES:
        tagged = fitting_name(image, tag=new_job_id(), reserve=len(PROMPT_SUFFIX))
        target = companion(tagged)
    return target


def write_error(target: Path, info: dict[str, Any]) -> None:
    """``<target>.error.json`` next to a failed original."""
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(_error_file(target), json.dumps(info, indent=2, default=str).encode())


def finish_move(
    folder_root: Path, job_id: str, rel: str, place: str | None, *, keep_checkpoints: bool = False
) -> None:
    """Carry the claimed original to ``place`` (a path, ``"deleted"`` or ``"kept"``) and
    remove the processing folder, or with ``keep_checkpoints`` (a failed job) leave the paid
    results in it for ``hotfolder retry``. Safe to repeat after a crash at any point."""
    source = input_path(folder_root, job_id, rel)
    if os.path.lexists(source):
        if place == "deleted":
            source.unlink()
            companion(source).unlink(missing_ok=True)
        elif place == "kept":
            back = folder_root / rel
            if os.path.lexists(back) or os.path.lexists(companion(back)):
                back = fitting_name(back, tag=job_id, reserve=0)
            move_with_prompt(source, back)
        elif place:
            move_with_prompt(source, Path(place))
    elif os.path.lexists(prompt := companion(source)):  # a crash between the two moves
        if place == "deleted":
            prompt.unlink()
        elif place:
            move_into(prompt, _prompt_target(folder_root / rel if place == "kept" else Path(place)))
    if keep_checkpoints and has_checkpoints(folder_root, job_id):
        return
    remove_job_dir(folder_root, job_id)


def has_checkpoints(folder_root: Path, job_id: str) -> bool:
    """Whether the job saved the result of a paid step."""
    folder = checkpoint_dir(folder_root, job_id)
    return folder.is_dir() and any(folder.iterdir())


def remove_job_dir(folder_root: Path, job_id: str) -> None:
    path = job_dir(folder_root, job_id)
    shutil.rmtree(path, ignore_errors=True)
    fsync_dir(path.parent)


def quarantine(
    folder_root: Path, failed_root: Path, rel: str, reason: str, *, chain: str | None = None
) -> tuple[str, Path]:
    """Move an unsafe entry (link, FIFO, device, hard-linked file: what the local-file policy
    refuses) to the failed place with its reason, never opening it. Returns the job id and
    where it went. The error file has the same fields as a failed job's."""
    job_id = new_job_id()
    target = failed_target(failed_root, rel, job_id)
    info = {
        "class": "UnsafeInputError",
        "message": f"{rel} was not processed: {reason}",
        "hint": "drop the file itself (a regular file with one link) into the folder",
        "step": None,
        "status": None,
        "request_id": None,
        "attempts": 0,
        "time": iso_time(time.time()),
        "job": job_id,
        "file": rel,
        "folder": str(folder_root),
        "chain": chain,
    }
    move_into(folder_root / rel, target)
    write_error(target, info)
    return job_id, target


def claimed_reason(path: Path, policy: LocalFilePolicy = STRICT) -> str | None:
    """Why a claimed input must not be read, checked again just before a job runs."""
    try:
        return unsafe_reason(stat_path(path, policy), policy)
    except FileNotFoundError:
        return "the claimed file disappeared from its processing folder"


def ensure_places(folder_root: Path, *places: Path) -> None:
    """Create ``.hotfolder/processing`` and the archive/failed places."""
    processing_root(folder_root).mkdir(parents=True, exist_ok=True)
    for place in places:
        with contextlib.suppress(FileExistsError):
            place.mkdir(parents=True, exist_ok=True)
