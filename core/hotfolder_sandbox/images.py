"""Turning input images into pixels, with Venice's byte and pixel limits.

Order of checks, as a client sees them: bytes over the limit → ``PAYLOAD_TOO_LARGE`` (400 or
413, configurable); a file Pillow cannot identify → 400 ``CORRUPTED_IMAGE``; too few pixels →
400 ``IMAGE_TOO_SMALL``; too many → ``IMAGE_TOO_LARGE`` (400 or 422, configurable), judged from
the header before decoding, so a decompression bomb costs nothing; a body that fails to decode
→ 400 ``CORRUPTED_IMAGE``. Decoding is CPU work: :func:`load_image` runs it in a worker thread.

Image URLs are fetched with any host allowed, loopback included, so a test can serve its
inputs from ``http://127.0.0.1:PORT``. Loopback hosts never go through a proxy from the
environment (``HTTP_PROXY`` and friends), which could not reach them; other hosts do.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import httpx
from PIL import Image, ImageOps
from starlette.concurrency import run_in_threadpool

from hotfolder_sandbox.checks import ImageRef
from hotfolder_sandbox.errors import ApiError, Issue, image_error, invalid_request

__all__ = ["PixelLimits", "decode", "load_image"]

_FETCH_TIMEOUT_S = 10.0
_CORRUPTED = "The image file is corrupted or unreadable"
#: httpx mounts: ``None`` sends these hosts direct, past any proxy from the environment.
_NO_PROXY_FOR_LOOPBACK: dict[str, httpx.AsyncBaseTransport | None] = {
    "all://127.0.0.1": None,
    "all://localhost": None,
    "all://[::1]": None,
}


@dataclass(frozen=True)
class PixelLimits:
    """What an endpoint accepts: bytes per image and pixel counts."""

    max_bytes: int
    min_pixels: int
    max_pixels: int
    max_pixels_status: int = 400
    max_bytes_status: int = 400


def _too_large_bytes(limits: PixelLimits, field: str) -> ApiError:
    message = f"File exceeds the maximum allowed size of {limits.max_bytes / 1_000_000:g} MB."
    return image_error(limits.max_bytes_status, "PAYLOAD_TOO_LARGE", message, field)


async def _fetch(url: str, field: str, limits: PixelLimits) -> bytes:
    """Download an image URL input, stopping past ``limits.max_bytes``."""
    fetch_failed = invalid_request(
        [Issue.custom(field, f"Could not download the image from {url}")],
        error="Failed to fetch the image URL",
    )
    try:
        async with (
            httpx.AsyncClient(
                timeout=_FETCH_TIMEOUT_S, follow_redirects=True, mounts=_NO_PROXY_FOR_LOOPBACK
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise fetch_failed
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise _too_large_bytes(limits, field)
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise fetch_failed from exc


def _to_display_mode(image: Image.Image) -> Image.Image:
    """RGBA when the image has transparency, else RGB; 16-bit and float scaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    elif image.mode == "F":
        image = image.point(lambda value: value * 255).convert("L")
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def decode(data: bytes, field: str, limits: PixelLimits) -> Image.Image:
    """Decoded pixels in RGB or RGBA, upright per EXIF orientation; raises ``ApiError``."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        message = "Image dimensions exceed the maximum allowed"
        raise image_error(limits.max_pixels_status, "IMAGE_TOO_LARGE", message, field) from exc
    except Exception as exc:  # Pillow raises many types on hostile input; all mean unreadable
        raise image_error(400, "CORRUPTED_IMAGE", _CORRUPTED, field) from exc
    width, height = image.size
    pixels = width * height
    if pixels < limits.min_pixels:
        message = (
            f"Image dimensions are too small: {width}x{height} is {pixels:,} pixels, "
            f"the minimum is {limits.min_pixels:,} (for example 256x256)"
        )
        raise image_error(400, "IMAGE_TOO_SMALL", message, field)
    if pixels > limits.max_pixels:
        message = (
            f"Image dimensions exceed the maximum allowed: {width}x{height} is {pixels:,} "
            f"pixels, the maximum is {limits.max_pixels:,}"
        )
        raise image_error(limits.max_pixels_status, "IMAGE_TOO_LARGE", message, field)
    try:
        image.load()
        return _to_display_mode(ImageOps.exif_transpose(image))
    except Exception as exc:  # truncated or malformed pixel data: same as unreadable
        raise image_error(400, "CORRUPTED_IMAGE", _CORRUPTED, field) from exc


async def load_image(ref: ImageRef, limits: PixelLimits, *, fetch_urls: bool) -> Image.Image:
    """The pixels behind an input, fetching a URL first when the input is one."""
    if ref.data is not None:
        data = ref.data
    elif ref.url is not None and fetch_urls:
        data = await _fetch(ref.url, ref.field, limits)
    else:
        message = "This sandbox does not fetch image URLs (fetch_image_urls is off); send the file"
        raise invalid_request([Issue.custom(ref.field, message)])
    if len(data) > limits.max_bytes:
        raise _too_large_bytes(limits, ref.field)
    return await run_in_threadpool(decode, data, ref.field, limits)
