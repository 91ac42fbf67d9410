"""Simulated outputs: deterministic, visibly plausible, and marked as simulated.

* edit / multi-edit: the base image framed to the aspect ratio and resolution tier, the extra
  images blended in, a colour grade derived from a hash of the prompt, and the prompt in a
  caption band;
* upscale: a Lanczos resize by the effective scale, sharpened a little by ``creativity``;
* background removal: the background colour estimated from the border, a soft mask by colour
  distance, kept only where it connects to the border (flood fill), with a feathered edge.

Every output carries ``hotfolder-sandbox: simulated`` in its metadata (PNG text chunk, or
EXIF ImageDescription for JPEG and WebP), for whoever opens the file; clients read the
response's ``X-Simulated: true`` header instead. Same input and parameters give the same bytes.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
from collections.abc import Sequence
from typing import Literal

from PIL import (
    ExifTags,
    Image,
    ImageChops,
    ImageDraw,
    ImageEnhance,
    ImageFilter,
    ImageFont,
    ImageOps,
    ImageStat,
)
from PIL.PngImagePlugin import PngInfo

__all__ = [
    "SIMULATED_MARK",
    "edit",
    "effective_scale",
    "encode",
    "remove_background",
    "upscale",
]

SIMULATED_MARK = "hotfolder-sandbox: simulated"
OutputFormat = Literal["png", "jpeg", "webp"]
LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}
_MASK_SIDE = 192  # the flood fill runs at this size: it is pure Python
_NEAR, _FAR = 24, 72  # colour distance ramp from background (alpha 0) to subject (255)


def encode(image: Image.Image, output_format: OutputFormat) -> bytes:
    """Encode with the simulated mark in the metadata."""
    buffer = io.BytesIO()
    if output_format == "png":
        info = PngInfo()
        info.add_text("hotfolder-sandbox", "simulated")
        info.add_text("Description", SIMULATED_MARK)
        image.save(buffer, "PNG", pnginfo=info, compress_level=3)
    else:
        exif = Image.Exif()
        exif[ExifTags.Base.ImageDescription] = SIMULATED_MARK
        exif[ExifTags.Base.Software] = "hotfolder-sandbox"
        flat = image.convert("RGB") if output_format == "jpeg" else image
        flat.save(buffer, output_format.upper(), quality=90, exif=exif)
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image.convert("RGB")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image).convert("RGB")


def _output_size(width: int, height: int, aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """The tier's long side, at the requested ratio (``auto``: the input's)."""
    long_side = LONG_SIDE.get(resolution, LONG_SIDE["1K"])
    if aspect_ratio == "auto":
        ratio = width / height
    else:
        across, down = (int(part) for part in aspect_ratio.split(":"))
        ratio = across / down
    if ratio >= 1:
        return long_side, max(1, round(long_side / ratio))
    return max(1, round(long_side * ratio)), long_side


def _grade(image: Image.Image, prompt: str) -> Image.Image:
    """A tint whose hue, saturation and strength come from the prompt's hash."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    red, green, blue = colorsys.hsv_to_rgb(digest[0] / 255, 0.45 + digest[1] / 255 * 0.4, 1.0)
    tint = Image.new("RGB", image.size, (round(red * 255), round(green * 255), round(blue * 255)))
    graded = Image.blend(image, tint, 0.16 + digest[2] / 255 * 0.14)
    return ImageEnhance.Contrast(graded).enhance(1.12)


def _caption(image: Image.Image, prompt: str) -> Image.Image:
    """The prompt, one line, in a dark band along the bottom."""
    width, height = image.size
    band = max(18, height // 14)
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 165))
    font = ImageFont.load_default(size=max(10, int(band * 0.55)))
    text = "SIMULATED · " + " ".join(prompt.split())
    margin = band // 3
    if draw.textlength(text, font=font) > width - 2 * margin:
        while text and draw.textlength(text + "…", font=font) > width - 2 * margin:
            text = text[:-1]
        text += "…"
    draw.text((margin, height - band / 2), text, font=font, fill=(255, 255, 255, 235), anchor="lm")
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def edit(
    images: Sequence[Image.Image],
    *,
    prompt: str,
    aspect_ratio: str,
    resolution: str,
    output_format: OutputFormat,
    keep_input_size: bool = False,
) -> bytes:
    """An edit (one image) or multi-edit (the first is the base, the rest are blended in)."""
    base = _flatten(images[0])
    if not keep_input_size:
        size = _output_size(base.width, base.height, aspect_ratio, resolution)
        base = ImageOps.fit(base, size, Image.Resampling.LANCZOS)
    for index, layer in enumerate(images[1:], start=1):
        fitted = ImageOps.fit(_flatten(layer), base.size, Image.Resampling.LANCZOS)
        base = Image.blend(base, fitted, 0.4 / index)
    return encode(_caption(_grade(base, prompt), prompt), output_format)


def effective_scale(width: int, height: int, scale: float, max_pixels: int) -> float:
    """``scale``, shrunk so that the output stays within ``max_pixels``."""
    if width * height * scale * scale <= max_pixels:
        return scale
    return math.sqrt(max_pixels / (width * height))


def upscale(image: Image.Image, *, scale: float, creativity: float, max_pixels: int) -> bytes:
    """A Lanczos upscale to the effective scale; PNG, alpha kept."""
    factor = effective_scale(image.width, image.height, scale, max_pixels)
    size = (max(1, math.floor(image.width * factor)), max(1, math.floor(image.height * factor)))
    result = image.resize(size, Image.Resampling.LANCZOS)
    percent = round(creativity * 5000)  # 0.01 -> 50 %: a touch of "added detail"
    if percent:
        sharpen = ImageFilter.UnsharpMask(radius=2, percent=percent, threshold=3)
        if result.mode == "RGBA":
            alpha = result.getchannel("A")
            result = result.convert("RGB").filter(sharpen)
            result.putalpha(alpha)
        else:
            result = result.filter(sharpen)
    return encode(result, "png")


def _border_mask(width: int, height: int) -> Image.Image:
    edge = max(1, min(width, height) // 50)
    mask = Image.new("L", (width, height), 255)
    ImageDraw.Draw(mask).rectangle((edge, edge, width - 1 - edge, height - 1 - edge), fill=0)
    return mask


def _connected_to_border(background_like: Image.Image) -> Image.Image:
    """255 where a pixel is subject, 0 where it is background reachable from the border."""
    width, height = background_like.size
    marked = background_like.copy()
    border = [(x, y) for x in range(width) for y in (0, height - 1)]
    border += [(x, y) for y in range(height) for x in (0, width - 1)]
    for seed in border:
        if marked.getpixel(seed) == 0:
            ImageDraw.floodfill(marked, seed, 128)
    return marked.point([0 if value == 128 else 255 for value in range(256)])


def remove_background(image: Image.Image) -> bytes:
    """An RGBA PNG whose alpha is 0 on the estimated background and 255 on the subject."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    stat = ImageStat.Stat(rgb, _border_mask(width, height))
    background = Image.new("RGB", rgb.size, tuple(int(v) for v in stat.median))
    red, green, blue = ImageChops.difference(rgb, background).split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    ramp = [
        0 if d <= _NEAR else 255 if d >= _FAR else (d - _NEAR) * 255 // (_FAR - _NEAR)
        for d in range(256)
    ]
    soft = distance.point(ramp)
    shrink = _MASK_SIDE / max(width, height)
    small_size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    background_like = soft.resize(small_size, Image.Resampling.BILINEAR).point(
        [0 if value < 128 else 255 for value in range(256)]
    )
    subject = _connected_to_border(background_like).resize(rgb.size, Image.Resampling.BILINEAR)
    subject = subject.filter(ImageFilter.GaussianBlur(max(1.0, max(width, height) / 400)))
    alpha = ImageChops.lighter(soft, subject)
    if image.mode == "RGBA":
        alpha = ImageChops.multiply(alpha, image.getchannel("A"))
    result = rgb.copy()
    result.putalpha(alpha)
    return encode(result, "png")
