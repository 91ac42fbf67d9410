"""Embedded ICC profiles: whether an image is already sRGB, and its conversion to sRGB.

An image's pixels mean what its embedded profile says: the same numbers are a duller red in
sRGB than in Display P3 (every recent iPhone), Adobe RGB (1998) or ProPhoto RGB. A program
that ignores the profile, as Venice's models do, shifts the colours. :func:`to_srgb` converts
RGB and RGBA pixels from their embedded RGB profile to sRGB through LittleCMS (Pillow's
``ImageCms``, relative colorimetric: colours sRGB can show stay as they are, the others are
clipped to its gamut) and tags them with an sRGB profile. An image without a profile is taken
as sRGB, as browsers do.

Whether a profile is sRGB is decided by what it does, not by its name: a few test colours are
sent through it to sRGB and come back unchanged (within one level). Gray and CMYK profiles
are never converted here (CMYK is converted to sRGB when decoded, see :mod:`hotfolder._modes`).
"""

from __future__ import annotations

import io
from functools import lru_cache

from loguru import logger
from PIL import Image, ImageCms

__all__ = ["SRGB_ICC", "foreign_profile", "profile_name", "to_srgb"]

_SRGB = ImageCms.createProfile("sRGB")
#: The sRGB profile a converted image is tagged with.
SRGB_ICC: bytes = ImageCms.ImageCmsProfile(_SRGB).tobytes()
_CONVERTIBLE_MODES = ("RGB", "RGBA")
#: Largest difference, in 8-bit levels, between a test colour and its trip through the
#: profile to sRGB for the profile to count as sRGB.
_SAME_WITHIN = 1
_TEST_LEVELS = (0, 36, 73, 109, 146, 182, 219, 255)


def foreign_profile(icc: bytes | None) -> str | None:
    """The name of ``icc`` when it is an RGB profile other than sRGB (its pixels need
    :func:`to_srgb` before a program that assumes sRGB sees them); None for sRGB, no profile,
    a gray or CMYK profile, or one LittleCMS cannot read."""
    if not icc:
        return None
    return _foreign(bytes(icc))


def profile_name(icc: bytes) -> str:
    """The profile's description (``Display P3``), or ``an unnamed ICC profile``."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = ImageCms.getProfileDescription(profile).strip()
    except (OSError, ValueError, ImageCms.PyCMSError):
        return "an unreadable ICC profile"
    return name or "an unnamed ICC profile"


def to_srgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """``image`` converted from its embedded RGB profile to sRGB and tagged with
    :data:`SRGB_ICC`, and the name of the profile it had; ``image`` itself and None when there
    is nothing to convert (already sRGB, no profile, not RGB or RGBA pixels)."""
    icc = image.info.get("icc_profile")
    source_name = foreign_profile(icc)
    if source_name is None or image.mode not in _CONVERTIBLE_MODES or not icc:
        return image, None
    try:
        transform = _transform(bytes(icc), image.mode)
    except (OSError, ValueError, ImageCms.PyCMSError) as exc:
        logger.debug("the ICC profile {} cannot be used ({}); left as it is", source_name, exc)
        return image, None
    converted = transform.apply(image)
    converted.info = {**image.info, "icc_profile": SRGB_ICC}
    return converted, source_name


@lru_cache(maxsize=32)
def _foreign(icc: bytes) -> str | None:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if profile.profile.xcolor_space.strip() != "RGB":
            return None
        transform = _transform(icc, "RGB")
    except (OSError, ValueError, ImageCms.PyCMSError):
        return None
    colours = bytes(
        v for r in _TEST_LEVELS for g in _TEST_LEVELS for b in _TEST_LEVELS for v in (r, g, b)
    )
    probe = Image.frombytes("RGB", (len(colours) // 3, 1), colours)
    back = transform.apply(probe).tobytes()
    drift = max(abs(a - b) for a, b in zip(colours, back, strict=True))
    return None if drift <= _SAME_WITHIN else profile_name(icc)


@lru_cache(maxsize=32)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform:
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    # NOCACHE: LittleCMS's one-colour cache is not safe when threads share a transform.
    return ImageCms.buildTransform(
        source,
        _SRGB,
        mode,
        mode,
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        flags=ImageCms.Flags.NOCACHE,
    )
