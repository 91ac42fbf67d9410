"""The image that travels through a chain: encoded bytes, decoded pixels, or both.

An :class:`Artifact` decodes lazily (through the safety gate in :mod:`hotfolder.imaging`) and
encodes lazily, so a chain of local steps never re-encodes between steps, and a chain that
only uploads never decodes at all.

Simulated stays simulated: ``info["simulated"]`` (set on the result of a Venice call that a
simulated server answered) is carried to every artifact made from this one (``with_image``,
``with_data``, ``with_format``, ``with_info``; the engine also puts it back on a step's result
that dropped it), and :attr:`Artifact.data` writes :data:`hotfolder.imaging.SIMULATED_MARK`
into the bytes of every simulated artifact, whether they were just encoded or passed on as they
came: a PNG ``tEXt`` chunk ``Comment``, a JPEG ``COM`` segment, EXIF ``ImageDescription`` in a
WebP, ``ImageDescription`` (tag 270) in a TIFF, a GIF comment (see :mod:`hotfolder.imaging`).
Every sink writes ``artifact.data``, so every output file carries the mark, sidecar or not.

An input with several frames (an animated GIF, WebP or APNG, a multi-page TIFF) of which only
the first is used carries ``info["frames"]`` (how many it had), for the sidecar's note; an MPO's
second (stereo or depth) image is not counted. :attr:`Artifact.foreign_profile` names an
embedded colour profile other than sRGB (see :mod:`hotfolder.colour`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Protocol

from hotfolder import imaging

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from PIL import Image


class SourceFile(Protocol):
    """A file that holds an artifact's bytes (:class:`hotfolder.localfiles.LocalFile`): read
    whole, or opened for streaming (a binary reader that is also a context manager); either
    raises InputError when the file no longer holds the bytes first read (``sha256``)."""

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    def read_bytes(self) -> bytes: ...

    def open(self) -> AbstractContextManager[Any]: ...

    def check(self) -> None:
        """Raise InputError when the file is no longer the one read (without reading it)."""


@dataclass(frozen=True, eq=False)
class Artifact:
    """An image between two steps.

    ``name`` is the original file name (``photo.jpg``) that name templates draw on; ``format``
    is the Pillow format it is, or will be written as (``"JPEG"``, ``"PNG"``, ``"WEBP"``);
    ``save_options`` are passed to the encoder (``quality``, ``compress_level``, ``icc_profile``);
    ``info`` carries facts for sidecars (``{"simulated": True}``) to every artifact derived from
    this one. Set ``info`` when the artifact is made (``with_data(..., info=...)``,
    :meth:`with_info`), not by changing the dict of one whose ``data`` was read.
    """

    name: str
    format: str
    limits: imaging.ImagingSection = field(default_factory=imaging.ImagingSection, repr=False)
    save_options: dict[str, Any] = field(default_factory=dict, repr=False)
    info: dict[str, Any] = field(default_factory=dict, repr=False)
    _data: bytes | None = field(default=None, repr=False)
    _image: Image.Image | None = field(default=None, repr=False)
    #: The bytes are not upright (auto-orient kept an EXIF-turned input undecoded, so that a
    #: step that shrinks next decodes it at a reduced size): :attr:`data` is encoded from the
    #: upright pixels instead of passing them on.
    _sideways: bool = field(default=False, repr=False)
    #: Where the bytes are when they are not held (:meth:`from_file`): read again when needed.
    _file: SourceFile | None = field(default=None, repr=False)

    @classmethod
    def from_bytes(
        cls, data: bytes, *, name: str, limits: imaging.ImagingSection | None = None
    ) -> Artifact:
        """Wrap encoded bytes; the header is checked now, the pixels are decoded on demand."""
        limits = limits or imaging.ImagingSection()
        probe = imaging.probe(data, limits, name=name)
        info = {"frames": probe.frames} if probe.frames > 1 and probe.format != "JPEG" else {}
        artifact = cls(name=name, format=probe.format, limits=limits, info=info, _data=data)
        artifact.__dict__["header"] = probe
        return artifact

    @classmethod
    def from_file(
        cls,
        file: SourceFile,
        data: bytes,
        *,
        name: str,
        limits: imaging.ImagingSection | None = None,
    ) -> Artifact:
        """Wrap the bytes ``data`` just read from ``file`` without keeping them: the header is
        checked now, and the bytes are read again from ``file`` whenever they are needed (an
        input waiting for a Venice slot holds no copy of itself; an upload streams from the
        file, see :attr:`file`)."""
        held = cls.from_bytes(data, name=name, limits=limits)
        artifact = replace(held, _data=None, _file=file)
        artifact.__dict__.update(header=held.header, sha256=file.sha256)
        return artifact

    @classmethod
    def from_image(
        cls,
        image: Image.Image,
        *,
        name: str,
        format: str,
        limits: imaging.ImagingSection | None = None,
        save_options: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Artifact:
        """Wrap decoded pixels that will be encoded as ``format`` when bytes are needed."""
        return cls(
            name=name,
            format=format,
            limits=limits or imaging.ImagingSection(),
            save_options=dict(save_options or {}),
            info=dict(info or {}),
            _image=image,
        )

    @cached_property
    def image(self) -> Image.Image:
        """The decoded pixels, upright, in a working mode (see :func:`imaging.decode`)."""
        if self._image is not None:
            return self._image
        return imaging.decode(self._raw(), self.limits, name=self.name)

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height of the upright pixels, read from the header when not decoded."""
        if self.is_decoded:
            return self.image.size
        return self.header.upright_size

    def image_at_least(self, size: tuple[int, int]) -> Image.Image:
        """Upright pixels at least twice ``size`` on each side, or the whole image: for a
        step that shrinks to ``size``. A JPEG not decoded yet is decoded at a reduced DCT
        scale (:func:`imaging.decode` ``at_least``), which is several times faster for a
        camera photo; a final Lanczos to ``size`` keeps the quality of a full decode. The
        result is not kept: :attr:`image` stays the whole picture."""
        if self.is_decoded or not self._encoded:
            return self.image
        wanted = (2 * size[0], 2 * size[1])
        return imaging.decode(self._raw(), self.limits, name=self.name, at_least=wanted)

    def resized(self, size: tuple[int, int], *, reducing_gap: float | None = None) -> Image.Image:
        """The upright pixels scaled to ``size`` (Lanczos; ``reducing_gap`` as Pillow's
        ``resize``). Encoded input not decoded yet that shrinks on both sides is decoded for
        this alone (:func:`imaging.decode` ``resize_to``: a JPEG at a reduced DCT scale, and
        turned upright after it is scaled, so the turn moves ``size`` pixels); the result is
        not kept. Otherwise :attr:`image` is scaled."""
        full = self.upright_size
        if self.is_decoded or not self._encoded or size[0] >= full[0] or size[1] >= full[1]:
            return imaging.resized(self.image, size, reducing_gap=reducing_gap)
        return imaging.decode(
            self._raw(), self.limits, name=self.name, resize_to=size, reducing_gap=reducing_gap
        )

    def upright(self) -> Artifact:
        """This image with its EXIF orientation applied, without decoding now: every decode is
        upright already, and the bytes, when asked for, are encoded from those pixels. A step
        that shrinks next still decodes a JPEG at a reduced DCT scale. The header read when
        the bytes came in is kept (the bytes are the same), so the file is not read for it."""
        if not self._encoded or self.is_decoded or self._sideways:
            return self
        turned = replace(self, _sideways=True, info=dict(self.info))
        turned.__dict__["header"] = self.header
        return turned

    @property
    def data(self) -> bytes:
        """The encoded bytes in ``format`` with ``save_options``; when :attr:`simulated`, with
        the simulated mark in their metadata (:func:`imaging.mark_simulated`). The bytes of
        an artifact made :meth:`from_file` are read from the file each time, not kept."""
        if (file := self.file) is not None:
            return file.read_bytes()
        if (made := self.__dict__.get("_made")) is not None:
            return made  # type: ignore[no-any-return]
        if self._encoded and not self._sideways:
            data = self._raw()
        else:
            data = imaging.encode(self.image, self.format, self.save_options)
        made = imaging.mark_simulated(data, name=self.name) if self.simulated else data
        self.__dict__["_made"] = made
        return made

    @property
    def source_file(self) -> SourceFile | None:
        """The local file this artifact was read from (:meth:`from_file`), whatever was done to
        its pixels since; None for one made from bytes or pixels."""
        return self._file

    @property
    def file(self) -> SourceFile | None:
        """The local file that holds exactly :attr:`data`, when the bytes are not kept (see
        :meth:`from_file`): a reader can stream them from it instead of asking for
        :attr:`data`. None when the bytes are made here (decoded, re-encoded, marked)."""
        if self._file is None or self._sideways or self.simulated:
            return None
        return self._file

    @property
    def _encoded(self) -> bool:
        """Whether encoded bytes came in (held, or in a file), as opposed to pixels."""
        return self._data is not None or self._file is not None

    def _raw(self) -> bytes:
        """The bytes that came in, as they came."""
        if self._data is not None:
            return self._data
        assert self._file is not None, "an artifact holds bytes, a file or pixels"
        return self._file.read_bytes()

    @property
    def icc_profile(self) -> bytes | None:
        """The embedded ICC profile, read from the header when not decoded."""
        if self.is_decoded:
            icc = self.image.info.get("icc_profile")
            return bytes(icc) if icc else None
        return self.header.icc_profile

    @cached_property
    def header(self) -> imaging.Probe:
        """What the header of the bytes that came in says (format, size, orientation, frames,
        profile); read once."""
        return imaging.probe(self._raw(), self.limits, name=self.name)

    @property
    def foreign_profile(self) -> str | None:
        """The name of the embedded colour profile when it is not sRGB (``Display P3``,
        ``Adobe RGB (1998)``): these pixels must be converted (:func:`imaging.to_srgb`)
        before a program that takes every image as sRGB sees them. None for sRGB or none."""
        return imaging.foreign_profile(self.icc_profile)

    @property
    def simulated(self) -> bool:
        """Whether these pixels came, at some step, from a simulated answer."""
        return bool(self.info.get("simulated"))

    @property
    def is_decoded(self) -> bool:
        """Whether the pixels are at hand without decoding."""
        return self._image is not None or "image" in self.__dict__

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the encoded bytes."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def stem(self) -> str:
        """The original name without its extension."""
        return PurePath(self.name).stem

    @property
    def extension(self) -> str:
        """The usual file extension for ``format``, without a dot (``jpg``, ``png``)."""
        return imaging.extension_for(self.format)

    @property
    def media_type(self) -> str:
        """The MIME type for ``format`` (``image/jpeg``)."""
        return imaging.media_type_for(self.format)

    def with_image(self, image: Image.Image, **changes: Any) -> Artifact:
        """A new artifact with other pixels; other fields as given or as here."""
        return replace(self, _image=image, _data=None, _file=None, **_own_info(self, changes))

    def with_data(self, data: bytes, *, format: str | None = None, **changes: Any) -> Artifact:
        """A new artifact with other encoded bytes; the format is read from the header."""
        fmt = format or imaging.probe(data, self.limits, name=self.name).format
        changes = _own_info(self, changes)
        return replace(
            self,
            _data=data,
            _file=None,
            _image=None,
            _sideways=False,
            format=fmt,
            save_options={},
            **changes,
        )

    def with_format(self, format: str, save_options: dict[str, Any] | None = None) -> Artifact:
        """The same pixels, to be encoded as ``format`` with ``save_options``."""
        return replace(
            self,
            _image=self.image,
            _data=None,
            _file=None,
            format=format,
            save_options=dict(save_options or {}),
            info=dict(self.info),
        )

    def with_info(self, **facts: Any) -> Artifact:
        """The same image with ``facts`` added to ``info`` (``with_info(simulated=True)``);
        its bytes are made again, so they carry the marks the facts ask for."""
        image = self._image if self._image is not None else self.__dict__.get("image")
        return replace(self, _image=image, info={**self.info, **facts})


def _own_info(artifact: Artifact, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` with an ``info`` dict of the new artifact's own (``artifact``'s facts unless
    ``changes`` gives others), so that changing one artifact's facts leaves the other's be."""
    return {**changes, "info": dict(changes.get("info", artifact.info))}
