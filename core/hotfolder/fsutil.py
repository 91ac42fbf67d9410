"""File-system helpers that never leave a half-written file behind, and the one reading of a
failed write: :func:`write_failure` tells a full, read-only or vanished place (the job waits and
is tried again) from a wrong one (the job fails).

A write goes to a temporary file beside its target first, named for its writer:
``.<name>.hf-<host>-<pid>-<random>.tmp``. One a writer left behind when it was killed or the
power went is removed by the next write into that folder (see :func:`sweep_dead_temps`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
import socket
import threading
import time
from pathlib import Path

from loguru import logger

from hotfolder.errors import SinkError, StorageUnavailable

DEFAULT_FILE_MODE = 0o644
#: A temporary file of :func:`write_temp`: the host's tag and the writer's process id.
_TEMP_NAME = re.compile(r"\.hf-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp\Z")
#: A write holds its temporary file for as long as one write and one fsync take; one older
#: than this is left over, whoever wrote it (a process of another host, or of another PID
#: namespace on this one, is not asked).
STALE_TEMP_SECONDS = 600.0
#: How often a folder being written into is looked over for left-over temporary files.
SWEEP_EVERY_SECONDS = 3600.0
#: Folders swept lately, by when; forgotten all at once when there are this many.
_SWEPT_KEPT = 10_000
_swept: dict[str, float] = {}
_swept_lock = threading.Lock()


def atomic_write(path: Path, data: bytes, *, mode: int = DEFAULT_FILE_MODE) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The bytes go to a temporary file in the same folder (:func:`write_temp`) and are renamed
    over ``path``; then the folder itself is flushed so the rename survives a power cut. On
    any error the temporary file is removed.
    """
    tmp = write_temp(path, data, mode=mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_temp(target: Path, data: bytes, *, mode: int = DEFAULT_FILE_MODE) -> Path:
    """Write ``data`` to a new temporary file beside ``target``, flushed to disk and with
    ``mode``, and return its path: the caller renames or links it into place and removes it.
    On any error it is removed here. The first write into a folder (and one an hour after)
    removes what dead writers left there first (:func:`sweep_dead_temps`)."""
    folder = target.parent
    _sweep_now_and_then(folder)
    prefix = f"{_temp_prefix(target.name)}hf-{_host_tag()}-{os.getpid()}-"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        tmp = folder / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue  # the same four random bytes twice: draw again
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def sweep_dead_temps(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temporary files of :func:`write_temp` in ``folder`` that no write will ever
    finish: those of a process of this host that is gone, and any older than
    :data:`STALE_TEMP_SECONDS`. Returns what was removed; a folder that cannot be listed is
    left alone."""
    now = time.time() if now is None else now
    removed = []
    try:
        with os.scandir(folder) as entries:
            names = [e for e in entries if e.name.startswith(".") and e.name.endswith(".tmp")]
    except OSError:
        return []
    for entry in names:
        if (found := _TEMP_NAME.search(entry.name)) is None:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue  # finished meanwhile
        pid = int(found["pid"])
        gone = found["host"] == _host_tag() and pid != os.getpid() and not _alive(pid)
        if gone or age >= STALE_TEMP_SECONDS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    if removed:
        logger.info(
            "{}: removed {} temporary file(s) left by a write that was cut short ({})",
            folder, len(removed), ", ".join(p.name for p in removed[:3]),
        )  # fmt: skip
    return removed


def _sweep_now_and_then(folder: Path) -> None:
    key = str(folder)
    now = time.monotonic()
    with _swept_lock:
        last = _swept.get(key)
        if last is not None and now - last < SWEEP_EVERY_SECONDS:
            return
        if len(_swept) >= _SWEPT_KEPT:  # a folder per job (checkpoints) or per day adds up
            _swept.clear()
        _swept[key] = now
    sweep_dead_temps(folder)


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def _host_tag() -> str:
    """Six hex digits for this host, so that a folder shared by several hosts (a fleet's)
    never has a live writer's file judged by another host's process table."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _temp_prefix(name: str) -> str:
    """``.<name>.`` for the temporary file, or a hash of a name too long to carry along (the
    temporary name must fit 255 bytes as well)."""
    if len(name.encode()) <= 200:
        return f".{name}."
    return f".{hashlib.sha256(name.encode()).hexdigest()[:16]}."


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, creations) to disk where the platform allows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: Write failures that go away by themselves or by a fix outside the config: a full disk or
#: quota, a read-only remount, permissions, a folder removed under the sink, a storage I/O error.
TRANSIENT_WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EIO}
)


def write_failure(exc: OSError, message: str) -> SinkError:
    """The error for a failed write: :class:`StorageUnavailable` (the job waits and is tried
    again) for a full, read-only, unwritable or vanished place, else :class:`SinkError`."""
    reason = exc.strerror or str(exc)
    if exc.errno in TRANSIENT_WRITE_ERRNOS:
        return StorageUnavailable(
            f"{message}: {reason}",
            hint="free space or fix the folder's permissions or mount; the job waits and is "
            "tried again, nothing is lost",
        )
    return SinkError(f"{message}: {reason}", hint="check the folder the output goes to")
