"""Pictures of a job: its input and its outputs, as small thumbnails and a line of facts.

Only files the journal names for that job are ever read: the input is found from the job's
row (the archive or failed place once finished, ``processing/`` before) and each output
from ``outputs[i].location``; the URL only picks *which* of them (``input`` or an output's
index), never a path. Every file is read with the local-file policy (no symbolic links, no
extra hard links, at most ``[imaging] max_bytes``) and decoded through the imaging gate with
its limits. Thumbnails are WebP, at most :data:`THUMB_SIZE` pixels a side, kept in a small
in-memory cache keyed by the file's path, size and mtime.

Call :meth:`Thumbnails.picture` and :meth:`Thumbnails.facts` from a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from hotfolder import imaging
from hotfolder.daemon import claim
from hotfolder.daemon.journal import JobRow
from hotfolder.errors import HotfolderError
from hotfolder.imaging import ImagingSection
from hotfolder.localfiles import LocalFilePolicy, read_local

#: Longest side of a thumbnail, in pixels.
THUMB_SIZE = 320
#: Thumbnails (and facts) kept in memory.
CACHE_ENTRIES = 256


@dataclass(frozen=True)
class Picture:
    """A thumbnail, ready to send."""

    data: bytes
    media_type: str
    etag: str


@dataclass(frozen=True)
class Facts:
    """What the page says under a picture."""

    which: str
    label: str
    path: str
    bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    #: Why there is no picture (gone, not an image, refused by the gate), if there is none.
    problem: str | None = None


def input_file(row: JobRow) -> Path | None:
    """Where the job's original is now: the archive or failed place once finished (``place``),
    ``processing/`` before."""
    if row.state in ("done", "failed", "skipped"):
        return Path(row.place) if row.place and os.path.isabs(row.place) else None
    return claim.input_path(Path(row.folder), row.id, row.name)


def output_file(row: JobRow, index: int) -> Path | None:
    """The local file of the job's ``index``-th output, or None (no such output, or not a
    local file: a URL, a sidecar)."""
    if not 0 <= index < len(row.outputs):
        return None
    location = row.outputs[index].get("location")
    if not isinstance(location, str) or not os.path.isabs(location):
        return None
    if location.endswith(".json"):
        return None
    return Path(location)


def file_for(row: JobRow, which: str) -> Path | None:
    """The file ``which`` (``input`` or ``output-N``) names for ``row``; None for anything
    else. ``which`` never becomes part of a path."""
    if which == "input":
        return input_file(row)
    prefix, _, number = which.partition("-")
    if prefix == "output" and number.isdigit() and len(number) < 6:
        return output_file(row, int(number))
    return None


def pictures(row: JobRow) -> list[str]:
    """The ``which`` of every picture the job has: its input, then each local image output."""
    found = ["input"] if input_file(row) is not None else []
    return found + [f"output-{i}" for i in range(len(row.outputs)) if output_file(row, i)]


class Thumbnails:
    """Thumbnails and facts of job files, through the imaging gate, cached (thread-safe)."""

    def __init__(self, limits: ImagingSection) -> None:
        self.limits = limits
        self._policy = LocalFilePolicy(max_bytes=limits.max_bytes)
        self._cache: OrderedDict[tuple[str, ...], Picture | Facts] = OrderedDict()
        self._lock = threading.Lock()

    def picture(self, row: JobRow, which: str) -> Picture | None:
        """The thumbnail of ``which`` of ``row``; None when there is no such file or it is not
        an image the gate lets through."""
        path = file_for(row, which)
        if path is None:
            return None
        key = self._key(path, "thumb")
        if key is None:
            return None
        cached = self._get(key)
        if isinstance(cached, Picture):
            return cached
        try:
            image = imaging.decode(read_local(path, self._policy), self.limits, name=path.name)
            image.thumbnail((THUMB_SIZE, THUMB_SIZE))
            data = imaging.encode(image, "WEBP", {"quality": 80, "exif": None, "xmp": None})
        except HotfolderError:
            return None
        picture = Picture(data, "image/webp", hashlib.sha256(data).hexdigest()[:32])
        self._put(key, picture)
        return picture

    def facts(self, row: JobRow, which: str) -> Facts | None:
        """Size, format and dimensions of ``which`` of ``row`` (from the header only)."""
        path = file_for(row, which)
        if path is None:
            return None
        label = "input" if which == "input" else str(row.outputs[int(which[7:])].get("sink"))
        key = self._key(path, "facts")
        if key is None:
            return Facts(which, label, str(path), problem="the file is no longer there")
        cached = self._get(key)
        if isinstance(cached, Facts):
            return cached
        try:
            data = read_local(path, self._policy)
            found = imaging.probe(data, self.limits, name=path.name)
        except HotfolderError as exc:
            facts = Facts(which, label, str(path), problem=exc.message)
        else:
            facts = Facts(which, label, str(path), len(data), found.format, *found.upright_size)
        self._put(key, facts)
        return facts

    @staticmethod
    def _key(path: Path, kind: str) -> tuple[str, ...] | None:
        try:
            st = path.lstat()
        except OSError:
            return None
        return (kind, str(path), str(st.st_size), str(st.st_mtime_ns), str(st.st_ino))

    def _get(self, key: tuple[str, ...]) -> Picture | Facts | None:
        with self._lock:
            value = self._cache.get(key)
            if value is not None:
                self._cache.move_to_end(key)
            return value

    def _put(self, key: tuple[str, ...], value: Picture | Facts) -> None:
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
