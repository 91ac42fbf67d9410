"""Sandbox renderers on real photos: deterministic, the right size, marked simulated."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from hotfolder_sandbox import render
from hotfolder_sandbox.images import PixelLimits, decode

PHOTOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "photos"
LIMITS = PixelLimits(max_bytes=25_000_000, min_pixels=65_536, max_pixels=33_177_600)


def photo(name: str) -> Image.Image:
    return decode((PHOTOS / name).read_bytes(), "image", LIMITS)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def edit(
    *images: Image.Image,
    prompt: str = "sunset",
    ratio: str = "auto",
    resolution: str = "1K",
    fmt: render.OutputFormat = "png",
) -> bytes:
    return render.edit(
        list(images), prompt=prompt, aspect_ratio=ratio, resolution=resolution, output_format=fmt
    )


@pytest.mark.parametrize(
    ("ratio", "resolution", "size"),
    [
        ("auto", "1K", (1024, 681)),  # chelsea is 451x300
        ("16:9", "1K", (1024, 576)),
        ("9:16", "1K", (576, 1024)),
        ("1:1", "2K", (2048, 2048)),
        ("4:5", "1K", (819, 1024)),
    ],
)
def test_edit_frames_to_the_ratio_and_tier(
    ratio: str, resolution: str, size: tuple[int, int]
) -> None:
    assert opened(edit(photo("chelsea.png"), ratio=ratio, resolution=resolution)).size == size


def test_edit_is_deterministic_and_depends_on_the_prompt() -> None:
    cat = photo("chelsea.png")
    assert edit(cat, prompt="sunset") == edit(cat, prompt="sunset")
    assert edit(cat, prompt="sunset") != edit(cat, prompt="moonlight")


def test_edit_visibly_changes_the_input() -> None:
    cat = photo("chelsea.png")
    out = opened(edit(cat)).convert("RGB").resize(cat.size)
    assert max(ImageStat.Stat(ImageChops.difference(out, cat)).mean) > 10


def test_edit_can_keep_the_input_size() -> None:
    cat = photo("chelsea.png")
    data = render.edit(
        [cat],
        prompt="x",
        aspect_ratio="16:9",
        resolution="1K",
        output_format="png",
        keep_input_size=True,
    )
    assert opened(data).size == cat.size


def test_multi_edit_blends_the_extra_images() -> None:
    cat, coffee = photo("chelsea.png"), photo("coffee.png")
    assert edit(cat, coffee) != edit(cat)
    assert opened(edit(cat, coffee)).size == opened(edit(cat)).size  # the first image frames it


@pytest.mark.parametrize(
    ("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]
)
def test_every_output_is_marked_simulated(fmt: render.OutputFormat, pil_format: str) -> None:
    image = opened(edit(photo("flower.jpg"), fmt=fmt))
    assert image.format == pil_format
    if fmt == "png":
        assert image.info["hotfolder-sandbox"] == "simulated"
    else:
        assert image.getexif()[0x010E] == render.SIMULATED_MARK


def test_upscale_resizes_by_the_scale_and_keeps_alpha() -> None:
    logo = photo("logo.png")
    out = opened(render.upscale(logo, scale=2, creativity=0.01, max_pixels=16_777_216))
    assert out.size == (1000, 1000)
    assert out.mode == "RGBA"
    assert out.info["hotfolder-sandbox"] == "simulated"


def test_upscale_shrinks_the_scale_to_the_output_limit() -> None:
    cat = photo("chelsea.png")
    out = opened(render.upscale(cat, scale=4, creativity=0.0, max_pixels=500_000))
    assert out.width * out.height <= 500_000
    assert out.width > cat.width and out.width / out.height == pytest.approx(451 / 300, rel=0.01)
    assert render.effective_scale(2000, 1072, 4, 16_777_216) == pytest.approx(2.797, abs=0.001)
    assert render.effective_scale(451, 300, 4, 16_777_216) == 4


def test_background_removal_clears_a_plain_background_with_a_soft_edge() -> None:
    scene = Image.new("RGB", (400, 300), (40, 120, 200))
    ImageDraw.Draw(scene).ellipse((120, 70, 280, 230), fill=(230, 200, 40))
    alpha = opened(render.remove_background(scene)).getchannel("A")
    assert alpha.getpixel((5, 5)) == 0
    assert alpha.getpixel((200, 150)) == 255
    edge = alpha.crop((110, 150, 130, 151)).histogram()
    assert any(edge[1:255])  # feathered, not a hard cut


@pytest.mark.parametrize(
    "name", ["rocket.jpg", "coffee.png", "chelsea.png", "hubble_deep_field.jpg"]
)
def test_background_removal_on_photos_gives_a_real_alpha(name: str) -> None:
    image = photo(name)
    data = render.remove_background(image)
    out = opened(data)
    assert out.mode == "RGBA" and out.size == image.size
    histogram = out.getchannel("A").histogram()
    assert histogram[0] > 0 and histogram[255] > 0  # some background removed, some subject kept
    assert render.remove_background(image) == data


def test_background_removal_keeps_existing_transparency() -> None:
    cat = photo("chelsea.png").convert("RGBA")
    cat.putalpha(Image.new("L", cat.size, 255))
    ImageDraw.Draw(cat).rectangle((200, 100, 260, 160), fill=(0, 0, 0, 0))
    out = opened(render.remove_background(cat))
    assert out.getchannel("A").getpixel((230, 130)) == 0
