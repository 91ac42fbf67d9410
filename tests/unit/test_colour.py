"""Colour profiles: which count as sRGB, the conversion to sRGB (checked by ΔE against the sRGB
formulas, not against LittleCMS), the Venice upload that converts, and ``convert``'s ``icc``.
Also what Pillow logs while reading a file: it names the file."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image, ImageCms

from hotfolder import colour, imaging
from hotfolder.artifact import Artifact
from hotfolder.errors import InputError
from hotfolder.job import StepRecord
from hotfolder.venice import preflight
from hotfolder_plugins.local.formats import Convert
from tests.helpers.bad_images import SAMPLES, tiff_with_samples
from tests.helpers.colour import delta_e76, icc_profile

#: A red and a green that sRGB can show, each far enough from the other spaces' reading of the
#: same numbers that an unconverted image is many ΔE off.
PATCHES = ((220, 40, 40), (40, 170, 70))
SPACES = ("Display P3", "Adobe RGB (1998)", "ProPhoto RGB")


def tagged(space: str, mode: str = "RGB") -> Image.Image:
    """Two patches of :data:`PATCHES`, as ``space``'s numbers, tagged with its profile."""
    icc = icc_profile(space)
    to_space = ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"), ImageCms.ImageCmsProfile(io.BytesIO(icc)), "RGB", "RGB"
    )
    image = Image.new("RGB", (256, 256), PATCHES[0])
    image.paste(PATCHES[1], (128, 0, 256, 256))
    image = to_space.apply(image)
    if mode == "RGBA":
        image.putalpha(200)
    image.info["icc_profile"] = icc
    return image


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, icc_profile=image.info.get("icc_profile"), **options)
    return buffer.getvalue()


def patches(image: Image.Image) -> list[tuple[int, ...]]:
    rgb = image.convert("RGB")
    return [rgb.getpixel((64, 128)), rgb.getpixel((192, 128))]  # type: ignore[list-item]


@pytest.mark.parametrize("space", SPACES)
def test_other_rgb_profiles_are_foreign_and_named(space: str) -> None:
    assert colour.foreign_profile(icc_profile(space)) == space


def test_srgb_and_no_profile_are_not_foreign() -> None:
    assert colour.foreign_profile(colour.SRGB_ICC) is None
    assert colour.foreign_profile(None) is None
    assert colour.foreign_profile(b"not a profile") is None


@pytest.mark.parametrize("space", SPACES)
def test_to_srgb_lands_on_the_srgb_colour(space: str) -> None:
    source = tagged(space)
    before = patches(source)
    converted, name = colour.to_srgb(source)
    assert name == space
    assert converted.info["icc_profile"] == colour.SRGB_ICC
    for want, raw, got in zip(PATCHES, before, patches(converted), strict=True):
        assert delta_e76(want, got) < 1.5, (space, want, got)
        assert delta_e76(want, raw) > 5, "the test colour must differ when not converted"


def test_to_srgb_keeps_alpha_and_leaves_srgb_alone() -> None:
    converted, name = colour.to_srgb(tagged("Display P3", "RGBA"))
    assert name == "Display P3" and converted.mode == "RGBA"
    assert converted.getpixel((10, 10))[3] == 200
    plain = Image.new("RGB", (8, 8), PATCHES[0])
    assert colour.to_srgb(plain) == (plain, None)


def test_the_probe_reads_the_profile_from_the_header() -> None:
    data = encoded(tagged("Adobe RGB (1998)"), "JPEG", quality=95)
    found = imaging.probe(data, imaging.ImagingSection(), name="a.jpg")
    assert found.icc_profile == icc_profile("Adobe RGB (1998)")
    assert Artifact.from_bytes(data, name="a.jpg").foreign_profile == "Adobe RGB (1998)"


@pytest.mark.parametrize(("space", "fmt"), [("Display P3", "JPEG"), ("Adobe RGB (1998)", "PNG")])
def test_the_upload_is_converted_to_srgb(space: str, fmt: str) -> None:
    data = encoded(tagged(space), fmt, **({"quality": 98} if fmt == "JPEG" else {}))
    source = Artifact.from_bytes(data, name=f"photo.{fmt.lower()}")
    upload = preflight.upload_input(source)
    assert upload.data is not None and upload.data != data
    sent = Image.open(io.BytesIO(upload.data))
    assert colour.foreign_profile(sent.info.get("icc_profile")) is None
    for want, got in zip(PATCHES, patches(sent), strict=True):
        assert delta_e76(want, got) < 2.0, (space, want, got)


def test_an_srgb_upload_is_sent_as_it_is() -> None:
    image = Image.new("RGB", (256, 256), PATCHES[0])
    image.info["icc_profile"] = colour.SRGB_ICC
    data = encoded(image, "JPEG", quality=90)
    assert preflight.upload_input(Artifact.from_bytes(data, name="s.jpg")).data == data


def test_a_foreign_profile_is_never_sent_by_url() -> None:
    data = encoded(tagged("Display P3"), "PNG")
    source = Artifact.from_bytes(data, name="p3.png").with_info(
        source_url="https://images.example.com/p3.png"
    )
    source = source.with_info(source_sha256=source.sha256)
    send = ("images.example.com",)
    assert preflight.sendable_url(source, send) is None
    plain = Artifact.from_bytes(encoded(Image.new("RGB", (256, 256)), "PNG"), name="p.png")
    plain = plain.with_info(source_url="https://images.example.com/p.png")
    plain = plain.with_info(source_sha256=plain.sha256)
    assert preflight.sendable_url(plain, send) == "https://images.example.com/p.png"


def _convert(image: Artifact, **params: Any) -> tuple[Artifact, StepRecord]:
    record = StepRecord(index=0, op="convert", params=params)
    context: Any = SimpleNamespace(record=record)
    result = Convert(Convert.Params(**params)).run(context, image)
    return result, record


def test_convert_keeps_the_profile_by_default_and_converts_with_icc_srgb() -> None:
    source = Artifact.from_bytes(encoded(tagged("Display P3"), "PNG"), name="p3.png")
    kept, record = _convert(source, format="png", compress_level=1)
    kept_image = Image.open(io.BytesIO(kept.data))
    assert kept_image.info["icc_profile"] == icc_profile("Display P3")
    assert "colour" not in record.notes
    srgb, record = _convert(source, format="png", icc="srgb")
    written = Image.open(io.BytesIO(srgb.data))
    assert written.info["icc_profile"] == colour.SRGB_ICC
    assert record.notes["colour"] == "converted from Display P3 to sRGB"
    for want, got in zip(PATCHES, patches(written), strict=True):
        assert delta_e76(want, got) < 1.5


def test_convert_icc_srgb_passes_srgb_bytes_through() -> None:
    image = Image.new("RGB", (64, 64), PATCHES[0])
    source = Artifact.from_bytes(encoded(image, "JPEG", quality=90), name="s.jpg")
    result, record = _convert(source, format="jpeg", icc="srgb")
    assert result is source and "colour" not in record.notes


def test_what_pillow_logs_names_the_file_and_joins_the_error() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    root = logging.getLogger()
    keep = Keep()
    root.addHandler(keep)
    try:
        with pytest.raises(InputError) as caught:
            imaging.probe(tiff_with_samples(), imaging.ImagingSection(), name="samples.tif")
    finally:
        root.removeHandler(keep)
    assert str(caught.value).startswith("samples.tif: a damaged TIFF file")
    assert f"More samples per pixel than can be decoded: {SAMPLES}" in str(caught.value)
    pillow = [r for r in seen if r.name.startswith("PIL")]
    assert pillow, "Pillow logged nothing: the test TIFF no longer triggers its message"
    for record in pillow:
        assert record.getMessage().startswith("samples.tif: Pillow: ")
        assert record.levelno == logging.DEBUG


def test_pillow_records_outside_a_read_pass_unchanged() -> None:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.levelname} {record.getMessage()}")

    root = logging.getLogger()
    keep = Keep()
    root.addHandler(keep)
    try:
        logging.getLogger("PIL.TiffImagePlugin").error("a message of its own")
    finally:
        root.removeHandler(keep)
    assert seen == ["ERROR a message of its own"]


def _nclx(primaries: int, transfer: int, xy: tuple[float, ...]) -> dict[str, Any]:
    """pillow-heif's ``nclx_profile``: the codes, and the primaries and white as xy."""
    names = [f"color_primary_{c}_{a}" for c in ("red", "green", "blue", "white") for a in "xy"]
    return {
        "color_primaries": primaries,
        "transfer_characteristics": transfer,
        "matrix_coefficients": 6,
        "full_range_flag": 1,
        **dict(zip(names, xy, strict=True)),
    }


BT709_XY = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.329)
BT2020_XY = (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.329)


def test_an_nclx_colour_box_becomes_a_profile_unless_it_is_srgb_or_hdr() -> None:
    from hotfolder._nclx import icc_for_nclx

    assert icc_for_nclx(_nclx(1, 13, BT709_XY)) is None  # sRGB itself
    assert icc_for_nclx(_nclx(2, 2, BT709_XY)) is None  # unspecified: taken as sRGB
    assert icc_for_nclx(_nclx(9, 16, BT2020_XY)) is None  # PQ (HDR): not mapped
    assert icc_for_nclx(_nclx(9, 18, BT2020_XY)) is None  # HLG (HDR): not mapped
    assert icc_for_nclx({"color_primaries": 9, "transfer_characteristics": 1}) is None
    wide = icc_for_nclx(_nclx(9, 14, BT2020_XY))
    assert wide is not None and colour.foreign_profile(wide) == "BT.2020 (from the HEIF's nclx)"
    # BT.709 primaries with a pure gamma of 2.2: white stays white, a dark grey is darker
    # than sRGB's curve (with its linear toe) makes it: (10/255)^2.2 is 3 in sRGB
    gamma = icc_for_nclx(_nclx(1, 4, BT709_XY))
    assert gamma is not None
    probe = Image.new("RGB", (2, 1))
    probe.putpixel((0, 0), (255, 255, 255))
    probe.putpixel((1, 0), (10, 10, 10))
    shown, _ = colour.to_srgb(_tagged(probe, gamma))
    assert shown.getpixel((0, 0)) == (255, 255, 255)
    assert shown.getpixel((1, 0)) in {(v, v, v) for v in (2, 3, 4)}, shown.getpixel((1, 0))


def _tagged(image: Image.Image, icc: bytes) -> Image.Image:
    image.info["icc_profile"] = icc
    return image
