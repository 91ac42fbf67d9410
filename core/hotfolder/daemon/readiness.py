"""Is a file finished, and is it ours to take? Names, quiet periods, file types, headers.

A file is *ready* when the writer is done with it: the platform reported close-after-write or
a rename into the folder and the file has not changed since, or its size and mtime stayed the
same for the folder's quiet period. Then the header is checked: an empty file is a placeholder
(browsers create one before the download), and a JPEG or PNG without its end marker is still
being written, so both wait. A file some program still holds open for writing waits for as
long as it is held, however quiet: on Linux hotfolder asks for a read lease, which is refused
while a writer has the file open; elsewhere a file seen opened (an open event without its
close) is taken after ``OPEN_QUIET_SECONDS`` unchanged. Anything
the local-file policy refuses (:mod:`hotfolder.localfiles`:
not a regular file, a link, a hard-linked file unless ``[resolvers.path]`` allows them) is
*unsafe*: it is quarantined with its reason and never read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import os
from dataclasses import dataclass
from pathlib import PurePosixPath

from hotfolder.localfiles import (
    MANIFEST_SUFFIXES,
    STRICT,
    LocalFilePolicy,
    open_regular,
    stat_path,
    unsafe_reason,
)

#: Names never taken: temp files of browsers, rsync, office suites, sync tools, OS junk.
DEFAULT_IGNORE: tuple[str, ...] = (
    ".*",  # dotfiles, rsync's .name.XXXXXX, .DS_Store, ._AppleDouble, .~lock.*, .syncthing.*
    "*.part",
    "*.part-*",
    "*.crdownload",
    "*.tmp",
    "*.temp",
    "*.download",
    "*.filepart",
    "*.partial",
    "*.!qB",
    "*.swp",
    "*~",
    "~$*",
    "~syncthing~*",
    "Thumbs.db",
    "desktop.ini",
    "@eaDir",
    "#recycle",
)
#: A file with no end marker yet is taken anyway once unchanged this many quiet periods.
INCOMPLETE_FACTOR = 10
_TAIL = 4096


@dataclass(frozen=True)
class NameFilter:
    """A folder's include/exclude/ignore globs, matched against the name and the relative
    path, case-insensitively unless asked otherwise."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    case_sensitive: bool = False

    def _norm(self, text: str) -> str:
        return text if self.case_sensitive else text.lower()

    def _any(self, patterns: tuple[str, ...], rel: str) -> bool:
        name = PurePosixPath(rel).name
        for pattern in patterns:
            pat = self._norm(pattern)
            if fnmatch.fnmatchcase(self._norm(name), pat) or fnmatch.fnmatchcase(
                self._norm(rel), pat
            ):
                return True
        return False

    def ignored(self, rel: str) -> bool:
        """Whether any part of ``rel`` is a temp, junk or hidden name (or in ``ignore``)."""
        patterns = DEFAULT_IGNORE + self.ignore
        return any(self._any(patterns, part) for part in PurePosixPath(rel).parts)

    def wanted(self, rel: str) -> bool:
        """Whether ``rel`` (a path relative to the folder, ``/``-separated) is to be taken."""
        if self.ignored(rel) or self._any(self.exclude, rel):
            return False
        if rel.lower().endswith(MANIFEST_SUFFIXES):
            return True
        return self._any(self.include, rel)


@dataclass(frozen=True)
class Signature:
    """What changes when a file is written: size, mtime and inode."""

    size: int
    mtime_ns: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> Signature:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)

    def __str__(self) -> str:
        return f"{self.size}:{self.mtime_ns}:{self.ino}"


#: Without a way to ask (no leases), a file seen opened for writing is taken after this long
#: unchanged.
OPEN_QUIET_SECONDS = 60.0


def held_for_writing(path: str) -> bool | None:
    """Whether a program has ``path`` open for writing: Linux refuses a read lease on such a
    file. None when this cannot be known (another OS, a file system without leases, a file
    owned by another user without CAP_LEASE)."""
    setlease = getattr(fcntl, "F_SETLEASE", None)
    if setlease is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, setlease, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno in (errno.EAGAIN, errno.EBUSY) else None
    else:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setlease, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


def header_state(path: str, policy: LocalFilePolicy = STRICT) -> str:
    """``"ok"``, ``"empty"`` (a placeholder) or ``"incomplete"`` (no JPEG/PNG end marker)."""
    try:
        fd = open_regular(path, policy)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "ok"  # the claim quarantines it with its reason
        raise
    except ValueError:
        return "ok"
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return "empty"
        head = os.pread(fd, 16, 0)
        tail = os.pread(fd, _TAIL, max(0, size - _TAIL))
    finally:
        os.close(fd)
    if head.startswith(b"\xff\xd8\xff") and b"\xff\xd9" not in tail:
        return "incomplete"
    if head.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" not in tail:
        return "incomplete"
    return "ok"


@dataclass
class Candidate:
    """A file seen in a folder, watched until it is ready."""

    path: str
    sig: Signature | None = None
    stable_since: float = 0.0
    #: The signature at the last close-after-write or move-in event, if one was seen.
    arrived: Signature | None = None
    opened: int = 0


def check(
    candidate: Candidate, quiet: float, now: float, policy: LocalFilePolicy = STRICT
) -> tuple[str, os.stat_result | None]:
    """Look at a candidate once: ``("gone"|"unsafe"|"wait"|"ready"|"empty", stat)``, the
    ``stat`` from :func:`~hotfolder.localfiles.stat_path` (``lstat`` unless links are
    followed); ``"unsafe"`` when ``policy`` refuses the file."""
    try:
        st = stat_path(candidate.path, policy)
    except FileNotFoundError:
        return "gone", None
    if unsafe_reason(st, policy):
        return "unsafe", st
    sig = Signature.of(st)
    if sig != candidate.sig:
        candidate.sig = sig
        candidate.stable_since = now
        if candidate.arrived is not None and candidate.arrived != sig:
            candidate.arrived = None
        if candidate.arrived is None:
            return "wait", st
    stable_for = now - candidate.stable_since
    closed = candidate.arrived == sig and candidate.opened <= 0
    if not closed and stable_for < quiet:
        return "wait", st
    if not closed:
        held = held_for_writing(candidate.path)
        if held:
            return "wait", st
        if held is None and candidate.opened > 0 and stable_for < OPEN_QUIET_SECONDS + quiet:
            return "wait", st
        candidate.opened = 0  # not held open any more: its close event was missed
    state = header_state(candidate.path, policy)
    if state == "empty":
        return "empty", st
    if state == "incomplete" and stable_for < max(quiet * INCOMPLETE_FACTOR, 1.0):
        return "wait", st
    return "ready", st
