"""Pixel modes: what decoded images are normalised to, and what each encoder is handed.

Working modes are ``L``, ``LA``, ``RGB``, ``RGBA`` and ``I;16`` (16-bit grayscale, carried at
full precision until an encoder that cannot store it; :func:`to_8bit` then scales it linearly by
its significant bits, never clips). Colour spaces that need a colour transform (``LAB``,
``CMYK``) become sRGB ``RGB`` through LittleCMS and lose the source's ICC profile, which no
longer describes the pixels.
"""

from __future__ import annotations

import io
from typing import cast

from loguru import logger
from PIL import Image, ImageCms, ImageColor

WORKING_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I;16"})

#: Modes each writer stores as they are; anything else is converted by :func:`for_format`.
NATIVE_MODES: dict[str, frozenset[str]] = {
    "JPEG": frozenset({"L", "RGB", "CMYK"}),
    "PNG": frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
    "TIFF": frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16"}),
    "GIF": frozenset({"1", "L", "P", "RGB", "RGBA"}),
    "BMP": frozenset({"1", "L", "P", "RGB", "RGBA"}),
}

_ICC_SPACES = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}
_UINT16_MAX = 65_535


def to_working_mode(image: Image.Image) -> Image.Image:
    """``image`` in a working mode, keeping its alpha (a palette or tRNS transparency becomes
    an alpha band), its precision and its ``info``."""
    if image.mode in WORKING_MODES and "transparency" not in image.info:
        return image
    if image.mode.startswith("I;16"):
        return _with_info(image.convert("I;16"), image)
    if image.mode == "I":
        return _with_info(_int32_to_working(image), image)
    if image.mode == "F":
        return _with_info(_stretch_to_l(image), image)
    if image.mode in ("LAB", "CMYK"):
        converted = _to_srgb(image)
        return _with_info(converted, image, drop=("icc_profile",))
    return _with_info(image.convert(_rgb_like(image)), image)


def to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale image as ``L``, scaled linearly and rounded, black kept at 0.

    The scale comes from the significant bits: the fewest (at least 8) that hold the largest
    value. Full 16-bit data is divided by 257 (65535 becomes 255); 10-, 12- or 14-bit data in a
    16-bit container (scientific and raw-sensor files) fills the 8-bit range instead of
    coming out nearly black.
    """
    top = (1 << max(8, int(_extrema(image)[1]).bit_length())) - 1
    scaled = image.convert("I").point(lambda v: v * (255 / top) + 0.5)
    return _with_info(scaled.convert("L"), image)


def for_format(image: Image.Image, fmt: str, background: str = "white") -> Image.Image:
    """``image`` in a mode the ``fmt`` writer stores; alpha is flattened onto ``background``
    for JPEG (and only there), 16-bit is scaled to 8-bit where it cannot be kept."""
    native = NATIVE_MODES.get(fmt)
    if native is None or image.mode in native:
        return image
    if image.mode.startswith("I;16"):
        return for_format(to_8bit(image), fmt, background)
    alpha = has_alpha(image)
    if fmt == "JPEG" and alpha:
        return _with_info(flatten(image, background), image)
    return _with_info(image.convert("RGBA" if alpha and "RGBA" in native else "RGB"), image)


def flatten(image: Image.Image, background: str) -> Image.Image:
    """``image`` composited over an opaque ``background`` colour, as ``RGB``."""
    base = Image.new("RGBA", image.size, (*ImageColor.getrgb(background)[:3], 255))
    return Image.alpha_composite(base, image.convert("RGBA")).convert("RGB")


def icc_fits(icc: bytes, mode: str) -> bool:
    """Whether the ICC profile ``icc`` describes pixels of ``mode`` (gray, RGB or CMYK)."""
    try:
        space = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip()
    except (OSError, ValueError, ImageCms.PyCMSError):
        return False
    return space == _ICC_SPACES.get(Image.getmodebase(mode))


def has_alpha(image: Image.Image) -> bool:
    """Whether ``image`` has an alpha band or transparency data (a palette or tRNS entry)."""
    return "A" in image.getbands() or "a" in image.mode or image.has_transparency_data


def _rgb_like(image: Image.Image) -> str:
    if image.mode == "1":
        return "L"
    alpha = has_alpha(image)
    if Image.getmodebase(image.mode) == "L":
        return "LA" if alpha else "L"
    return "RGBA" if alpha else "RGB"


def _int32_to_working(image: Image.Image) -> Image.Image:
    low, high = _extrema(image)
    if low >= 0 and high <= _UINT16_MAX:
        return image.convert("I;16")
    return _stretch_to_l(image)


def _stretch_to_l(image: Image.Image) -> Image.Image:
    """``I`` or ``F`` pixels stretched linearly from their own range onto 0..255."""
    low, high = _extrema(image)
    scale = 255 / (high - low) if high > low else 0.0
    return image.point(lambda v: v * scale + (0.5 - low * scale)).convert("L")


def _extrema(image: Image.Image) -> tuple[float, float]:
    """The lowest and highest value of a single-band image."""
    return cast(tuple[float, float], image.getextrema())


def _to_srgb(image: Image.Image) -> Image.Image:
    """LAB or CMYK pixels as sRGB through LittleCMS, using an embedded CMYK profile if any."""
    srgb = ImageCms.createProfile("sRGB")
    if image.mode == "LAB":
        lab = ImageCms.createProfile("LAB")
        return ImageCms.buildTransform(lab, srgb, "LAB", "RGB").apply(image)
    icc = image.info.get("icc_profile")
    if icc and icc_fits(icc, "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.buildTransform(source, srgb, "CMYK", "RGB").apply(image)
        except ImageCms.PyCMSError as exc:
            logger.debug("embedded CMYK profile unusable ({}); converting without it", exc)
    return image.convert("RGB")


def _with_info(
    converted: Image.Image, source: Image.Image, *, drop: tuple[str, ...] = ()
) -> Image.Image:
    """``converted`` carrying ``source``'s metadata (conversions do not always keep it)."""
    converted.info = {k: v for k, v in source.info.items() if k not in drop and k != "transparency"}
    return converted
