"""The ``watermark`` operation: a text or an image mark in a corner, the centre, or tiled."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image, ImageColor, ImageDraw, ImageFont
from pydantic import Field, field_validator, model_validator

import hotfolder
from hotfolder import imaging
from hotfolder_plugins.local.params import Colour

Position = Literal["top-left", "top-right", "bottom-left", "bottom-right", "center", "tile"]

#: ``scale`` when not given: image marks are a quarter of the width, text 5 % of the height.
DEFAULT_SCALE = {"image": 0.25, "text": 0.05}


class Watermark(hotfolder.Operation):
    """Composite a mark onto the image with some opacity.

    ``text`` is drawn with Pillow's built-in font (no font file needed) at ``scale`` times the
    image height; an ``image`` mark (any image the gate accepts, alpha respected) is scaled to
    ``scale`` times the image width. ``margin`` is in pixels, from the edges and between tiles.
    """

    name = "watermark"
    summary = "Add a text or image mark in a corner, the centre, or tiled."

    class Params(hotfolder.Params):
        text: str | None = Field(default=None, min_length=1, max_length=500)
        image: hotfolder.ConfigPath | None = None
        position: Position = "bottom-right"
        opacity: float = Field(default=0.5, gt=0, le=1)
        scale: float | None = Field(default=None, gt=0, le=1)
        margin: int = Field(default=16, ge=0, le=10_000)
        color: Colour = "white"

        @field_validator("image")
        @classmethod
        def _exists(cls, value: Path | None) -> Path | None:
            if value is not None and not value.is_file():
                msg = f"watermark image {value} does not exist or is not a file"
                raise ValueError(msg)
            return value

        @model_validator(mode="after")
        def _one_mark(self) -> Watermark.Params:
            if (self.text is None) == (self.image is None):
                msg = "give exactly one of text or image"
                raise ValueError(msg)
            return self

    params: Params

    def run(self, context: hotfolder.StepContext, image: hotfolder.Artifact) -> hotfolder.Artifact:
        base = imaging.to_8bit(image.image)
        canvas = base.convert("RGBA")
        mark = self._mark(canvas.size, image.limits)
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        for origin in placements(self.params.position, canvas.size, mark.size, self.params.margin):
            layer.paste(mark, origin)
        marked = Image.alpha_composite(canvas, layer)
        if base.mode not in ("LA", "RGBA"):
            marked = marked.convert("RGB")
        marked.info = dict(base.info)
        return image.with_image(marked)

    def _mark(self, size: tuple[int, int], limits: imaging.ImagingSection) -> Image.Image:
        params = self.params
        if params.image is not None:
            scale = params.scale or DEFAULT_SCALE["image"]
            source = _load_mark(params.image, params.image.stat().st_mtime_ns, limits)
            width = max(1, round(size[0] * scale))
            height = max(1, round(source.height * width / source.width))
            mark = source.resize((width, height), Image.Resampling.LANCZOS)
        else:
            scale = params.scale or DEFAULT_SCALE["text"]
            mark = _text_mark(params.text or "", max(8, round(size[1] * scale)), params.color)
        mark.putalpha(mark.getchannel("A").point(lambda a: round(a * params.opacity)))
        return mark


def placements(
    position: Position, canvas: tuple[int, int], mark: tuple[int, int], margin: int
) -> list[tuple[int, int]]:
    """Top-left corners at which the mark is pasted (negative ones are clipped by Pillow)."""
    (width, height), (mark_w, mark_h) = canvas, mark
    if position == "tile":
        return [
            (x, y)
            for y in range(margin, height, mark_h + margin)
            for x in range(margin, width, mark_w + margin)
        ]
    xs = {"left": margin, "center": (width - mark_w) // 2, "right": width - mark_w - margin}
    ys = {"top": margin, "center": (height - mark_h) // 2, "bottom": height - mark_h - margin}
    vertical, _, horizontal = position.partition("-")
    return [(xs[horizontal or "center"], ys[vertical])]


def _text_mark(text: str, font_size: int, color: str) -> Image.Image:
    """``text`` in ``color`` on transparency, cropped to the ink."""
    font = ImageFont.load_default(size=font_size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    coverage = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(coverage).text((-left, -top), text, fill=255, font=font)
    mark = Image.new("RGBA", coverage.size, (*ImageColor.getrgb(color)[:3], 255))
    mark.putalpha(coverage)
    return mark


@lru_cache(maxsize=8)
def _load_mark(path: Path, mtime_ns: int, limits: imaging.ImagingSection) -> Image.Image:
    """The mark image, through the same gate as inputs, as RGBA (cached until it changes)."""
    decoded = imaging.decode(path.read_bytes(), limits, name=str(path))
    return imaging.to_8bit(decoded).convert("RGBA")
