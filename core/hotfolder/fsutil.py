"""File-system helpers that never leave a half-written file behind, and the one reading of a
failed write: :func:`write_failure` tells a full, read-only or vanished place (the job waits and
is tried again) from a wrong one (the job fails)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path

from hotfolder.errors import SinkError, StorageUnavailable

DEFAULT_FILE_MODE = 0o644


def atomic_write(path: Path, data: bytes, *, mode: int = DEFAULT_FILE_MODE) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The bytes go to a temporary file in the same folder, are flushed to disk, get ``mode``,
    and are renamed over ``path``; then the folder itself is flushed so the rename survives a
    power cut. On any error the temporary file is removed.
    """
    folder = path.parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


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
