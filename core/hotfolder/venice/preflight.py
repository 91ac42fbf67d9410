"""Checks made before any paid request, so that a problem found locally never reaches Venice,
and how each input image is sent: by URL or as bytes.

Venice's own limits (from the spec): inputs of 65,536 to 33,177,600 pixels and under 25 MB;
an upscale's output at most 16,777,216 pixels, so an upscale input takes at most 4,194,304
pixels (2x, the smallest factor). A 4x upscale of an input above 1,048,576 pixels is sent as
asked: Venice lowers the factor itself to stay within its output limit (at the 4x price). The
chosen model's constraints (from the model list, or the spec's limits when the list cannot be
had): prompt length, aspect ratios, resolutions, qualities and the number of input images.
Each failure is an InputError (the image) or a ConfigError (the step's parameters) that names
the fix.

An input that a URL resolver fetched carries ``info["source_url"]`` (the URL it came from,
after redirects) and ``info["source_sha256"]`` (of the bytes it got). :func:`sendable_url`
sends that URL instead of the bytes when the endpoint takes URLs, the bytes are still the
URL's, Venice would take them as they are, and Venice can fetch the URL: https with every
address public (:func:`hotfolder.netsafe.check_url`), or on a host listed in
``[venice] send_urls_from``.

Venice takes every image as sRGB and ignores an embedded profile, so an input tagged with
another one (Display P3 from an iPhone, Adobe RGB (1998), ProPhoto RGB) is converted to sRGB
(:func:`hotfolder.imaging.to_srgb`) and re-encoded for the upload, never sent by URL:
:func:`upload_input` does it (``venice.*`` steps note it in their record as ``colour``).
"""

from __future__ import annotations

from collections.abc import Collection

from hotfolder import imaging
from hotfolder.artifact import Artifact
from hotfolder.errors import ConfigError, HotfolderError, InputError
from hotfolder.venice.catalog import ModelInfo
from hotfolder.venice.requests import EditRequest, MultiEditRequest
from hotfolder.venice.wire import ENDPOINTS, EndpointName, ImageInput

#: "File size must be less than 25MB"; the decimal reading, the stricter one.
MAX_UPLOAD_BYTES = 25_000_000
MIN_PIXELS = 65_536
MAX_PIXELS = 33_177_600
MAX_UPSCALE_OUTPUT_PIXELS = 16_777_216
#: The largest upscale input: its 2x output is 16,777,216 pixels.
MAX_UPSCALE_INPUT_PIXELS = MAX_UPSCALE_OUTPUT_PIXELS // 4
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
        found = imaging.verify(lambda: artifact.data, artifact.limits, name=artifact.name)
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


def check_upscale_input(artifact: Artifact) -> tuple[int, int]:
    """The upright size of an upscale's input; InputError when even a 2x upscale of it would
    pass Venice's output limit (a 4x is reduced by Venice itself, never below 2x)."""
    width, height = check_pixels(artifact, what="/image/upscale")
    if width * height > MAX_UPSCALE_INPUT_PIXELS:
        side = int(MAX_UPSCALE_INPUT_PIXELS**0.5)
        msg = (
            f"{artifact.name} is {width}x{height}: even a 2x upscale would pass Venice's output "
            f"limit of {MAX_UPSCALE_OUTPUT_PIXELS:,} pixels (4096x4096)"
        )
        hint = f"set fit = true to shrink it first, or give at most about {side}x{side}"
        raise InputError(msg, hint=hint)
    return width, height


def check_edit(
    request: EditRequest | MultiEditRequest,
    model: ModelInfo,
    *,
    endpoint: EndpointName,
    images: int,
) -> None:
    """An edit request's prompt and options against ``model``'s constraints."""
    what = ENDPOINTS[endpoint].path
    check_prompt(request.prompt, model, what=what)
    check_options(
        model,
        what=what,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
        quality=request.quality,
        images=images,
    )
    if endpoint == "multi-edit" and not model.constraints.combine_images:
        msg = f"{what} refuses {model.id}, which edits one image at a time"
        hint = "choose a model that combines images (see 'hotfolder models')"
        if isinstance(request, EditRequest):
            hint = "leave quality out (it goes through /image/multi-edit), or " + hint
        raise ConfigError(msg, hint=hint)


def check_prompt(prompt: str, model: ModelInfo, *, what: str) -> None:
    limit = model.constraints.prompt_limit
    if len(prompt) > limit:
        msg = (
            f"{what}: the prompt has {len(prompt)} characters; model {model.id} takes at "
            f"most {limit}"
        )
        raise ConfigError(msg, hint="shorten the prompt")


def check_options(
    model: ModelInfo,
    *,
    what: str,
    aspect_ratio: str | None = None,
    resolution: str | None = None,
    quality: str | None = None,
    images: int = 1,
) -> None:
    """The request's choices against the model's constraints."""
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
        msg = f"{what}: model {model.id} does not take " + "; ".join(problems)
        raise ConfigError(msg, hint="change the step's parameters, or see 'hotfolder models'")


def sendable_url(artifact: Artifact, send_urls_from: Collection[str] = ()) -> str | None:
    """The URL to send instead of ``artifact``'s bytes, or None to send the bytes.

    The URL is the one a resolver recorded (``info["source_url"]``), sent only while the bytes
    are still what it holds (``info["source_sha256"]``), when Venice would take them as they are
    (see :func:`upload_input`), and when Venice can fetch it: https with every address public,
    or on a host in ``send_urls_from`` (``[venice] send_urls_from``: ``"host"`` or
    ``"host:port"``, lower case, IPv6 in brackets). Blocks on DNS: call it in a thread.
    """
    # Here, not at the top: the package imports this module for its limits when every command
    # loads the Venice operations, and httpx takes ~0.06 s to import; the client has it by now.
    import httpx

    from hotfolder.netsafe import check_url

    url = artifact.info.get("source_url")
    digest = artifact.info.get("source_sha256")
    if not isinstance(url, str) or not digest or digest != artifact.sha256:
        return None
    if _needs_reencode(artifact) or len(artifact.data) >= MAX_UPLOAD_BYTES:
        return None
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host.rstrip(".")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if host in send_urls_from or f"{host}:{port}" in send_urls_from:
        return url
    if parsed.scheme != "https":
        return None
    try:
        check_url(parsed)
    except HotfolderError:
        return None  # a private address, or one that does not resolve: Venice cannot fetch it
    return url


def upload_input(artifact: Artifact, *, url: str | None = None) -> ImageInput:
    """What to send for ``artifact``: ``url`` when given (see :func:`sendable_url`), else its
    bytes, re-encoded when Venice would not take the format, when it is animated, when its
    pixels are stored turned and only its EXIF orientation makes them upright, or when its
    colour profile is not sRGB (the pixels are converted to sRGB first). Raises InputError for
    25 MB and more. An input whose bytes are in a file (:attr:`Artifact.file`) and go as they
    are is streamed from it when sent, not read here."""
    if url is not None:
        return ImageInput(url=url)
    upload = artifact
    if _needs_reencode(artifact):
        pixels, _ = imaging.to_srgb(artifact.image)
        alpha = "A" in pixels.getbands()
        srgb = artifact.with_image(pixels) if pixels is not artifact.image else artifact
        upload = (
            srgb.with_format("PNG", {"compress_level": 3})
            if alpha
            else srgb.with_format("JPEG", {"quality": 95})
        )
    file = upload.file
    data = upload.data if file is None else None
    size = file.size if file is not None else len(data or b"")
    if size >= MAX_UPLOAD_BYTES:
        msg = f"{artifact.name} is {size:,} bytes; Venice takes files under {MAX_UPLOAD_BYTES:,}"
        raise InputError(msg, hint=_FIT_HINT)
    return ImageInput(
        data=data,
        file=file,
        media_type=UPLOAD_FORMATS[upload.format],
        filename=f"{artifact.stem or 'image'}.{upload.extension}",
    )


def _needs_reencode(artifact: Artifact) -> bool:
    """Whether Venice would not take the bytes as they are: another format, animated, turned
    upright only by their EXIF orientation, or in a colour space other than sRGB."""
    if artifact.format not in UPLOAD_FORMATS:
        return True
    found = (
        artifact.header  # the bytes sent are the file's, as they came
        if artifact.file is not None
        else imaging.probe(artifact.data, artifact.limits, name=artifact.name)
    )
    if found.frames > 1 or found.orientation != 1:
        return True
    return imaging.foreign_profile(found.icc_profile) is not None
