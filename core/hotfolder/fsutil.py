"""File-system helpers that never leave a half-written file behind."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

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
