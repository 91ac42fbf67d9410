"""Is a file finished, and is it ours to take? Names, quiet periods, file types, headers.

A file is *ready* when the writer is done with it: the platform reported close-after-write or
a rename into the folder and the file has not changed since, or its size and mtime stayed the
same for the folder's quiet period. A file found by a scan (at start-up, or by a rescan) whose
mtime is already older than the quiet period and that no program holds open for writing (the
read lease below is granted) has been unchanged that long: it is taken at once (and when that
is longer than an incomplete image waits, without reading its header). Then the
header is checked: an empty file is a placeholder
(browsers create one before the download), and an image shorter than its own structure says is
still being written, so both wait: a JPEG or PNG without its end marker, a WebP shorter than
its RIFF header's length, a TIFF whose IFDs or strips lie past its end, a BMP shorter than its
declared size, a HEIC/AVIF whose last box runs past its end (or with no media data yet). A
writer that appends and closes between chunks thus yields one job, not one per chunk. A file
some program still holds open for writing waits for as long as it is held, however quiet: on
Linux hotfolder asks for a read lease, which is refused while a writer has the file open;
elsewhere a file seen opened (an open event without its close) is taken after
``OPEN_QUIET_SECONDS`` unchanged. Anything the local-file policy refuses
(:mod:`hotfolder.localfiles`: not a regular file, a link, a hard-linked file unless
``[resolvers.path]`` allows them) is
*unsafe*: it is quarantined with its reason and never read.

A companion prompt file (``NAME.prompt.txt``) goes through the same checks, and its image
waits for it: while it is being written, and, when the image's chain uses ``{prompt}``, for it
to come at all (``quiet_seconds`` plus the folder's ``prompt_wait_seconds``).
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import functools
import os
import re
import signal
import struct
import time
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

    @functools.cached_property
    def _matchers(self) -> tuple[re.Pattern[str] | None, ...]:
        """The compiled built-in ignore list, ``ignore``, ``exclude`` and ``include``: every
        name an event or a scan meets is matched against them."""
        cs = self.case_sensitive
        return tuple(
            _matcher(p, cs) for p in (DEFAULT_IGNORE, self.ignore, self.exclude, self.include)
        )

    def _any(self, matcher: re.Pattern[str] | None, rel: str, name: str) -> bool:
        """Whether ``matcher`` matches ``rel``'s name ``name``, or ``rel``."""
        if matcher is None:
            return False
        return bool(matcher.match(self._norm(name)) or matcher.match(self._norm(rel)))

    def _any_part(self, matcher: re.Pattern[str] | None, parts: list[str]) -> bool:
        """Whether ``matcher`` matches any of ``parts``."""
        return matcher is not None and any(matcher.match(self._norm(p)) for p in parts)

    def ignored(self, rel: str) -> bool:
        """Whether any part of ``rel`` is a temp, junk or hidden name (or in ``ignore``)."""
        temp, ignore, _, _ = self._matchers
        parts = _parts(rel)
        return self._any_part(temp, parts) or self._any_part(ignore, parts)

    def wanted(self, rel: str) -> bool:
        """Whether ``rel`` (a path relative to the folder, ``/``-separated) is to be taken."""
        return self.why_not(rel) is None

    def why_not(self, rel: str) -> str | None:
        """Why ``rel`` is not taken: ``"temp name"`` (built-in ignore list, dotfiles),
        ``"ignored"`` (the folder's ``ignore``), ``"excluded"`` or ``"not in include"``;
        None when it is taken."""
        temp, ignore, exclude, include = self._matchers
        parts = _parts(rel)
        if self._any_part(temp, parts):
            return "temp name"
        if self._any_part(ignore, parts):
            return "ignored"
        name = parts[-1] if parts else ""
        if self._any(exclude, rel, name):
            return "excluded"
        if rel.lower().endswith(MANIFEST_SUFFIXES) or self._any(include, rel, name):
            return None
        return "not in include"


def _parts(rel: str) -> list[str]:
    """``PurePosixPath(rel).parts`` (without pathlib for a relative path)."""
    if rel.startswith("/"):
        return list(PurePosixPath(rel).parts)
    return [part for part in rel.split("/") if part and part != "."]


@functools.lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...], case_sensitive: bool) -> re.Pattern[str] | None:
    """One compiled regular expression for a set of globs (``fnmatch`` rules), None for none:
    a name is matched once, not once per glob (every event's name is)."""
    if not patterns:
        return None
    globs = patterns if case_sensitive else tuple(p.lower() for p in patterns)
    return re.compile("|".join(fnmatch.translate(glob) for glob in globs))


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
    owned by another user without CAP_LEASE). The lease lasts until the descriptor is closed,
    a few microseconds; a program that opens the file for writing meanwhile breaks it, which
    signals this process (see :func:`ignore_lease_breaks`)."""
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
        return False  # the lease ends with the descriptor, closed below
    finally:
        os.close(fd)


def ignore_lease_breaks() -> None:
    """Let a lease break pass unseen: the kernel tells the holder of a lease that a program
    opens the file for writing with SIGIO, whose default action ends the process. A program
    that does so while :func:`held_for_writing` holds its lease would otherwise stop the
    daemon. Call it in the main thread of a process that looks at files."""
    if (sigio := getattr(signal, "SIGIO", None)) is not None:
        signal.signal(sigio, signal.SIG_IGN)


def header_state(path: str, policy: LocalFilePolicy = STRICT) -> str:
    """``"ok"``, ``"empty"`` (a placeholder) or ``"incomplete"`` (shorter than its own
    structure says: see the module docstring)."""
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
        if head.startswith(b"\xff\xd8\xff"):
            complete = b"\xff\xd9" in os.pread(fd, _TAIL, max(0, size - _TAIL))
        elif head.startswith(b"\x89PNG\r\n\x1a\n"):
            complete = b"IEND" in os.pread(fd, _TAIL, max(0, size - _TAIL))
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            complete = size >= struct.unpack("<I", head[4:8])[0] + 8
        elif head[:4] in (b"II*\x00", b"MM\x00*"):
            complete = _tiff_complete(fd, size, "<" if head[:2] == b"II" else ">")
        elif head[:2] == b"BM":
            declared, pixels_at = struct.unpack("<I4xI", head[2:14].ljust(12, b"\xff"))
            complete = declared <= size and pixels_at < size
        elif head[4:8] == b"ftyp":
            complete = _boxes_complete(fd, size)
        else:
            complete = True
    except (OSError, struct.error):
        complete = True  # a structure that cannot be walked is for the gate to refuse
    finally:
        os.close(fd)
    return "ok" if complete else "incomplete"


#: Bytes per value of each TIFF field type.
_TIFF_TYPE_SIZES = dict(enumerate((0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4)))
#: StripOffsets/StripByteCounts and TileOffsets/TileByteCounts.
_TIFF_DATA_TAGS = ((273, 279), (324, 325))
_TIFF_MAX_IFDS = 64
_TIFF_MAX_ARRAY = 1 << 20


def _tiff_complete(fd: int, size: int, order: str) -> bool:
    """Whether every IFD of a (classic) TIFF, the values they point to and the image data
    of their strips or tiles lie inside the file's ``size`` bytes."""
    offset = struct.unpack(order + "I", os.pread(fd, 4, 4))[0]
    seen: set[int] = set()
    while offset and len(seen) < _TIFF_MAX_IFDS:
        if offset in seen or offset + 2 > size:
            return offset in seen  # a loop is the gate's problem; past the end is not written
        seen.add(offset)
        count = struct.unpack(order + "H", os.pread(fd, 2, offset))[0]
        end = offset + 2 + 12 * count
        if end + 4 > size:
            return False
        raw = os.pread(fd, 12 * count + 4, offset + 2)
        arrays: dict[int, tuple[int, ...]] = {}
        for i in range(count):
            tag, kind, n, value = struct.unpack(order + "HHI4s", raw[12 * i : 12 * i + 12])
            length = _TIFF_TYPE_SIZES.get(kind, 1) * n
            where = struct.unpack(order + "I", value)[0]
            if length > 4 and where + length > size:
                return False
            if kind in (3, 4) and any(tag in pair for pair in _TIFF_DATA_TAGS):
                code, width = ("H", 2) if kind == 3 else ("I", 4)
                n = min(n, _TIFF_MAX_ARRAY)
                data = value if length <= 4 else os.pread(fd, n * width, where)
                arrays[tag] = struct.unpack(f"{order}{n}{code}", data[: n * width])
        for offsets_tag, counts_tag in _TIFF_DATA_TAGS:
            pairs = zip(arrays.get(offsets_tag, ()), arrays.get(counts_tag, ()), strict=False)
            if any(start + length > size for start, length in pairs):
                return False
        offset = struct.unpack(order + "I", raw[-4:])[0]
    return True


def _boxes_complete(fd: int, size: int) -> bool:
    """Whether the top-level boxes of an ISO media file (HEIC, AVIF) fill the file exactly
    and its media data (``mdat``) is there."""
    offset, media = 0, False
    while offset < size:
        header = os.pread(fd, 16, offset)
        if len(header) < 8:
            return False
        length, kind = struct.unpack(">I4s", header[:8])
        if length == 1:
            if len(header) < 16:
                return False
            length = struct.unpack(">Q", header[8:16])[0]
        elif length == 0:
            length = size - offset  # "to the end of the file"
        if length < 8:
            return True  # not a box structure hotfolder can walk: the gate decides
        media = media or kind == b"mdat"
        offset += length
    return offset == size and media


@dataclass
class Candidate:
    """A file seen in a folder, watched until it is ready."""

    path: str
    sig: Signature | None = None
    stable_since: float = 0.0
    #: The signature at the last close-after-write or move-in event, if one was seen.
    arrived: Signature | None = None
    opened: int = 0
    #: Why it waits, after the last :func:`check` (one of :data:`WAIT_REASONS`' keys).
    why: str = ""
    #: When it was first seen (``time.time()``), for ``status``.
    seen_at: float = 0.0
    #: Found by a scan rather than named by an event: its mtime may say it is long finished.
    scanned: bool = False


#: Why a candidate waits, and what brings it in.
WAIT_REASONS: dict[str, str] = {
    "being written": "it is still changing; it is taken once it stays unchanged",
    "quiet period": "it is taken once unchanged for the folder's quiet_seconds",
    "open for writing": "a program still has it open for writing; it is taken once closed",
    "empty": "an empty placeholder; it is taken once something writes into it (delete it "
    "if it is a leftover)",
    "incomplete image": "its image data is shorter than its header says (or has no end "
    "marker); it is taken once complete, or once unchanged for 10 quiet periods",
    "prompt file": "its chain uses {prompt}: it is taken once its NAME.prompt.txt is beside "
    "it and complete, or failed after quiet_seconds plus prompt_wait_seconds without one",
    "prompt being written": "its prompt file is still being written; the two are taken "
    "together once it is complete",
    "no image yet": "a prompt file: it is taken with its image (the same name with an image "
    "extension) once that is dropped beside it",
}


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
    settled = False
    if sig != candidate.sig:
        first = candidate.sig is None
        candidate.sig = sig
        candidate.stable_since = now
        if candidate.arrived is not None and candidate.arrived != sig:
            candidate.arrived = None
        if first and candidate.arrived is None and candidate.scanned:
            age = _settled_for(candidate, st, quiet)
            settled = age is not None
            candidate.stable_since = now - (age or 0.0)
        if candidate.arrived is None and not settled:
            candidate.why = "quiet period" if first else "being written"
            return "wait", st
    stable_for = now - candidate.stable_since
    closed = (candidate.arrived == sig and candidate.opened <= 0) or settled
    if not closed and stable_for < quiet:
        candidate.why = "quiet period"
        return "wait", st
    if not closed:
        held = held_for_writing(candidate.path)
        candidate.why = "open for writing"
        if held:
            return "wait", st
        if held is None and candidate.opened > 0 and stable_for < OPEN_QUIET_SECONDS + quiet:
            return "wait", st
        candidate.opened = 0  # not held open any more: its close event was missed
    if st.st_size == 0:
        candidate.why = "empty"
        return "empty", st
    # A file unchanged for longer than an incomplete one waits (an old file a scan found) is
    # taken whatever its header says: it is not opened (each open is two events to hear).
    if stable_for < max(quiet * INCOMPLETE_FACTOR, 1.0):
        state = header_state(candidate.path, policy)
        if state == "empty":
            candidate.why = "empty"
            return "empty", st
        if state == "incomplete":
            candidate.why = "incomplete image"
            return "wait", st
    return "ready", st


def _settled_for(candidate: Candidate, st: os.stat_result, quiet: float) -> float | None:
    """How long a file a scan just found has been unchanged, by its mtime, when that is longer
    than the quiet period and no program holds it open for writing; None when it must wait the
    quiet period like any other (written recently, held open, or not known: no leases)."""
    age = time.time() - st.st_mtime
    if age <= quiet or candidate.opened > 0:
        return None
    return age if held_for_writing(candidate.path) is False else None
