"""Draws ``examples/try-it.jpg``, the image the README's "try it" drops into ``./inbox``: a
small still life (a mug on a table) made here, so that it ships with the repository under its
license. Run again with: .venv/bin/python examples/make_try_it.py"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = (640, 480)


def draw() -> Image.Image:
    image = Image.new("RGB", SIZE)
    pixels = ImageDraw.Draw(image)
    for y in range(SIZE[1]):  # a wall that darkens towards the table
        shade = 225 - y * 60 // SIZE[1]
        pixels.line([(0, y), (SIZE[0], y)], fill=(shade, shade - 8, shade - 20))
    pixels.rectangle([0, 340, SIZE[0], SIZE[1]], fill=(120, 82, 52))  # the table
    pixels.ellipse([210, 395, 450, 430], fill=(90, 60, 38))  # the mug's shadow
    pixels.rectangle([240, 200, 400, 410], fill=(32, 96, 160))  # the mug
    pixels.ellipse([240, 185, 400, 215], fill=(52, 120, 190))
    pixels.ellipse([252, 190, 388, 210], fill=(60, 36, 22))  # coffee
    pixels.arc([370, 240, 450, 350], start=-90, end=90, fill=(32, 96, 160), width=18)
    return image.filter(ImageFilter.SMOOTH_MORE)


if __name__ == "__main__":
    target = Path(__file__).with_name("try-it.jpg")
    draw().save(target, format="JPEG", quality=85, optimize=True)
    print(f"wrote {target}")
