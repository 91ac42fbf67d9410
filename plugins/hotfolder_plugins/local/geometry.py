"""Operations that change the pixel grid: ``auto-orient``, ``resize`` and ``fit-to-limits``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from PIL import Image, ImageOps
from pydantic import Field, model_validator

import hotfolder
from hotfolder import imaging
from hotfolder_plugins.local.params import ImageFormat

LANCZOS = Image.Resampling.LANCZOS

Dimension = Annotated[int, Field(ge=1, le=65_535)]
Gravity = Literal[
    "center",
    "top",
    "bottom",
    "left",
    "right",
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
]
_CENTERING: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "top": (0.5, 0.0),
    "bottom": (0.5, 1.0),
    "left": (0.0, 0.5),
    "right": (1.0, 0.5),
    "top-left": (0.0, 0.0),
    "top-right": (1.0, 0.0),
    "bottom-left": (0.0, 1.0),
    "bottom-right": (1.0, 1.0),
}


class AutoOrient(hotfolder.Operation):
    """Turn the pixels upright from the EXIF orientation.

    Decoding already does this (every decoded artifact is upright), so on decoded input this is
    a no-op. It matters for encoded input that would otherwise travel on as the original
    bytes: when their orientation is not 1 they are marked to be encoded again from the
    upright pixels (:meth:`~hotfolder.Artifact.upright`), but not decoded here, so that a
    ``resize`` that follows still decodes a JPEG at a reduced size; else left untouched. The
    orientation is read from the header checked when the bytes came in
    (:attr:`~hotfolder.Artifact.header`), so the file is not read again here.
    """

    name = "auto-orient"
    summary = "Apply the EXIF orientation to the pixels (decoding already does; no-op then)."

    def run(self, context: hotfolder.StepContext, image: hotfolder.Artifact) -> hotfolder.Artifact:
        if image.is_decoded or image.header.orientation == 1:
            return image
        return image.upright()


#: Large shrinks first ``reduce()`` by a whole factor while keeping at least this many times
#: the target, then Lanczos: several times faster, and Pillow documents the result as
#: indistinguishable from a full Lanczos from 3 on.
REDUCING_GAP = 3.0


class Resize(hotfolder.Operation):
    """Scale with Lanczos: ``fit`` inside the box, ``fill`` it and crop, or ``exact`` (stretch)."""

    name = "resize"
    summary = "Scale to a width and/or height: fit inside, fill and crop, or exactly (Lanczos)."

    class Params(hotfolder.Params):
        width: Dimension | None = None
        height: Dimension | None = None
        mode: Literal["fit", "fill", "exact"] = "fit"
        #: Whether ``fit`` may enlarge an image smaller than the box.
        upscale: bool = True
        #: Which part ``fill`` keeps when it crops.
        gravity: Gravity = "center"

        @model_validator(mode="after")
        def _box(self) -> Resize.Params:
            if self.width is None and self.height is None:
                msg = "give width, height or both"
                raise ValueError(msg)
            if self.mode != "fit" and (self.width is None or self.height is None):
                msg = f'mode "{self.mode}" needs both width and height'
                raise ValueError(msg)
            return self

    params: Params

    def run(self, context: hotfolder.StepContext, image: hotfolder.Artifact) -> hotfolder.Artifact:
        params = self.params
        full = image.upright_size
        size = self.target_size(full)
        if size == full:
            return image
        _check_output(size, image)
        # Shrinking: a JPEG is decoded at the smallest DCT scale still twice the target.
        if params.mode != "fill":  # fit, exact: scaled before an EXIF turn, which then moves less
            return image.with_image(image.resized(size, reducing_gap=REDUCING_GAP))
        source = (
            image.image_at_least(size) if size[0] < full[0] and size[1] < full[1] else image.image
        )
        resized = ImageOps.fit(source, size, LANCZOS, centering=_CENTERING[params.gravity])
        return image.with_image(resized)

    def target_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size an image of ``size`` comes out at."""
        params = self.params
        if params.mode != "fit" and params.width and params.height:  # both: see the validator
            return params.width, params.height
        width, height = size
        scale = min(
            s
            for s in (
                params.width / width if params.width else None,
                params.height / height if params.height else None,
            )
            if s is not None
        )
        if scale > 1 and not params.upscale:
            return size
        return max(1, round(width * scale)), max(1, round(height * scale))


#: What fit-to-limits writes: the formats Venice takes.
FIT_FORMATS = ("PNG", "JPEG", "WEBP")


class FitToLimits(hotfolder.Operation):
    """Bring an image inside an API's limits: pixel count, then encoded size.

    Tiny images are enlarged and huge ones shrunk (Lanczos, aspect kept) into
    ``min_pixels``..``max_pixels``; the result is encoded and, while it is not under
    ``max_bytes``, re-encoded smaller: lower quality for JPEG/WEBP down to ``min_quality``,
    maximum compression for PNG, then fewer pixels. The bytes measured are the bytes passed on
    (with the simulated mark, for a simulated image). Encoded input that already fits (and is
    upright) is passed on untouched.
    """

    name = "fit-to-limits"
    summary = "Scale into a pixel range and re-encode under a byte limit (Venice's by default)."

    class Params(hotfolder.Params):
        min_pixels: int = Field(default=65_536, ge=1)
        max_pixels: int = Field(default=33_177_600, ge=1)
        #: The encoded size must be strictly under this many bytes.
        max_bytes: int = Field(default=25_000_000, ge=1024)
        #: The format to send as; by default the input's if PNG, JPEG or WEBP, else PNG.
        format: ImageFormat | None = None
        #: The lowest JPEG/WEBP quality tried before pixels are given up.
        min_quality: int = Field(default=40, ge=1, le=100)

        @model_validator(mode="after")
        def _range(self) -> FitToLimits.Params:
            if self.min_pixels > self.max_pixels:
                msg = f"min_pixels ({self.min_pixels:,}) is above max_pixels ({self.max_pixels:,})"
                raise ValueError(msg)
            if self.format is not None and self.format not in FIT_FORMATS:
                msg = (
                    f"format {self.format!r}: fit-to-limits makes what Venice takes, so "
                    f"{', '.join(f.lower() for f in FIT_FORMATS)}"
                )
                raise ValueError(msg)
            return self

    params: Params

    #: How many times pixels are given up before the step fails.
    max_shrinks = 8

    def run(self, context: hotfolder.StepContext, image: hotfolder.Artifact) -> hotfolder.Artifact:
        params = self.params
        fmt = params.format or (image.format if image.format in FIT_FORMATS else "PNG")
        if self._passes_as_is(image, fmt):
            return image
        pixels = image.image
        size = pixel_target(pixels.size, params.min_pixels, params.max_pixels)
        if size != pixels.size:
            pixels = pixels.resize(size, LANCZOS)
        options = dict(image.save_options) if fmt == image.format else {}
        data = self._fitting_bytes(pixels, fmt, options, image.name, simulated=image.simulated)
        return image.with_data(data, format=fmt)

    def _passes_as_is(self, image: hotfolder.Artifact, fmt: str) -> bool:
        if image.is_decoded or fmt != image.format:
            return False
        found = imaging.probe(image.data, image.limits, name=image.name)
        params = self.params
        return (
            found.orientation == 1
            and params.min_pixels <= found.pixels <= params.max_pixels
            and len(image.data) < params.max_bytes
        )

    def _fitting_bytes(
        self,
        pixels: Image.Image,
        fmt: str,
        options: dict[str, Any],
        name: str,
        *,
        simulated: bool = False,
    ) -> bytes:
        params = self.params

        def encoded(pixels: Image.Image, attempt: dict[str, Any]) -> bytes:
            data = imaging.encode(pixels, fmt, attempt)
            # the artifact adds the mark to its bytes: measure them with it
            return imaging.mark_simulated(data, name=name) if simulated else data

        attempts = list(smaller_encodings(fmt, options, params.min_quality))
        for attempt in attempts:
            data = encoded(pixels, attempt)
            if len(data) < params.max_bytes:
                return data
        for _ in range(self.max_shrinks):
            pixels = self._shrunk(pixels, len(data), fmt, name)
            data = encoded(pixels, attempts[-1])
            if len(data) < params.max_bytes:
                return data
        msg = f"{name}: still {len(data):,} bytes as {fmt} after shrinking {self.max_shrinks} times"
        raise hotfolder.OperationError(msg, hint="raise max_bytes or choose jpeg or webp")

    def _shrunk(self, pixels: Image.Image, size_bytes: int, fmt: str, name: str) -> Image.Image:
        params = self.params
        factor = min(0.9, math.sqrt(params.max_bytes / size_bytes) * 0.95)
        size = max(1, math.floor(pixels.width * factor)), max(1, math.floor(pixels.height * factor))
        if size[0] * size[1] < params.min_pixels:
            msg = (
                f"{name}: cannot get under {params.max_bytes:,} bytes as {fmt} "
                f"without going under {params.min_pixels:,} pixels"
            )
            raise hotfolder.OperationError(msg, hint="raise max_bytes or choose jpeg or webp")
        return pixels.resize(size, LANCZOS)


def pixel_target(size: tuple[int, int], min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """``size`` scaled, aspect kept, to hold at least ``min_pixels`` and at most ``max_pixels``."""
    width, height = size
    pixels = width * height
    if pixels < min_pixels:
        scale = math.sqrt(min_pixels / pixels)
        return math.ceil(width * scale), math.ceil(height * scale)
    if pixels > max_pixels:
        scale = math.sqrt(max_pixels / pixels)
        return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    return size


def smaller_encodings(
    fmt: str, options: dict[str, Any], min_quality: int
) -> Iterator[dict[str, Any]]:
    """``options``, then encoder options that give smaller files, smallest last."""
    yield options
    if fmt in ("JPEG", "WEBP") and not options.get("lossless"):
        quality = options.get("quality", imaging.ENCODER_DEFAULTS[fmt]["quality"])
        for step in range(quality - 10, min_quality, -10):
            yield {**options, "quality": step}
        if quality > min_quality:
            yield {**options, "quality": min_quality}
    elif (
        fmt == "PNG"
        and options.get("compress_level", imaging.ENCODER_DEFAULTS[fmt]["compress_level"]) < 9
    ):
        yield {**options, "compress_level": 9}


def _check_output(size: tuple[int, int], image: hotfolder.Artifact) -> None:
    pixels = size[0] * size[1]
    if pixels > image.limits.max_pixels:
        msg = (
            f"{image.name}: resizing to {size[0]}x{size[1]} makes {pixels:,} pixels, over "
            f"[imaging] max_pixels ({image.limits.max_pixels:,})"
        )
        raise hotfolder.OperationError(
            msg, hint="choose a smaller size or raise [imaging] max_pixels"
        )
