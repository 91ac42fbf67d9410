"""Safe image decoding and encoding: the one gate every input passes before any work.

:func:`probe` reads the header only: it refuses files over ``max_bytes``, formats outside the
allow-list (their decoders never run: ``Image.open`` gets ``formats=``), sizes outside
``min_pixels``..``max_pixels``, animations under ``animation = "reject"``, and GIFs whose frames
reach beyond the pixel limit (a frame may be larger than the logical screen). :func:`decode`
probes, then loads the first frame, applies the EXIF orientation and normalises the mode (see
:mod:`hotfolder._modes`). Every Pillow failure becomes an :class:`InputError` naming the file,
or an :class:`UnsafeInputError` for decompression bombs; nothing else escapes.

Pillow's own bomb guard (``Image.MAX_IMAGE_PIXELS``) is process-global and is never changed
here; ``max_pixels`` is enforced per call from the header. Pillow's hard error (over twice its
limit, about 179 MP) always applies. Its ``DecompressionBombWarning`` is an error except where
``max_pixels`` deliberately allows more pixels than Pillow's limit and the header has already
been checked against it. ``warnings.catch_warnings`` swaps process-global state and is not
thread-safe before Python 3.14, so the guarded sections are serialised by a lock; decoding is
not the bottleneck (the Venice rate limit and PNG encoding are). Call :func:`probe` and
:func:`decode` from worker threads (as the engine runs sync steps), not on the event loop: they
may wait for another thread's decode.

**The simulated mark.** An image whose pixels came from a simulated answer (a Venice server
that said ``X-Simulated: true``, such as the local sandbox) carries :data:`SIMULATED_MARK`,
``hotfolder: simulated (a simulated Venice server made this image, not Venice)``, in its file
metadata. :func:`mark_simulated` writes it into encoded bytes without re-encoding the pixels;
``Artifact.data`` calls it for every artifact whose ``info["simulated"]`` is true, so the
mark is in every output, whichever sink writes it, whatever format, sidecar or not, and
``strip-metadata`` does not remove it. Where it goes, and where tools show it:

* PNG: a ``tEXt`` chunk with the keyword ``Comment``, the last text chunk before the image
  data. ``identify -verbose``: ``Comment: ...``; exiftool: ``Comment``; Pillow:
  ``info["Comment"]``.
* JPEG: a ``COM`` segment after the APPn segments, so the last comment (in an MPO, before its
  ``MPF`` segment, whose offsets must not move). ``identify``: ``comment: ...``; exiftool:
  ``Comment``; Pillow: ``info["comment"]`` (every comment is in ``applist``).
* WebP: EXIF ``ImageDescription`` (0x010E) in the ``EXIF`` chunk; a simple (VP8/VP8L) file
  becomes an extended (VP8X) one. exiftool: ``Image Description``; Pillow:
  ``getexif()[0x010E]``. (ImageMagick 6 lists the EXIF profile but not its fields.)
* TIFF: ``ImageDescription`` (tag 270) in the first IFD, written as a new copy of that IFD at
  the end of the file, so no other offset moves. ``identify``: ``comment: ...``; exiftool:
  ``Image Description``; Pillow: ``tag_v2[270]``.
* GIF: a comment extension before the first image. ``identify``: ``comment: ...``;
  exiftool: ``Comment``; Pillow: ``info["comment"]``.
* BMP has no metadata: it stays unmarked (with a warning); its sidecar still says
  ``"simulated": true``.

An ``ImageDescription`` the file had already is kept, followed by ``" | "`` and the mark.
:func:`has_simulated_mark` finds the mark in any of these.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pillow_heif
from loguru import logger
from PIL import Image, ImageOps, UnidentifiedImageError, features
from pydantic import Field, field_validator, model_validator

from hotfolder import _modes
from hotfolder.errors import (
    ConfigError,
    HotfolderError,
    InputError,
    OperationError,
    UnsafeInputError,
)
from hotfolder.schema import Section

__all__ = [
    "SIMULATED_MARK",
    "ImagingSection",
    "Probe",
    "decode",
    "encode",
    "extension_for",
    "format_for",
    "has_simulated_mark",
    "include_globs",
    "mark_simulated",
    "media_type_for",
    "probe",
    "reader_for",
    "to_8bit",
]

# HEIC/HEIF (iPhone photos) is read and written by pillow-heif, registered here once; the
# orientation libheif applies is taken out of the EXIF it hands back, so nothing turns twice.
pillow_heif.register_heif_opener()
Image.init()
#: Whether this Pillow reads and writes AVIF itself (Pillow 11.3+ built with libavif).
HAS_AVIF = bool(features.check("avif")) and "AVIF" in Image.OPEN
#: Whether pillow-heif can write HEIC here (its wheels carry the x265 encoder).
HAS_HEIF_ENCODER = "HEIF" in Image.SAVE and bool(pillow_heif.libheif_info().get("HEIF"))

#: The formats :func:`encode` and :func:`format_for` know: Pillow name -> (extension, MIME type).
WRITABLE: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "TIFF": ("tif", "image/tiff"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
    **({"AVIF": ("avif", "image/avif")} if HAS_AVIF else {}),
    **({"HEIF": ("heic", "image/heic")} if HAS_HEIF_ENCODER else {}),
}
_ALIASES = {"JPG": "JPEG", "JPE": "JPEG", "MPO": "JPEG", "TIF": "TIFF", "HEIC": "HEIF"}
#: What :func:`encode` uses when the options do not say.
ENCODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 90},
    "PNG": {"compress_level": 6},
    "WEBP": {"quality": 90},
    "TIFF": {"compression": "tiff_lzw"},
    "AVIF": {"quality": 85},
    "HEIF": {"quality": 85},
}
#: Formats whose writers take only 8-bit RGB or RGBA.
_RGB_ONLY = frozenset({"AVIF", "HEIF"})
#: The formats the gate accepts by default; the default ``include`` of a folder follows them.
DEFAULT_FORMATS: tuple[str, ...] = (
    "JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP", "HEIF", *(("AVIF",) if HAS_AVIF else ()),
)  # fmt: skip
_METADATA_KEYS = ("icc_profile", "exif", "xmp", "dpi", "comment")
#: The text every image made from a simulated answer carries in its metadata (see
#: :func:`mark_simulated`); ASCII, so every format's text field can hold it as it is.
SIMULATED_MARK = "hotfolder: simulated (a simulated Venice server made this image, not Venice)"
_PNG_MARK_KEYWORD = b"Comment"
_IMAGE_DESCRIPTION = 0x010E
_DESCRIPTION_JOINER = b" | "
_RAISE_PIXELS = "raise [imaging] max_pixels if you trust this file"
_GUARD = threading.Lock()
_VERIFY_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


class ImagingSection(Section):
    """``[imaging]``: what the gate lets through."""

    table = "imaging"

    #: Largest input file, in bytes.
    max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    #: Most pixels (width x height) an input may declare; at most Pillow's hard limit.
    max_pixels: int = Field(default=100_000_000, ge=1)
    #: Fewest pixels an input may have.
    min_pixels: int = Field(default=1, ge=1)
    #: Pillow formats that may be opened (``jpg``/``tif``/``heic`` accepted; JPEG includes
    #: MPO; HEIF is HEIC too).
    formats: tuple[str, ...] = Field(default=DEFAULT_FORMATS, validate_default=True)
    #: Multi-frame input (GIF/APNG/WebP animations, multi-page TIFF): use the first frame or
    #: refuse the file. MPO (a JPEG with a second, stereo or depth, image) is never refused.
    animation: Literal["first-frame", "reject"] = "first-frame"
    #: An input whose EXIF block is damaged: refuse it (its orientation cannot be trusted),
    #: or drop the metadata and go on.
    corrupt_metadata: Literal["reject", "drop"] = "reject"

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        Image.init()
        names = tuple(dict.fromkeys(_ALIASES.get(f.upper(), f.upper()) for f in value))
        unknown = [n for n in names if n not in Image.OPEN]
        if unknown:
            msg = (
                f"Pillow cannot read {', '.join(unknown)}; it reads {', '.join(sorted(Image.OPEN))}"
            )
            raise ValueError(msg)
        return names

    @field_validator("max_pixels")
    @classmethod
    def _within_pillow(cls, value: int) -> int:
        ceiling = _pillow_hard_limit()
        if ceiling is not None and value > ceiling:
            msg = f"Pillow refuses any image over {ceiling:,} pixels; max_pixels cannot exceed it"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ImagingSection:
        if self.min_pixels > self.max_pixels:
            msg = f"min_pixels ({self.min_pixels:,}) is above max_pixels ({self.max_pixels:,})"
            raise ValueError(msg)
        return self


@dataclass(frozen=True)
class Probe:
    """What the header says, before any pixel is decoded (``MPO`` is reported as ``JPEG``)."""

    format: str
    width: int
    height: int
    mode: str
    frames: int
    #: The EXIF orientation (1 = upright) when the header carries one.
    orientation: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height once the EXIF orientation is applied (5-8 turn by 90 degrees)."""
        turned = self.orientation in (5, 6, 7, 8)
        return (self.height, self.width) if turned else (self.width, self.height)


def probe(data: bytes, limits: ImagingSection, *, name: str) -> Probe:
    """Check ``data``'s header against ``limits``; raise InputError or UnsafeInputError."""
    with _guarded(name, limits.max_pixels):
        return _open_checked(data, limits, name)[1]


def decode(
    data: bytes,
    limits: ImagingSection,
    *,
    name: str,
    at_least: tuple[int, int] | None = None,
) -> Image.Image:
    """The first frame of ``data``, upright, in a working mode, with ICC and EXIF in ``info``.

    EXIF orientation is applied and its tag removed from ``info["exif"]``. 16-bit grayscale
    stays ``I;16``; :func:`encode` scales it to 8 bits only for formats that cannot store it.

    ``at_least`` (upright width, height) lets a JPEG be decoded at a reduced DCT scale (1/2,
    1/4 or 1/8) as long as the result stays at least that large: a step that shrinks a camera
    photo to a web size asks for twice its target and decodes a quarter of the pixels or
    fewer. Other formats decode whole.
    """
    with _guarded(name, limits.max_pixels):
        image, found = _open_checked(data, limits, name)
    # The header passed the gate: decoding runs outside the lock, so decodes run in parallel.
    with _pillow_errors(name):
        if at_least is not None and image.format in ("JPEG", "MPO"):
            width, height = at_least
            stored = (height, width) if found.orientation in (5, 6, 7, 8) else (width, height)
            image.draft(image.mode, stored)
        image.load()
        working = _modes.to_working_mode(_upright(image, name))
    working.info = {k: v for k, v in working.info.items() if k in _METADATA_KEYS}
    return working


def verify(data: bytes, limits: ImagingSection, *, name: str) -> Probe:
    """Check that ``data`` decodes whole, without keeping its pixels; returns the probe.

    At most one such decode per CPU runs at a time, so many jobs checking large files at
    once do not hold all their pixels together.
    """
    found = probe(data, limits, name=name)
    with _VERIFY_SLOTS:
        decode(data, limits, name=name)
    return found


def encode(image: Image.Image, format: str, options: dict[str, Any]) -> bytes:
    """``image`` encoded as ``format`` (a Pillow name); ``options`` go to the encoder.

    The mode is converted for the format (RGBA is flattened onto ``options["background"]``,
    white by default, for JPEG; 16-bit is kept by PNG and TIFF, else scaled to 8 bits). ICC
    profile, EXIF, XMP and dpi come from ``image.info`` unless ``options`` name them (``None``
    drops one); a profile that does not match the written mode is dropped.
    """
    fmt = _ALIASES.get(format.upper(), format.upper())
    encoder_options = dict(options)
    background = encoder_options.pop("background", "white")
    prepared = _modes.for_format(image, fmt, background)
    if fmt in _RGB_ONLY and prepared.mode not in ("RGB", "RGBA"):
        info = prepared.info
        prepared = _modes.to_8bit(prepared) if prepared.mode.startswith("I;16") else prepared
        prepared = prepared.convert("RGBA" if _modes.has_alpha(prepared) else "RGB")
        prepared.info = info
    metadata = {k: prepared.info.get(k) for k in ("icc_profile", "exif", "xmp", "dpi")}
    params = {**ENCODER_DEFAULTS.get(fmt, {}), **metadata, **encoder_options}
    if params["icc_profile"] and not _modes.icc_fits(params["icc_profile"], prepared.mode):
        params["icc_profile"] = None
    params["exif"] = params["exif"] or b""
    if fmt == "HEIF" and not params["exif"]:
        del params["exif"]  # pillow-heif refuses an empty EXIF block
    params = {k: v for k, v in params.items() if v is not None or k == "icc_profile"}
    buffer = io.BytesIO()
    try:
        prepared.save(buffer, fmt, **params)
    except (KeyError, OSError, TypeError, ValueError) as exc:
        size = f"{prepared.width}x{prepared.height}"
        msg = f"cannot encode a {prepared.mode} {size} image as {fmt}: {exc}"
        raise OperationError(msg, hint="check the step's format and encoder options") from exc
    return buffer.getvalue()


def to_8bit(image: Image.Image) -> Image.Image:
    """``image`` with 16-bit grayscale scaled to ``L`` (other modes unchanged)."""
    return _modes.to_8bit(image) if image.mode.startswith("I;16") else image


def include_globs(formats: tuple[str, ...] = DEFAULT_FORMATS) -> list[str]:
    """``*.ext`` for every file extension of ``formats`` (MPO's with JPEG's): the names a
    folder takes by default."""
    Image.init()
    wanted = {_ALIASES.get(f.upper(), f.upper()) for f in formats}
    globs = [
        f"*{ext}"
        for ext, fmt in sorted(Image.EXTENSION.items())
        if _ALIASES.get(fmt, fmt) in wanted and ext != ".apng"  # APNG is read as PNG anyway
    ]
    return [*globs, "*.apng"] if "PNG" in wanted else globs


def reader_for(name: str) -> str | None:
    """The Pillow format that reads files named like ``name`` (by extension), if any."""
    Image.init()
    suffix = os.path.splitext(name)[1].lower()
    fmt = Image.EXTENSION.get(suffix)
    return _ALIASES.get(fmt, fmt) if fmt else None


def format_for(name: str) -> str:
    """The Pillow format for a user's name: ``jpg``, ``JPEG``, ``.png``, ``tif``, ``webp``..."""
    key = name.strip().lstrip(".").upper()
    fmt = _ALIASES.get(key, key)
    if fmt not in WRITABLE:
        msg = f"unknown image format {name!r}"
        raise ConfigError(msg, hint="choose one of: " + ", ".join(f.lower() for f in WRITABLE))
    return fmt


def extension_for(format: str) -> str:
    """The usual extension for a Pillow format, without a dot: ``JPEG`` -> ``jpg``."""
    fmt = _ALIASES.get(format.upper(), format.upper())
    if fmt in WRITABLE:
        return WRITABLE[fmt][0]
    Image.init()
    extensions = [ext for ext, f in Image.EXTENSION.items() if f == fmt]
    return extensions[0].lstrip(".") if extensions else fmt.lower()


def media_type_for(format: str) -> str:
    """The MIME type for a Pillow format: ``JPEG`` -> ``image/jpeg``."""
    fmt = _ALIASES.get(format.upper(), format.upper())
    if fmt in WRITABLE:
        return WRITABLE[fmt][1]
    Image.init()
    return Image.MIME.get(fmt, "application/octet-stream")


def mark_simulated(data: bytes, *, name: str = "image") -> bytes:
    """``data`` with :data:`SIMULATED_MARK` in its metadata; the pixels are not re-encoded.

    The format is read from the magic bytes; where the mark goes in each is in the module's
    docstring. Bytes that carry the mark already come back unchanged, so marking twice is
    harmless. A BMP (which has no metadata) comes back unchanged, with a warning naming
    ``name``. Raises :class:`OperationError` when the file's structure cannot be walked.
    """
    kind = _container(data)
    marker = _MARKERS.get(kind or "")
    if marker is None:
        logger.warning(
            "{}: a {} file has no metadata to hold the simulated mark; only its sidecar says "
            "it is simulated",
            name,
            kind or "unknown",
        )
        return data
    try:
        return marker(data)
    except Exception as exc:
        msg = f"{name}: cannot write the simulated mark into this {kind} file ({exc})"
        raise OperationError(msg, hint="write the output as png or jpeg") from exc


def has_simulated_mark(data: bytes) -> bool:
    """Whether ``data`` carries :data:`SIMULATED_MARK` where :func:`mark_simulated` puts it."""
    kind = _container(data)
    finder = _FINDERS.get(kind or "")
    if finder is None:
        return False
    try:
        return finder(data)
    except Exception:  # a file whose structure cannot be walked carries no mark we wrote
        return False


def _container(data: bytes) -> str | None:
    """The file format by its magic bytes, for the formats :func:`mark_simulated` knows."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    return None


def _mark_text() -> bytes:
    return SIMULATED_MARK.encode("ascii")


# --- PNG: a tEXt chunk "Comment", the last text chunk before the image data ------------------


def _png_chunks(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """``(offset, type, body)`` of each chunk, up to and including IEND."""
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            msg = f"the {kind!r} chunk runs past the end of the file"
            raise ValueError(msg)
        yield position, kind, data[position + 8 : position + 8 + length]
        if kind == b"IEND":
            return
        position = end
    msg = "no IEND chunk"
    raise ValueError(msg)


def _png_mark_body() -> bytes:
    return _PNG_MARK_KEYWORD + b"\x00" + _mark_text()


def _png_has_mark(data: bytes) -> bool:
    body = _png_mark_body()
    return any(kind == b"tEXt" and text == body for _, kind, text in _png_chunks(data))


def _png_mark(data: bytes) -> bytes:
    body = _png_mark_body()
    insert_at = None
    for offset, kind, text in _png_chunks(data):
        if kind == b"tEXt" and text == body:
            return data
        if insert_at is None and kind in (b"IDAT", b"fcTL", b"IEND"):
            insert_at = offset
    assert insert_at is not None  # _png_chunks raised if there was no IEND
    crc = zlib.crc32(b"tEXt" + body)
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", crc)
    return data[:insert_at] + chunk + data[insert_at:]


# --- JPEG: a COM segment after the APPn segments (Pillow's info["comment"] is the last one) ---


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, marker, payload)`` of each header segment, up to and including SOS."""
    position = 2
    while True:
        if data[position] != 0xFF:
            msg = f"no segment marker at byte {position}"
            raise ValueError(msg)
        while data[position + 1] == 0xFF:  # fill bytes
            position += 1
        marker = data[position + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if length < 2 or position + 2 + length > len(data):
            msg = f"segment 0xFF{marker:02X} at byte {position} has a bad length"
            raise ValueError(msg)
        yield position, marker, data[position + 4 : position + 2 + length]
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            return
        position += 2 + length


def _jpeg_has_mark(data: bytes) -> bool:
    text = _mark_text()
    return any(marker == 0xFE and body == text for _, marker, body in _jpeg_segments(data))


def _jpeg_mark(data: bytes) -> bytes:
    text = _mark_text()
    insert_at = None
    for offset, marker, body in _jpeg_segments(data):
        if marker == 0xFE and body == text:
            return data
        is_app_or_comment = 0xE0 <= marker <= 0xEF or marker == 0xFE
        # An MPO's offsets to its later images count from its APP2 "MPF" segment: nothing
        # may be inserted between the two, so the comment goes before that segment.
        is_mpf = marker == 0xE2 and body.startswith(b"MPF\x00")
        if insert_at is None and (is_mpf or not is_app_or_comment):
            insert_at = offset
    assert insert_at is not None  # the walk ends at SOS, which is not APPn or COM
    segment = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
    return data[:insert_at] + segment + data[insert_at:]


# --- WebP: EXIF ImageDescription in the EXIF chunk (an extended, VP8X, file) ---------------

_VP8X_EXIF, _VP8X_ALPHA = 0x08, 0x10


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(fourcc, payload)`` of each chunk of a WebP file."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = min(len(data), 8 + riff_size)
    chunks, position = [], 12
    while position + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, position)
        if position + 8 + size > end:
            msg = f"the {fourcc!r} chunk runs past the end of the file"
            raise ValueError(msg)
        chunks.append((fourcc, data[position + 8 : position + 8 + size]))
        position += 8 + size + (size & 1)
    if not chunks:
        msg = "no chunks"
        raise ValueError(msg)
    return chunks


def _webp_has_mark(data: bytes) -> bool:
    exif = next((p for fourcc, p in _riff_chunks(data) if fourcc == b"EXIF"), None)
    return exif is not None and _description_has_mark(_exif_description(exif))


def _webp_mark(data: bytes) -> bytes:
    chunks = _riff_chunks(data)
    exif = next((p for fourcc, p in chunks if fourcc == b"EXIF"), None)
    if exif is not None and _description_has_mark(_exif_description(exif)):
        return data
    marked_exif = _exif_with_mark(exif)
    first_fourcc, first = chunks[0]
    if first_fourcc == b"VP8X":
        header = bytes([first[0] | _VP8X_EXIF]) + first[1:]
        rest = chunks[1:]
    else:
        width, height, alpha = _webp_canvas(first_fourcc, first)
        flags = _VP8X_EXIF | (_VP8X_ALPHA if alpha else 0)
        header = (
            bytes([flags, 0, 0, 0])
            + (width - 1).to_bytes(3, "little")
            + (height - 1).to_bytes(3, "little")
        )
        rest = chunks
    rest = [(fourcc, p) for fourcc, p in rest if fourcc != b"EXIF"]
    # The EXIF chunk follows the image data and comes before an XMP chunk.
    xmp_at = next((i for i, (fourcc, _) in enumerate(rest) if fourcc == b"XMP "), len(rest))
    rest.insert(xmp_at, (b"EXIF", marked_exif))
    body = b"WEBP" + b"".join(_riff_chunk(f, p) for f, p in [(b"VP8X", header), *rest])
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _webp_canvas(fourcc: bytes, payload: bytes) -> tuple[int, int, bool]:
    """Width, height and whether there is alpha, from a simple file's VP8 or VP8L header."""
    if fourcc == b"VP8L" and payload[:1] == b"\x2f":
        (bits,) = struct.unpack_from("<I", payload, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if fourcc == b"VP8 " and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", payload, 6)
        return width & 0x3FFF, height & 0x3FFF, False
    msg = f"an unexpected first chunk {fourcc!r}"
    raise ValueError(msg)


def _exif_description(raw: bytes | None) -> bytes:
    """The EXIF ImageDescription of ``raw`` (a TIFF-structured block, with or without the
    ``Exif`` header), or empty."""
    if not raw:
        return b""
    exif = Image.Exif()
    exif.load(raw)
    value = exif.get(_IMAGE_DESCRIPTION)
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return bytes(value) if isinstance(value, bytes) else b""


def _description_has_mark(description: bytes) -> bool:
    return _mark_text() in description


def _marked_description(description: bytes) -> bytes:
    description = description.rstrip(b"\x00")
    return description + _DESCRIPTION_JOINER + _mark_text() if description else _mark_text()


def _exif_with_mark(raw: bytes | None) -> bytes:
    """``raw`` (or an empty EXIF block) with the mark in ImageDescription, without the
    ``Exif`` header, as WebP's EXIF chunk holds it."""
    exif = Image.Exif()
    if raw:
        exif.load(raw)
        for ifd in (0x8769, 0x8825, 0xA005):  # load the sub-IFDs so that they are written back
            if ifd in exif:
                exif.get_ifd(ifd)
    exif[_IMAGE_DESCRIPTION] = _marked_description(_exif_description(raw)).decode(
        "utf-8", "replace"
    )
    return exif.tobytes().removeprefix(b"Exif\x00\x00")


# --- TIFF: ImageDescription (270) in the first IFD, written as a new first IFD at the end ---


def _tiff_first_ifd(data: bytes) -> tuple[str, int, list[bytes], bytes]:
    """Byte order, offset, raw 12-byte entries and next-IFD pointer of the first IFD."""
    order = "<" if data[:2] == b"II" else ">"
    magic, offset = struct.unpack_from(order + "HI", data, 2)
    if magic != 42:
        msg = "BigTIFF is not supported"
        raise ValueError(msg)
    (count,) = struct.unpack_from(order + "H", data, offset)
    end = offset + 2 + 12 * count
    if end + 4 > len(data):
        msg = "the first IFD runs past the end of the file"
        raise ValueError(msg)
    entries = [data[offset + 2 + 12 * i : offset + 14 + 12 * i] for i in range(count)]
    return order, offset, entries, data[end : end + 4]


def _tiff_description(data: bytes, order: str, entries: list[bytes]) -> bytes:
    for entry in entries:
        tag, kind, count = struct.unpack_from(order + "HHI", entry)
        if tag == 270 and kind == 2:
            if count <= 4:
                return entry[8 : 8 + count].rstrip(b"\x00")
            (at,) = struct.unpack_from(order + "I", entry, 8)
            return data[at : at + count].rstrip(b"\x00")
    return b""


def _tiff_has_mark(data: bytes) -> bool:
    order, _, entries, _ = _tiff_first_ifd(data)
    return _description_has_mark(_tiff_description(data, order, entries))


def _tiff_mark(data: bytes) -> bytes:
    order, _, entries, next_ifd = _tiff_first_ifd(data)
    description = _tiff_description(data, order, entries)
    if _description_has_mark(description):
        return data
    # Append the text and a copy of the first IFD with tag 270 set, and point the header at
    # the copy: every other value stays where it was, so no offset changes.
    text = _marked_description(description) + b"\x00"
    out = bytearray(data)
    out += b"\x00" * (len(out) & 1)
    text_at = len(out)
    out += text + b"\x00" * (len(text) & 1)
    entry = struct.pack(order + "HHII", 270, 2, len(text), text_at)
    kept = [e for e in entries if struct.unpack_from(order + "H", e)[0] != 270]
    ordered = sorted([*kept, entry], key=lambda e: struct.unpack_from(order + "H", e)[0])
    ifd_at = len(out)
    out += struct.pack(order + "H", len(ordered)) + b"".join(ordered) + next_ifd
    struct.pack_into(order + "I", out, 4, ifd_at)
    return bytes(out)


# --- GIF: a comment extension before the first image ----------------------------------------


def _gif_comments(data: bytes) -> Iterator[bytes]:
    position = 13 + _color_table_size(data[10])
    while position < len(data):
        block, position = data[position], position + 1
        if block == 0x21:
            label = data[position]
            end = _skip_sub_blocks(data, position + 1)
            if label == 0xFE:
                yield _sub_block_payload(data, position + 1)
            position = end
        elif block == 0x2C:
            flags = data[position + 8]
            position = _skip_sub_blocks(data, position + 10 + _color_table_size(flags))
        else:
            return


def _sub_block_payload(data: bytes, position: int) -> bytes:
    parts = []
    while position < len(data) and data[position]:
        parts.append(data[position + 1 : position + 1 + data[position]])
        position += data[position] + 1
    return b"".join(parts)


def _gif_has_mark(data: bytes) -> bool:
    return any(_mark_text() in comment for comment in _gif_comments(data))


def _gif_mark(data: bytes) -> bytes:
    if _gif_has_mark(data):
        return data
    text = _mark_text()
    blocks = b"".join(
        bytes([len(text[i : i + 255])]) + text[i : i + 255] for i in range(0, len(text), 255)
    )
    insert_at = 13 + _color_table_size(data[10])
    return data[:insert_at] + b"\x21\xfe" + blocks + b"\x00" + data[insert_at:]


_MARKERS = {
    "PNG": _png_mark,
    "JPEG": _jpeg_mark,
    "WEBP": _webp_mark,
    "TIFF": _tiff_mark,
    "GIF": _gif_mark,
}
_FINDERS = {
    "PNG": _png_has_mark,
    "JPEG": _jpeg_has_mark,
    "WEBP": _webp_has_mark,
    "TIFF": _tiff_has_mark,
    "GIF": _gif_has_mark,
}


@contextmanager
def _guarded(name: str, allowed_pixels: int) -> Iterator[None]:
    """Header checks inside: bomb warnings as errors, Pillow's exceptions as InputError.

    ``warnings.catch_warnings`` is not thread-safe, so header checks take a lock; they read
    a few kilobytes and are quick. Decoding the pixels does not need it.
    """
    with _GUARD, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(_bomb_action(allowed_pixels), Image.DecompressionBombWarning)
        try:
            with _pillow_errors(name):
                yield
        finally:
            for warning in caught:
                logger.debug("{}: Pillow warned: {}", name, warning.message)


@contextmanager
def _pillow_errors(name: str) -> Iterator[None]:
    """Pillow's exceptions (and bomb warnings raised as errors) as InputError."""
    try:
        yield
    except HotfolderError:
        raise
    except Image.DecompressionBombError as exc:
        msg = f"{name}: refused as a decompression bomb: {exc}"
        hint = "no setting lets Pillow decode this many pixels; the file cannot be processed"
        raise UnsafeInputError(msg, hint=hint) from exc
    except Image.DecompressionBombWarning as exc:
        msg = f"{name}: refused as a possible decompression bomb: {exc}"
        raise UnsafeInputError(msg, hint=_RAISE_PIXELS) from exc
    except Exception as exc:
        msg = f"{name}: the image data cannot be decoded ({type(exc).__name__}: {exc})"
        hint = "the file is damaged or truncated; export or download it again"
        raise InputError(msg, hint=hint) from exc


def _pillow_hard_limit() -> int | None:
    """The pixel count over which Pillow raises DecompressionBombError whatever we allow."""
    return None if Image.MAX_IMAGE_PIXELS is None else 2 * Image.MAX_IMAGE_PIXELS


def _bomb_action(allowed_pixels: int) -> Literal["error", "ignore"]:
    ceiling = Image.MAX_IMAGE_PIXELS
    return "error" if ceiling is None or allowed_pixels <= ceiling else "ignore"


def _open_checked(data: bytes, limits: ImagingSection, name: str) -> tuple[Image.Image, Probe]:
    if len(data) > limits.max_bytes:
        msg = f"{name}: the file is {len(data):,} bytes, over the limit of {limits.max_bytes:,}"
        raise InputError(msg, hint="raise [imaging] max_bytes if you trust this file")
    try:
        image = Image.open(io.BytesIO(data), formats=limits.formats)
    except UnidentifiedImageError as exc:
        raise _unidentified(data, limits, name) from exc
    _check_pixels(name, image.width, image.height, limits)
    if image.format == "GIF":
        _check_gif_canvas(data, name, limits)
    if limits.corrupt_metadata == "reject":
        _check_exif(image, name)
    found = Probe(
        format=_ALIASES.get(image.format or "", image.format or ""),
        width=image.width,
        height=image.height,
        mode=image.mode,
        frames=getattr(image, "n_frames", 1),
        orientation=_orientation(image),
    )
    if found.frames > 1 and limits.animation == "reject" and found.format != "JPEG":
        msg = f"{name}: has {found.frames} frames (an animation or a multi-page file), refused"
        raise InputError(msg, hint='set [imaging] animation = "first-frame" to use the first frame')
    return image, found


def _check_exif(image: Image.Image, name: str) -> None:
    """Refuse an input whose EXIF block cannot be read whole: its orientation is unknown."""
    raw = image.info.get("exif")
    if not raw:
        return
    body = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    problem = None
    if body[:4] not in (b"II*\x00", b"MM\x00*"):
        problem = "the EXIF block has no valid TIFF header"
    else:
        warnings.filterwarnings("error", message="Corrupt EXIF", category=UserWarning)
        try:
            image.getexif().get_ifd(0x8769)
        except Exception as exc:
            problem = f"the EXIF block is damaged ({str(exc).strip()})"
    if problem:
        msg = f"{name}: {problem}, so its orientation cannot be trusted"
        hint = 're-save the file, or set [imaging] corrupt_metadata = "drop" to use it without'
        raise InputError(msg, hint=hint + " its metadata")


def _check_pixels(name: str, width: int, height: int, limits: ImagingSection) -> None:
    pixels = width * height
    what = f"{name}: {width}x{height} is {pixels:,} pixels"
    if pixels > limits.max_pixels:
        msg = f"{what}, over the limit of {limits.max_pixels:,}"
        raise UnsafeInputError(msg, hint=_RAISE_PIXELS)
    if pixels < limits.min_pixels:
        msg = f"{what}, under the minimum of {limits.min_pixels:,}"
        raise InputError(msg, hint="lower [imaging] min_pixels to accept smaller images")


def _check_gif_canvas(data: bytes, name: str, limits: ImagingSection) -> None:
    """Refuse a GIF whose frames, placed on its screen, would need more than ``max_pixels``."""
    width, height = struct.unpack_from("<HH", data, 6)
    for right, bottom in _gif_frame_extents(data):
        width, height = max(width, right), max(height, bottom)
    if width * height > limits.max_pixels:
        msg = (
            f"{name}: a GIF frame reaches {width}x{height} ({width * height:,} pixels), "
            f"over the limit of {limits.max_pixels:,}; frames larger than the image are a "
            "decompression-bomb trick"
        )
        raise UnsafeInputError(msg, hint=_RAISE_PIXELS)


def _gif_frame_extents(data: bytes) -> Iterator[tuple[int, int]]:
    """The right and bottom edge of every GIF frame, read from the block headers only."""
    position = 13 + _color_table_size(data[10])
    while position < len(data):
        block, position = data[position], position + 1
        if block == 0x21:
            position = _skip_sub_blocks(data, position + 1)
        elif block == 0x2C:
            left, top, width, height, flags = struct.unpack_from("<4HB", data, position)
            yield left + width, top + height
            position = _skip_sub_blocks(data, position + 10 + _color_table_size(flags))
        else:
            return


def _color_table_size(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, position: int) -> int:
    while position < len(data) and data[position]:
        position += data[position] + 1
    return position + 1


def _unidentified(data: bytes, limits: ImagingSection, name: str) -> InputError:
    """Why Pillow could not open ``data``: a format outside the allow-list, or no image."""
    allowed = ", ".join(limits.formats)
    sniffed = _sniff(data[:16])
    if sniffed and sniffed not in limits.formats:
        msg = f"{name}: {sniffed} files are not allowed"
        hint = (
            f"allowed formats are {allowed}; add {sniffed!r} to [imaging] formats "
            "only if you trust such files"
        )
        return InputError(msg, hint=hint)
    what = f"a damaged {sniffed} file" if sniffed else "not an image in a format hotfolder reads"
    msg = f"{name}: {what}"
    return InputError(
        msg, hint=f"check that the file opens in an image viewer (allowed: {allowed})"
    )


def _sniff(prefix: bytes) -> str | None:
    """The format whose magic bytes ``prefix`` starts with; no decoder or parser runs."""
    Image.init()
    for fmt, (_factory, accept) in Image.OPEN.items():
        try:
            verdict = accept(prefix) if accept is not None else False
        except Exception:  # an accept() that chokes on a short prefix is simply not a match
            continue
        if verdict and not isinstance(verdict, str):
            return _ALIASES.get(fmt, fmt)
    return None


def _orientation(image: Image.Image) -> int:
    if "exif" not in image.info and image.format != "TIFF":
        return 1  # getexif() would decode a PNG's pixels looking for a trailing eXIf chunk
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF is ignored, as decode ignores it
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(image: Image.Image, name: str) -> Image.Image:
    """``image`` with its EXIF orientation applied in place (no copy of the pixels); EXIF that
    cannot be read is dropped, not fatal."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as exc:
        logger.warning("{}: EXIF unreadable, orientation ignored and EXIF dropped: {}", name, exc)
        image.info.pop("exif", None)
    return image
