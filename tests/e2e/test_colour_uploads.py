"""Colour through the real CLI: a Display P3 JPEG (an iPhone's) and an Adobe RGB (1998) PNG go
to the Venice sandbox converted to sRGB, so their colour patches land within a small ΔE of the
sRGB colour; local chains keep the profile, or convert with ``convert``'s ``icc = "srgb"``.

The sandbox's upscale is a Lanczos resize of the bytes it received, so the raw pixel values of
its output (read without any profile, as Venice reads its inputs) are what was uploaded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from hotfolder.colour import foreign_profile, profile_name
from tests.helpers.cli import hotfolder
from tests.helpers.colour import delta_e76, icc_profile

pytestmark = pytest.mark.e2e

PATCHES = ((220, 40, 40), (40, 170, 70))
INPUTS = {"iphone.jpg": ("Display P3", "JPEG"), "studio.png": ("Adobe RGB (1998)", "PNG")}

CONFIG = """
[venice]
requests_per_minute = 600

[chains.up]
steps = [{ op = "venice.upscale", scale = 2 }]
outputs = [{ sink = "folder", path = "up", name = "{stem}.{ext}" }, { sink = "sidecar" }]

[chains.keep]
steps = [{ op = "resize", width = 128, height = 128 }, { op = "convert", format = "png" }]
outputs = [{ sink = "folder", path = "keep", name = "{stem}.{ext}" }]

[chains.srgb]
steps = [
  { op = "resize", width = 128, height = 128 },
  { op = "convert", format = "png", icc = "srgb" },
]
outputs = [{ sink = "folder", path = "srgb", name = "{stem}.{ext}" }, { sink = "sidecar" }]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    srgb = ImageCms.createProfile("sRGB")
    for name, (space, fmt) in INPUTS.items():
        icc = icc_profile(space)
        to_space = ImageCms.buildTransform(
            srgb, ImageCms.ImageCmsProfile(io.BytesIO(icc)), "RGB", "RGB"
        )
        image = Image.new("RGB", (512, 512), PATCHES[0])
        image.paste(PATCHES[1], (256, 0, 512, 512))
        options = {"quality": 98} if fmt == "JPEG" else {}
        to_space.apply(image).save(tmp_path / name, fmt, icc_profile=icc, **options)
    return tmp_path


def _patches(path: Path) -> list[tuple[int, ...]]:
    """The middle of each patch, as raw numbers (no profile applied)."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        w, h = rgb.size
        return [rgb.getpixel((w // 4, h // 2)), rgb.getpixel((3 * w // 4, h // 2))]  # type: ignore[list-item]


def test_venice_uploads_are_converted_to_srgb(project: Path) -> None:
    for name in INPUTS:
        raw = _patches(project / name)
        assert all(delta_e76(w, r) > 5 for w, r in zip(PATCHES, raw, strict=True)), (
            f"{name}: the test image's numbers must be far from sRGB's, or the test proves nothing"
        )
    run = hotfolder("process", *INPUTS, "--chain", "up", "--sandbox", cwd=project)
    assert run.code == 0, run.output[-3000:]
    for name, (space, _fmt) in INPUTS.items():
        out = project / "up" / f"{Path(name).stem}.png"
        with Image.open(out) as image:
            assert image.size == (1024, 1024), out
        for want, got in zip(PATCHES, _patches(out), strict=True):
            assert delta_e76(want, got) < 2.5, f"{out}: {got} is not sRGB {want}"
        sidecar = json.loads(out.with_name(out.name + ".json").read_text())
        note = sidecar["steps"][0]["notes"]["colour"]
        assert note == f"converted to sRGB for the upload: {name} ({space})", note


def test_local_chains_keep_the_profile_or_convert_it(project: Path) -> None:
    for chain in ("keep", "srgb"):
        run = hotfolder("process", *INPUTS, "--chain", chain, cwd=project)
        assert run.code == 0, run.output[-3000:]
    for name, (space, _fmt) in INPUTS.items():
        stem = Path(name).stem
        with Image.open(project / "keep" / f"{stem}.png") as kept:
            assert kept.info["icc_profile"] == icc_profile(space), f"{stem}: profile dropped"
        with Image.open(project / "srgb" / f"{stem}.png") as converted:
            icc = converted.info["icc_profile"]
            assert foreign_profile(icc) is None and "sRGB" in profile_name(icc), f"{stem}: {icc!r}"
        for want, got in zip(PATCHES, _patches(project / "srgb" / f"{stem}.png"), strict=True):
            assert delta_e76(want, got) < 2.5, f"{stem}: {got} is not sRGB {want}"
        sidecar = json.loads((project / "srgb" / f"{stem}.png.json").read_text())
        assert sidecar["steps"][1]["notes"]["colour"] == f"converted from {space} to sRGB"
