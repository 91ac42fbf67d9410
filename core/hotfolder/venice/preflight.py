"""Checks made before any paid request, so that a problem found locally never reaches Venice.

Venice's own limits (from the spec): inputs of 65,536 to 33,177,600 pixels and under 25 MB;
an upscale's output at most 16,777,216 pixels. The chosen model's constraints (from the model
list, or the spec's limits when the list cannot be had): prompt length, aspect ratios,
resolutions, qualities and the number of input images. Each failure is an InputError (the
image) or a ConfigError (the step's parameters) that names the fix.
"""

from __future__ import annotations

import math

from hotfolder import imaging
from hotfolder.artifact import Artifact
from hotfolder.errors import ConfigError, InputError
from hotfolder.venice.catalog import ModelInfo
from hotfolder.venice.wire import ImageInput

#: "File size must be less than 25MB"; the decimal reading, the stricter one.
MAX_UPLOAD_BYTES = 25_000_000
MIN_PIXELS = 65_536
MAX_PIXELS = 33_177_600
MAX_UPSCALE_OUTPUT_PIXELS = 16_777_216
#: What is uploaded as is; anything else is re-encoded first.
UPLOAD_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_FIT_HINT = "set fit = true on the step to scale it into range first"


def check_pixels(
    artifact: Artifact, *, what: str, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS
) -> tuple[int, int]:
    """The upright size of ``artifact``; InputError when outside the range. An encoded input is
    decoded whole through the imaging gate (pixels not kept), so an unreadable file fails
    here, before any request."""
    if artifact.is_decoded:
        width, height = artifact.image.size
    else:
        found = imaging.verify(artifact.data, artifact.limits, name=artifact.name)
        width, height = found.upright_size
    pixels = width * height
    if pixels < min_pixels:
        msg = (
            f"{artifact.name} is {width}x{height} ({pixels:,} pixels); {what} needs at least "
            f"{min_pixels:,} pixels (e.g. 256x256)"
        )
        raise InputError(msg, hint=_FIT_HINT)
    if pixels > max_pixels:
        msg = (
            f"{artifact.name} is {width}x{height} ({pixels:,} pixels); {what} takes at most "
            f"{max_pixels:,} pixels"
        )
        raise InputError(msg, hint=_FIT_HINT)
    return width, height


def upscale_scale(name: str, width: int, height: int, requested: float | None) -> float:
    """The scale to send: ``requested`` (default 2) if the output stays within 16,777,216
    pixels, else the largest whole factor down to 2 that does; InputError if none does."""
    wanted = 2.0 if requested is None else float(requested)
    candidates = [wanted, *(float(s) for s in range(math.ceil(wanted) - 1, 1, -1))]
    for scale in candidates:
        if scale >= 2 and width * height * scale * scale <= MAX_UPSCALE_OUTPUT_PIXELS:
            return scale
    largest = math.isqrt(MAX_UPSCALE_OUTPUT_PIXELS // 4)
    msg = (
        f"{name} is {width}x{height}: even a 2x upscale would pass Venice's output limit of "
        f"{MAX_UPSCALE_OUTPUT_PIXELS:,} pixels (4096x4096)"
    )
    raise InputError(
        msg, hint=f"set fit = true to shrink it first, or give at most about {largest}x{largest}"
    )


def check_prompt(prompt: str, model: ModelInfo, *, op: str) -> None:
    limit = model.constraints.prompt_limit
    if len(prompt) > limit:
        msg = (
            f"{op}: the prompt has {len(prompt)} characters; model {model.id} takes at most {limit}"
        )
        raise ConfigError(msg, hint="shorten the prompt")


def check_options(
    model: ModelInfo,
    *,
    op: str,
    aspect_ratio: str | None = None,
    resolution: str | None = None,
    quality: str | None = None,
    images: int = 1,
) -> None:
    """The step's choices against the model's constraints."""
    c = model.constraints
    problems = []
    ratios = c.aspect_ratios
    if aspect_ratio is not None and ratios is not None and aspect_ratio not in ratios:
        problems.append(f"aspect_ratio {aspect_ratio!r} (allowed: {', '.join(ratios)})")
    if resolution is not None and c.resolutions is not None and resolution not in c.resolutions:
        problems.append(f"resolution {resolution!r} (allowed: {', '.join(c.resolutions)})")
    if quality is not None and c.qualities is not None and quality not in c.qualities:
        allowed = ", ".join(c.qualities) if c.qualities else "none: it has no quality setting"
        problems.append(f"quality {quality!r} (allowed: {allowed})")
    if images > 1 and not c.combine_images:
        problems.append(f"{images} input images (it edits one image at a time)")
    elif images > c.max_input_images:
        problems.append(f"{images} input images (at most {c.max_input_images})")
    if problems:
        msg = f"{op}: model {model.id} does not take " + "; ".join(problems)
        raise ConfigError(msg, hint="change the step's parameters, or see 'hotfolder models'")


def upload_input(artifact: Artifact, *, url_ok: bool) -> ImageInput:
    """What to send for ``artifact``: its source URL when the endpoint takes one and the
    bytes are still the ones at that URL, else its bytes (re-encoded when Venice would not
    take the format, when it is animated, or when its pixels are stored turned and only its
    EXIF orientation makes them upright). Raises InputError for 25 MB and more."""
    url = artifact.info.get("source_url")
    digest = artifact.info.get("source_sha256")
    if url_ok and url and digest and digest == artifact.sha256:
        return ImageInput(url=str(url))
    upload = artifact
    if artifact.format not in UPLOAD_FORMATS or _needs_reencode(artifact):
        alpha = "A" in artifact.image.getbands()
        upload = (
            artifact.with_format("PNG", {"compress_level": 3})
            if alpha
            else artifact.with_format("JPEG", {"quality": 95})
        )
    data = upload.data
    if len(data) >= MAX_UPLOAD_BYTES:
        msg = (
            f"{artifact.name} is {len(data):,} bytes; Venice takes files under {MAX_UPLOAD_BYTES:,}"
        )
        raise InputError(msg, hint=_FIT_HINT)
    return ImageInput(
        data=data,
        media_type=UPLOAD_FORMATS[upload.format],
        filename=f"{artifact.stem or 'image'}.{upload.extension}",
    )


def _needs_reencode(artifact: Artifact) -> bool:
    found = imaging.probe(artifact.data, artifact.limits, name=artifact.name)
    return found.frames > 1 or found.orientation != 1
