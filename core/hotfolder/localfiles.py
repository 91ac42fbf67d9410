"""Reading local files safely: one policy for the path resolver and the daemon.

A local file is opened with ``O_NOFOLLOW`` (unless the policy follows symbolic links) and
``O_NONBLOCK`` (a FIFO cannot hang the reader), then checked on the open descriptor: a regular
file, one hard link (unless the policy allows hard links), not over the byte cap; only then is
it read. The daemon applies the same policy to what it sees in a watched folder before it
claims a file, so what it quarantines is exactly what the path resolver would refuse.

The policy comes from ``[resolvers.path]`` (``follow_symlinks``, ``allow_hardlinks``): the path
resolver's parameters expose it as ``local_file_policy``, and :func:`policy_for` reads it from a
config without importing the resolver.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hotfolder.errors import InputError, UnsafeInputError

if TYPE_CHECKING:
    from hotfolder.config import Config

#: Names that are jobs although they are not images: job manifests.
MANIFEST_SUFFIXES = (".job.toml", ".job.json")
#: The resolver whose ``[resolvers.NAME]`` table holds the policy.
PATH_RESOLVER = "path"


@dataclass(frozen=True)
class LocalFilePolicy:
    """What may be read from a local path. The defaults are the safe ones."""

    #: Read through symbolic links (unsafe: a link can point at any file the reader may read).
    follow_symlinks: bool = False
    #: Read a file with more than one hard link (unsafe: whoever can write the folder can
    #: hard-link any file of that file system).
    allow_hardlinks: bool = False
    #: Most bytes read; None: no cap.
    max_bytes: int | None = None


#: The default policy: no links of either kind, no cap.
STRICT = LocalFilePolicy()


def policy_for(config: Config) -> LocalFilePolicy:
    """The policy of ``config``'s ``[resolvers.path]`` table (the strict default without one).

    Any resolver parameters with a ``local_file_policy`` attribute provide it, so the daemon
    needs no import of the plugin that implements the path resolver.
    """
    params = config.resolver_params.get(PATH_RESOLVER)
    policy = getattr(params, "local_file_policy", None)
    return policy if isinstance(policy, LocalFilePolicy) else STRICT


def stat_path(path: str | os.PathLike[str], policy: LocalFilePolicy = STRICT) -> os.stat_result:
    """``lstat`` of ``path``; when the policy follows links, the ``stat`` of what a link points
    to (and the link's own ``lstat`` when it points at nothing that can be read)."""
    st = os.lstat(path)
    if policy.follow_symlinks and stat.S_ISLNK(st.st_mode):
        try:
            return os.stat(path)
        except OSError:
            return st
    return st


def unsafe_reason(st: os.stat_result, policy: LocalFilePolicy = STRICT) -> str | None:
    """Why a file (from :func:`stat_path` or ``fstat``) must not be read, or None when the
    policy lets it be read. Worded to follow "it was not processed: "."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        if policy.follow_symlinks:
            return "it is a symbolic link to nothing that can be read"
        return "it is a symbolic link; hotfolder never reads through links"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a regular file"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    if st.st_nlink > 1 and not policy.allow_hardlinks:
        return f"it has {st.st_nlink} hard links; a linked file may be someone else's file"
    return None


def _open(path: str | os.PathLike[str], policy: LocalFilePolicy) -> int:
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not policy.follow_symlinks:
        flags |= os.O_NOFOLLOW
    return os.open(path, flags)


def open_regular(path: str | os.PathLike[str], policy: LocalFilePolicy = STRICT) -> int:
    """Open ``path`` for reading without blocking on a FIFO, and without following a link
    unless the policy does; the caller closes the descriptor. Raises OSError (ELOOP for a
    link) or ValueError(reason) when the opened file is one the policy refuses."""
    fd = _open(path, policy)
    reason = unsafe_reason(os.fstat(fd), policy)
    if reason:
        os.close(fd)
        raise ValueError(reason)
    return fd


def read_local(path: Path, policy: LocalFilePolicy = STRICT) -> bytes:
    """The bytes of the regular file ``path``, at most ``policy.max_bytes`` of them.

    The file is opened with ``O_NOFOLLOW`` (unless ``follow_symlinks``) and ``O_NONBLOCK`` (a
    FIFO cannot hang the reader), then checked on the open descriptor: a regular file, one
    hard link (unless ``allow_hardlinks``), not over the cap; only then is it read. Refusals
    are :class:`~hotfolder.errors.UnsafeInputError`, other problems
    :class:`~hotfolder.errors.InputError`.
    """
    try:
        fd = _open(path, policy)
    except FileNotFoundError as exc:
        msg = f"{path} does not exist"
        raise InputError(msg, hint="check the path") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP and not policy.follow_symlinks:
            msg = f"{path} is a symbolic link; refused (links are never read through)"
            hint = "copy the file itself in, or set follow_symlinks = true under [resolvers.path]"
            raise UnsafeInputError(msg, hint=hint) from exc
        msg = f"cannot open {path}: {exc.strerror}"
        raise InputError(msg) from exc
    try:
        _check_opened(path, os.fstat(fd), policy)
        return _read_capped(path, fd, policy.max_bytes)
    finally:
        os.close(fd)


def _check_opened(path: Path, st: os.stat_result, policy: LocalFilePolicy) -> None:
    if not stat.S_ISREG(st.st_mode):
        msg = f"{path} is a {_kind(st.st_mode)}, not a regular file; refused"
        raise UnsafeInputError(msg, hint="only regular files are read")
    if st.st_nlink > 1 and not policy.allow_hardlinks:
        msg = f"{path} has {st.st_nlink} hard links; refused (it could expose another file)"
        hint = "copy the file in instead of linking it; allow_hardlinks = true is unsafe"
        raise UnsafeInputError(msg, hint=hint)
    if policy.max_bytes is not None and st.st_size > policy.max_bytes:
        msg = f"{path} is {st.st_size} bytes, over the limit of {policy.max_bytes}"
        raise InputError(msg, hint="raise [imaging] max_bytes if such files are expected")


def _read_capped(path: Path, fd: int, max_bytes: int | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while max_bytes is None or size <= max_bytes:
        want = 1 << 20 if max_bytes is None else min(1 << 20, max_bytes + 1 - size)
        if not (chunk := os.read(fd, want)):
            break
        chunks.append(chunk)
        size += len(chunk)
    if max_bytes is not None and size > max_bytes:
        msg = f"{path} grew past the limit of {max_bytes} bytes while being read"
        raise InputError(msg, hint="write files elsewhere and move them in when complete")
    return b"".join(chunks)


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "folder",
        stat.S_ISFIFO: "named pipe (FIFO)",
        stat.S_ISSOCK: "socket",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "special file")
