"""Safe image decoding and encoding: the one gate every input passes before any work.

(Skeleton by the lead; the imaging engineer owns this module and fills it in.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field


class ImageLimits(BaseModel):
    """``[imaging]``: what the gate lets through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=100_000_000, ge=1)
    min_pixels: int = Field(default=1, ge=1)
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP", "MPO")
    animation: Literal["first-frame", "reject"] = "first-frame"


@dataclass(frozen=True)
class Probe:
    """What the header says, before any pixel is decoded."""

    format: str
    width: int
    height: int
    mode: str
    frames: int


def probe(data: bytes, limits: ImageLimits, *, name: str) -> Probe:
    raise NotImplementedError


def decode(data: bytes, limits: ImageLimits, *, name: str) -> Image.Image:
    raise NotImplementedError


def encode(image: Image.Image, format: str, options: dict[str, Any]) -> bytes:
    raise NotImplementedError


def extension_for(format: str) -> str:
    raise NotImplementedError


def media_type_for(format: str) -> str:
    raise NotImplementedError
