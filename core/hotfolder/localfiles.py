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
import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from hotfolder.errors import InputError, UnsafeInputError

if TYPE_CHECKING:
    from hotfolder.config import Config

#: Names that are jobs although they are not images: job manifests.
MANIFEST_SUFFIXES = (".job.toml", ".job.json")
#: The resolver whose ``[resolvers.NAME]`` table holds the policy.
PATH_RESOLVER = "path"
#: A file last changed at least this long before it was read is *settled*: any later write
#: gives it a later change time, so its identity, size and times tell whether it is still the
#: file read, and :meth:`LocalFile.read_bytes` does not hash the bytes again. Longer than the
#: timestamp granularity of the file systems hotfolder runs on (the kernel's clock tick; FAT's
#: 2 s is the coarsest); a file changed later than that is checked by its sha256.
SETTLED_SECONDS = 3.0


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
    fd = _open_checked(path, policy)
    try:
        return _read_capped(path, fd, policy.max_bytes)
    finally:
        os.close(fd)


class LocalFile:
    """A local file read once, whose bytes are read again only when needed: an input waiting
    for its turn holds a descriptor's worth of memory, not its bytes.

    :meth:`read` opens and reads it under the policy (as :func:`read_local`) and remembers what
    it saw: the file's identity, size and times (``fstat``) and the bytes' sha256. Each later
    :meth:`read_bytes` or :meth:`open` opens it again under the same policy and refuses, with
    an InputError, a file that is not the one read: another file at that path, other bytes
    (compared by sha256 unless the file was settled when read: :data:`SETTLED_SECONDS`).
    """

    def __init__(
        self,
        path: Path,
        policy: LocalFilePolicy,
        st: os.stat_result,
        sha256: str,
        *,
        settled: bool = False,
    ):
        self.path = path
        self.policy = policy
        self.size = st.st_size
        self.sha256 = sha256
        self._signature = _signature(st)
        #: Last changed :data:`SETTLED_SECONDS` or more before it was read.
        self.settled = settled

    def __repr__(self) -> str:
        return f"LocalFile({str(self.path)!r}, {self.size} bytes)"

    @classmethod
    def read(cls, path: Path, policy: LocalFilePolicy = STRICT) -> tuple[LocalFile, bytes]:
        """The file at ``path`` and its bytes, read as :func:`read_local` reads them."""
        opened_ns = time.time_ns()
        fd = _open_checked(path, policy)
        try:
            st = os.fstat(fd)
            data = _read_capped(path, fd, policy.max_bytes)
        finally:
            os.close(fd)
        if len(data) != st.st_size:
            raise _changed(path)
        settled = st.st_ctime_ns <= opened_ns - int(SETTLED_SECONDS * 1e9)
        return cls(path, policy, st, hashlib.sha256(data).hexdigest(), settled=settled), data

    def read_bytes(self) -> bytes:
        """The bytes again; InputError when the file is no longer the one read (for a settled
        file its identity, size and times say so; for another, the bytes' sha256 too)."""
        fd = self._reopen()
        try:
            data = _read_capped(self.path, fd, self.size)
            written = _signature(os.fstat(fd)) != self._signature  # while it was read
        except InputError:
            raise _changed(self.path) from None
        finally:
            os.close(fd)
        if (
            written
            or len(data) != self.size
            or (not self.settled and hashlib.sha256(data).hexdigest() != self.sha256)
        ):
            raise _changed(self.path)
        return data

    def open(self) -> CheckedReader:
        """A reader of the bytes, for streaming them: it raises InputError instead of giving
        its last (empty) read when what it read is not the bytes read first."""
        return CheckedReader(self, os.fdopen(self._reopen(), "rb", buffering=0))

    def check(self) -> None:
        """InputError when another file is at the path now, or this one was written since it
        was read (its identity, size, modification or change time differ); nothing is read."""
        try:
            st = stat_path(self.path, self.policy)
        except OSError:
            raise _changed(self.path) from None
        if _signature(st) != self._signature:
            raise _changed(self.path)

    def _reopen(self) -> int:
        fd = _open_checked(self.path, self.policy)
        if _signature(os.fstat(fd)) != self._signature:
            os.close(fd)
            raise _changed(self.path)
        return fd


class CheckedReader:
    """A binary reader of a :class:`LocalFile` that checks, at its end, that it read the bytes
    the file had when first read (their sha256); :meth:`seek` back to 0 starts over (an HTTP
    client sending the body again). Closes its descriptor with :meth:`close`."""

    def __init__(self, source: LocalFile, raw: BinaryIO) -> None:
        self._source = source
        self._raw = raw
        self._hash = hashlib.sha256()
        self._read = 0

    def fileno(self) -> int:
        return self._raw.fileno()

    def tell(self) -> int:
        return self._read

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if (offset, whence) != (0, os.SEEK_SET):
            msg = "a checked reader seeks only back to its start"
            raise OSError(errno.ESPIPE, msg)
        self._raw.seek(0)
        self._hash, self._read = hashlib.sha256(), 0
        return 0

    def read(self, size: int = -1) -> bytes:
        left = self._source.size - self._read
        chunk = self._raw.read(left + 1 if size < 0 else min(size, left + 1))
        if chunk:
            self._read += len(chunk)
            if self._read > self._source.size:
                raise _changed(self._source.path)
            self._hash.update(chunk)
            return chunk
        if self._read != self._source.size or self._hash.hexdigest() != self._source.sha256:
            raise _changed(self._source.path)
        return b""

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> CheckedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _signature(st: os.stat_result) -> tuple[int, ...]:
    """What identifies a file's content without reading it: device, inode, size, and the
    modification and change times (a write moves both; the change time cannot be set back)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _changed(path: Path) -> InputError:
    msg = f"{path} changed while hotfolder was working on it"
    hint = "write files elsewhere and move them in when complete, then drop it again"
    return InputError(msg, hint=hint)


def _open_checked(path: Path, policy: LocalFilePolicy) -> int:
    """``path`` opened under ``policy`` and checked on the descriptor; the caller closes it."""
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
    except BaseException:
        os.close(fd)
        raise
    return fd


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
    """What ``fd`` holds, at most ``max_bytes``: read in one call of the file's size (one
    buffer, not chunks joined into a second), and on until the end if it grew meanwhile."""
    expected = os.fstat(fd).st_size
    cap = max_bytes if max_bytes is not None else max(expected, 1 << 20)
    data = os.read(fd, min(expected, cap) + 1)
    if len(data) > expected:  # it grew, or it is not what fstat said: read on in chunks
        chunks, size = [data], len(data)
        while max_bytes is None or size <= max_bytes:
            want = 1 << 20 if max_bytes is None else min(1 << 20, max_bytes + 1 - size)
            if not (chunk := os.read(fd, want)):
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    if max_bytes is not None and len(data) > max_bytes:
        msg = f"{path} grew past the limit of {max_bytes} bytes while being read"
        raise InputError(msg, hint="write files elsewhere and move them in when complete")
    return data


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "folder",
        stat.S_ISFIFO: "named pipe (FIFO)",
        stat.S_ISSOCK: "socket",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "special file")
