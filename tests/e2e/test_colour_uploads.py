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
    for name, (space, fmt) in INPUTS.items():
        options = {"quality": 98} if fmt == "JPEG" else {}
        _patches_in(space).save(tmp_path / name, fmt, icc_profile=icc_profile(space), **options)
    return tmp_path


def _patches_in(space: str) -> Image.Image:
    """The two sRGB :data:`PATCHES` side by side, as numbers of ``space`` (the test helper's
    profile of it, not hotfolder's); no profile in ``info``."""
    to_space = ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"),
        ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(space))),
        "RGB",
        "RGB",
    )
    image = Image.new("RGB", (512, 512), PATCHES[0])
    image.paste(PATCHES[1], (256, 0, 512, 512))
    converted = to_space.apply(image)
    converted.info.clear()
    return converted


def _patches(path: Path) -> list[tuple[int, ...]]:
    """The middle of each patch, as raw numbers (no profile applied)."""
    with Image.open(path) as image:
        return _middles(image)


def _middles(image: Image.Image) -> list[tuple[int, ...]]:
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


def test_a_heic_that_names_its_colours_by_nclx_is_converted_too(tmp_path: Path) -> None:
    """A HEIC without an ICC profile whose nclx colour box says Display P3 (primaries 12, the
    sRGB curve) goes to Venice converted to sRGB, as one with an embedded P3 profile does, and
    a local chain that keeps the profile embeds P3 as a profile. The test image is made with
    the test helper's own P3 profile, not hotfolder's."""
    from hotfolder.imaging import HAS_HEIF_ENCODER

    if not HAS_HEIF_ENCODER:
        pytest.skip("pillow-heif cannot write HEIC here")
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    nclx = {"color_primaries": 12, "transfer_characteristics": 13, "matrix_coefficients": 6,
            "full_range_flag": 1}  # fmt: skip
    # no ICC profile: the nclx box alone says what the numbers mean
    _patches_in("Display P3").save(tmp_path / "phone.heic", "HEIF", quality=100, nclx_profile=nclx)
    with Image.open(tmp_path / "phone.heic") as made:
        assert "icc_profile" not in made.info or not made.info["icc_profile"]
        assert made.info["nclx_profile"]["color_primaries"] == 12
    raw = _patches(tmp_path / "phone.heic")
    assert all(delta_e76(w, r) > 5 for w, r in zip(PATCHES, raw, strict=True)), raw

    for chain in ("up", "keep"):
        run = hotfolder("process", "phone.heic", "--chain", chain, "--sandbox", cwd=tmp_path)
        assert run.code == 0, run.output[-3000:]
    uploaded = tmp_path / "up" / "phone.png"
    for want, got in zip(PATCHES, _patches(uploaded), strict=True):
        assert delta_e76(want, got) < 2.5, f"{uploaded}: {got} is not sRGB {want}"
    sidecar = json.loads(uploaded.with_name(uploaded.name + ".json").read_text())
    note = sidecar["steps"][0]["notes"]["colour"]
    space = "Display P3 (from the HEIF's nclx)"
    assert note == f"converted to sRGB for the upload: phone.heic ({space})", note
    with Image.open(tmp_path / "keep" / "phone.png") as kept:
        icc = kept.info["icc_profile"]
        assert foreign_profile(icc) == space
        shown = ImageCms.profileToProfile(
            kept.convert("RGB"), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
            ImageCms.createProfile("sRGB"),
        )  # fmt: skip
        assert shown is not None
        for want, got in zip(PATCHES, _middles(shown), strict=True):
            assert delta_e76(want, got) < 2.5, f"kept: {got} shown through its profile"
