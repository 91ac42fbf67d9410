"""Safe image decoding and encoding: the one gate every input passes before any work.

:func:`probe` reads the header only: it refuses files over ``max_bytes``, formats outside the
allow-list (their decoders never run: ``Image.open`` gets ``formats=``), sizes outside
``min_pixels``..``max_pixels``, animations under ``animation = "reject"``, and GIFs whose frames
reach beyond the pixel limit (a frame may be larger than the logical screen). :func:`decode`
probes, then loads the first frame, applies the EXIF orientation and normalises the mode (see
:mod:`hotfolder._modes`). Every Pillow failure becomes an :class:`InputError` naming the file,
or an :class:`UnsafeInputError` for decompression bombs; nothing else escapes. What Pillow
logs while it reads a file (``logging``, logger ``PIL``: "More samples per pixel than can be
decoded: 303169682") is said once, with the file's name: in the error raised, else in a debug
line; it never reaches the log bare.

Pillow's own bomb guard (``Image.MAX_IMAGE_PIXELS``) is process-global and is never changed
here; ``max_pixels`` is enforced per call from the header. Pillow's hard error (over twice its
limit, about 179 MP) always applies. Its ``DecompressionBombWarning`` is an error except where
``max_pixels`` deliberately allows more pixels than Pillow's limit and the header has already
been checked against it. ``warnings.catch_warnings`` swaps process-global state and is not
thread-safe before Python 3.14, so the guarded sections are serialised by a lock; decoding is
not the bottleneck (the Venice rate limit and PNG encoding are). Call :func:`probe` and
:func:`decode` from worker threads (as the engine runs sync steps), not on the event loop: they
may wait for another thread's decode.

**The simulated mark** (``SIMULATED_MARK``, :func:`mark_simulated`, :func:`has_simulated_mark`)
lives in :mod:`hotfolder.simulated`, and **colour profiles** (:func:`foreign_profile`,
:func:`to_srgb`) in :mod:`hotfolder.colour`; both are re-exported here.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import pillow_heif
from loguru import logger
from PIL import Image, ImageOps, UnidentifiedImageError, features
from pydantic import Field, field_validator, model_validator

from hotfolder import _modes
from hotfolder._gif import color_table_size, skip_sub_blocks
from hotfolder._nclx import icc_for_nclx
from hotfolder.colour import SRGB_ICC, foreign_profile, profile_name, to_srgb
from hotfolder.errors import (
    ConfigError,
    HotfolderError,
    InputError,
    OperationError,
    UnsafeInputError,
)
from hotfolder.schema import Section
from hotfolder.simulated import SIMULATED_MARK, has_simulated_mark, mark_simulated

__all__ = [
    "SIMULATED_MARK",
    "SRGB_ICC",
    "ImagingSection",
    "Probe",
    "decode",
    "encode",
    "extension_for",
    "foreign_profile",
    "format_for",
    "has_simulated_mark",
    "include_globs",
    "mark_simulated",
    "media_type_for",
    "probe",
    "profile_name",
    "reader_for",
    "resized",
    "to_8bit",
    "to_srgb",
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
_RAISE_PIXELS = "raise [imaging] max_pixels if you trust this file"
_GUARD = threading.Lock()
_WHOLE_IMAGE_TURNS = threading.BoundedSemaphore(os.cpu_count() or 1)
#: The file this thread is reading, and what Pillow logged meanwhile (see :class:`_PillowLog`).
_READING: ContextVar[tuple[str, list[str]] | None] = ContextVar("hotfolder_reading", default=None)


class _PillowLog(logging.Handler):
    """Pillow's log records (logger ``PIL``) made while this module reads a file: kept for the
    error that usually follows, and passed on renamed after the file and lowered to DEBUG, so
    that no line without the file's name reaches the log. Records made elsewhere pass as they
    are. Handlers of ``PIL`` see a record before those of the root logger."""

    def emit(self, record: logging.LogRecord) -> None:
        reading = _READING.get()
        if reading is None:
            return
        name, said = reading
        text = record.getMessage()
        said.append(text)
        record.msg, record.args = "%s: Pillow: %s", (name, text)
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"


if not any(isinstance(h, _PillowLog) for h in logging.getLogger("PIL").handlers):
    logging.getLogger("PIL").addHandler(_PillowLog())


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
    #: The embedded ICC profile, if any (see :func:`foreign_profile`).
    icc_profile: bytes | None = field(default=None, repr=False)

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
    resize_to: tuple[int, int] | None = None,
    reducing_gap: float | None = None,
) -> Image.Image:
    """The first frame of ``data``, upright, in a working mode, with ICC and EXIF in ``info``.

    EXIF orientation is applied and its tag removed from ``info["exif"]``. 16-bit grayscale
    stays ``I;16``; :func:`encode` scales it to 8 bits only for formats that cannot store it.

    ``at_least`` (upright width, height) lets a JPEG be decoded at a reduced DCT scale (1/2,
    1/4 or 1/8) as long as the result stays at least that large: a step that shrinks a camera
    photo to a web size asks for twice its target and decodes a quarter of the pixels or
    fewer. Other formats decode whole.

    ``resize_to`` (upright width, height): the pixels come out at that size, scaled by
    :func:`resized` (``reducing_gap`` goes to it), for a step that shrinks. A JPEG is then
    decoded at least twice that size (as ``at_least``) and scaled while still stored sideways,
    so that the orientation turns the small image, not the decoded one; other formats are
    turned, then scaled.
    """
    with _guarded(name, limits.max_pixels):
        image, found = _open_checked(data, limits, name)
    jpeg = image.format in ("JPEG", "MPO")
    # A HEIF whose colour space is named by its nclx box: that space, as a profile.
    nclx_profile = None if image.info.get("icc_profile") else found.icc_profile
    if resize_to is not None:
        at_least = (2 * resize_to[0], 2 * resize_to[1])
    # The header passed the gate: decoding runs outside the lock, so decodes run in parallel.
    with _pillow_errors(name):
        turned = found.orientation in (5, 6, 7, 8)
        if at_least is not None and jpeg:
            image.draft(image.mode, _stored(at_least, turned=turned))
        image.load()
        if resize_to is not None and jpeg:
            stored = _stored(resize_to, turned=turned)
            working = _modes.to_working_mode(image)
            working = _upright(resized(working, stored, reducing_gap=reducing_gap), name)
        else:
            working = _modes.to_working_mode(_upright(image, name))
            if resize_to is not None:
                working = resized(working, resize_to, reducing_gap=reducing_gap)
    working.info = {k: v for k, v in working.info.items() if k in _METADATA_KEYS}
    if nclx_profile is not None:
        working.info["icc_profile"] = nclx_profile
    return working


def resized(
    image: Image.Image, size: tuple[int, int], *, reducing_gap: float | None = None
) -> Image.Image:
    """``image`` scaled to ``size`` with Lanczos, its ``info`` kept; ``reducing_gap`` as
    Pillow's ``resize`` (a whole-factor ``reduce()`` first when the shrink is that large)."""
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=reducing_gap)


def _stored(size: tuple[int, int], *, turned: bool) -> tuple[int, int]:
    """An upright (width, height) as the pixels are stored: swapped when ``turned``."""
    return (size[1], size[0]) if turned else size


@contextmanager
def whole_image_turn() -> Iterator[None]:
    """One of the turns (one per CPU) that bound whole-image work in this process: a large
    file read whole, an image decoded whole only to be checked. Many jobs starting at once
    then hold no more than that many images at a time; more would not go faster. Not
    reentrant: take nothing inside it that takes a turn (:func:`verify` does)."""
    with _WHOLE_IMAGE_TURNS:
        yield


def verify(data: bytes | Callable[[], bytes], limits: ImagingSection, *, name: str) -> Probe:
    """Check that ``data`` decodes whole, without keeping its pixels; returns the probe.

    It takes a :func:`whole_image_turn`, so many jobs checking large files at once do not
    hold all their pixels together; ``data`` may be a function that reads the bytes, called
    once the turn has come, so that the waiting jobs do not hold them either.
    """
    with _WHOLE_IMAGE_TURNS:
        raw = data() if callable(data) else data
        found = probe(raw, limits, name=name)
        decode(raw, limits, name=name)
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
    """Pillow's exceptions (and bomb warnings raised as errors) as InputError; what Pillow
    logged meanwhile is added to the error's message."""
    said: list[str] = []
    token = _READING.set((name, said))
    try:
        yield
    except HotfolderError as exc:
        if said and exc.message.startswith(name):
            exc.message += f" (Pillow: {'; '.join(said)})"
        raise
    except Image.DecompressionBombError as exc:
        msg = f"{name}: refused as a decompression bomb: {exc}"
        hint = "no setting lets Pillow decode this many pixels; the file cannot be processed"
        raise UnsafeInputError(msg, hint=hint) from exc
    except Image.DecompressionBombWarning as exc:
        msg = f"{name}: refused as a possible decompression bomb: {exc}"
        raise UnsafeInputError(msg, hint=_RAISE_PIXELS) from exc
    except Exception as exc:
        why = "; ".join([*said, f"{type(exc).__name__}: {exc}"])
        msg = f"{name}: the image data cannot be decoded ({why})"
        hint = "the file is damaged or truncated; export or download it again"
        raise InputError(msg, hint=hint) from exc
    finally:
        _READING.reset(token)


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
        icc_profile=_embedded_profile(image),
    )
    if found.frames > 1 and limits.animation == "reject" and found.format != "JPEG":
        msg = f"{name}: has {found.frames} frames (an animation or a multi-page file), refused"
        raise InputError(msg, hint='set [imaging] animation = "first-frame" to use the first frame')
    return image, found


def _embedded_profile(image: Image.Image) -> bytes | None:
    """The ICC profile that says what ``image``'s pixels mean: the embedded one, or for a
    HEIF that names its colour space in an ``nclx`` box instead, that space as a profile
    (:mod:`hotfolder._nclx`; None when it is sRGB)."""
    icc = image.info.get("icc_profile")
    if icc:
        return bytes(icc)
    nclx = image.info.get("nclx_profile")
    return icc_for_nclx(nclx) if isinstance(nclx, dict) else None


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
    position = 13 + color_table_size(data[10])
    while position < len(data):
        block, position = data[position], position + 1
        if block == 0x21:
            position = skip_sub_blocks(data, position + 1)
        elif block == 0x2C:
            left, top, width, height, flags = struct.unpack_from("<4HB", data, position)
            yield left + width, top + height
            position = skip_sub_blocks(data, position + 10 + color_table_size(flags))
        else:
            return


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
