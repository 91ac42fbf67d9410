"""Operations on the encoding and metadata: ``convert`` and ``strip-metadata``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

import hotfolder
from hotfolder import imaging
from hotfolder_plugins.local.params import Colour, ImageFormat

#: Encoder options that carry metadata; ``strip-metadata`` removes them from save options.
METADATA_OPTIONS = frozenset({"exif", "icc_profile", "xmp", "comment", "pnginfo"})


class Convert(hotfolder.Operation):
    """Encode as another format, with that format's options.

    Converting encoded input to its own format with no options passes it on untouched, so a
    JPEG is not re-compressed for nothing. A simulated image carries the simulated mark in
    whichever format it is written.

    ``icc = "keep"`` (the default) keeps the pixels and their embedded colour profile as they
    are; ``icc = "srgb"`` converts pixels tagged with another RGB profile (Display P3, Adobe RGB
    (1998), ProPhoto RGB) to sRGB and tags them so, for viewers and services that ignore
    profiles; the step's record notes it (``colour``).
    """

    name = "convert"
    summary = (
        "Encode as jpeg, png, webp, tiff, gif, bmp, avif or heic (quality, compression, lossless)."
    )

    class Params(hotfolder.Params):
        format: ImageFormat
        #: JPEG, WEBP, AVIF and HEIC quality.
        quality: int | None = Field(default=None, ge=1, le=100)
        #: PNG zlib level: 0 (fastest, largest) to 9 (slowest, smallest).
        compress_level: int | None = Field(default=None, ge=0, le=9)
        #: WEBP only.
        lossless: bool | None = None
        #: What transparent pixels become in a JPEG, which has no alpha.
        background: Colour = "white"
        #: The embedded colour profile: ``keep`` it, or convert the pixels to ``srgb``.
        icc: Literal["keep", "srgb"] = "keep"

        @model_validator(mode="after")
        def _options_fit_format(self) -> Convert.Params:
            allowed = {
                "quality": ("JPEG", "WEBP", "AVIF", "HEIF"),
                "compress_level": ("PNG",),
                "lossless": ("WEBP",),
            }
            for option, formats in allowed.items():
                if getattr(self, option) is not None and self.format not in formats:
                    msg = f"{option} applies to {' and '.join(f.lower() for f in formats)} only"
                    raise ValueError(msg)
            return self

    params: Params

    def run(self, context: hotfolder.StepContext, image: hotfolder.Artifact) -> hotfolder.Artifact:
        params = self.params
        encoder = params.model_dump(
            include={"quality", "compress_level", "lossless"}, exclude_none=True
        )
        if params.icc == "srgb" and image.foreign_profile is not None:
            pixels, profile = imaging.to_srgb(image.image)
            if profile is not None:
                context.record.notes["colour"] = f"converted from {profile} to sRGB"
                image = image.with_image(pixels)
        if params.format == image.format and not encoder and not image.is_decoded:
            return image
        return image.with_format(params.format, {**encoder, "background": params.background})


class StripMetadata(hotfolder.Operation):
    """Drop EXIF, XMP, comments and text chunks; keep the ICC profile unless told not to.

    The pixels are re-encoded (for JPEG at the next encoder's quality), since Pillow cannot
    remove metadata from encoded bytes in place. The simulated mark is not metadata of the
    input but a fact of the artifact (``info["simulated"]``): a simulated image keeps it
    (see :mod:`hotfolder.imaging`).
    """

    name = "strip-metadata"
    summary = "Remove EXIF, XMP, comments and text chunks (the ICC profile is kept by default)."

    class Params(hotfolder.Params):
        keep_icc: bool = True

    params: Params

    def run(self, context: hotfolder.StepContext, image: hotfolder.Artifact) -> hotfolder.Artifact:
        source = image.image
        stripped = source.copy()
        kept = ("icc_profile", "dpi") if self.params.keep_icc else ("dpi",)
        stripped.info = {k: source.info[k] for k in kept if k in source.info}
        options = {k: v for k, v in image.save_options.items() if k not in METADATA_OPTIONS}
        return image.with_image(stripped, save_options=options)
