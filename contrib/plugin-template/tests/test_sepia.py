"""The template's own test: the operation really tones the image."""

from __future__ import annotations

from PIL import Image

import hotfolder
from hotfolder_template import Sepia


def test_sepia_makes_a_gray_image_warm():
    gray = Image.new("RGB", (64, 32), (128, 128, 128))
    artifact = hotfolder.Artifact.from_image(gray, name="gray.png", format="PNG")
    out = Sepia(Sepia.Params(strength=1.0)).run(None, artifact)
    r, g, b = out.image.getpixel((10, 10))
    assert out.image.size == (64, 32)
    assert r > g > b


def test_strength_zero_keeps_the_pixels():
    img = Image.new("RGB", (8, 8), (10, 200, 30))
    artifact = hotfolder.Artifact.from_image(img, name="x.png", format="PNG")
    out = Sepia(Sepia.Params(strength=0.0)).run(None, artifact)
    assert out.image.getpixel((0, 0)) == (10, 200, 30)
