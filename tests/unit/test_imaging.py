"""The safety gate and the codecs in hotfolder.imaging, on the shared corpus of real files."""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat
from pydantic import ValidationError

from hotfolder import imaging
from hotfolder._modes import WORKING_MODES
from hotfolder.errors import ConfigError, InputError, UnsafeInputError
from tests.helpers.corpus import BAD, PHOTOS

LIMITS = imaging.ImagingSection()
#: Files in corpus/bad whose pixels are fine and whose only fault is their EXIF.
BAD_METADATA_ONLY = {"hopper_bad_exif.jpg", "invalid-exif.jpg"}
BROKEN = sorted(BAD.iterdir())
PHOTO_FILES = sorted(PHOTOS.iterdir())


def decode_file(path: Path, limits: imaging.ImagingSection = LIMITS) -> Image.Image:
    return imaging.decode(path.read_bytes(), limits, name=path.name)


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / len(a.getbands())


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_the_corpus_is_there() -> None:
    assert len(BROKEN) >= 8
    assert len(PHOTO_FILES) >= 15


# --- the gate refuses ------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_broken_files_are_refused_with_their_name(path: Path) -> None:
    with pytest.raises(InputError) as caught:
        decode_file(path)
    assert path.name in str(caught.value)
    assert caught.value.hint


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["decompression_bomb.gif", "decompression_bomb_extents.gif"])
def test_gif_bombs_are_unsafe_even_to_probe(name: str) -> None:
    with pytest.raises(UnsafeInputError, match="bomb"):
        imaging.probe((BAD / name).read_bytes(), LIMITS, name=name)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("crash-4fb027452e6988530aa5dabee76eecacb3b79f8a.j2k", "JPEG2000"),
        ("timeout-1ee28a249896e05b83840ae8140622de8e648ba9.psd", "PSD"),
    ],
)
def test_formats_outside_the_allow_list_are_refused_before_decoding(name: str, fmt: str) -> None:
    with pytest.raises(InputError, match=f"{fmt} files are not allowed") as caught:
        imaging.probe((BAD / name).read_bytes(), LIMITS, name=name)
    assert "[imaging] formats" in (caught.value.hint or "")


def test_probe_reads_the_header_only() -> None:
    data = (BAD / "broken_data_stream.png").read_bytes()
    found = imaging.probe(data, LIMITS, name="x.png")
    assert (found.format, found.width, found.height) == ("PNG", 128, 128)
    with pytest.raises(InputError, match="cannot be decoded"):
        imaging.decode(data, LIMITS, name="x.png")


def test_truncated_file_fails_as_input_error() -> None:
    data = (PHOTOS / "rocket.jpg").read_bytes()
    with pytest.raises(InputError, match=r"rocket\.jpg"):
        imaging.decode(data[: len(data) // 2], LIMITS, name="rocket.jpg")


def test_not_an_image() -> None:
    with pytest.raises(InputError, match=r"notes\.txt: not an image"):
        imaging.probe(b"hello, world\n" * 10, LIMITS, name="notes.txt")


def test_limits_name_the_file_and_the_fix() -> None:
    data = (PHOTOS / "hopper.jpg").read_bytes()
    with pytest.raises(InputError, match=r"hopper\.jpg: the file is") as too_long:
        imaging.probe(data, imaging.ImagingSection(max_bytes=1000), name="hopper.jpg")
    assert "max_bytes" in (too_long.value.hint or "")
    with pytest.raises(UnsafeInputError, match="128x128 is 16,384 pixels, over") as too_big:
        imaging.probe(data, imaging.ImagingSection(max_pixels=10_000), name="hopper.jpg")
    assert too_big.value.hint == "raise [imaging] max_pixels if you trust this file"
    with pytest.raises(InputError, match="under the minimum of 65,536"):
        imaging.probe(data, imaging.ImagingSection(min_pixels=65_536), name="hopper.jpg")


def test_animation_policy() -> None:
    data = (PHOTOS / "iss634.gif").read_bytes()
    assert imaging.probe(data, LIMITS, name="a.gif").frames > 1
    with pytest.raises(InputError, match="frames") as caught:
        imaging.probe(data, imaging.ImagingSection(animation="reject"), name="a.gif")
    assert "first-frame" in (caught.value.hint or "")


def test_pillow_bomb_threshold_yields_to_our_own_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (PHOTOS / "hopper.jpg").read_bytes()  # 16,384 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert imaging.decode(data, imaging.ImagingSection(max_pixels=18_000), name="h.jpg").size == (
        128,
        128,
    )
    with pytest.raises(UnsafeInputError, match="bomb"):
        imaging.decode(data, imaging.ImagingSection(max_pixels=9_000), name="h.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    with pytest.raises(UnsafeInputError, match=r"h\.jpg: refused as a decompression bomb"):
        imaging.decode(data, imaging.ImagingSection(max_pixels=10_000), name="h.jpg")


def test_concurrent_decodes_leave_warning_filters_alone() -> None:
    before = list(warnings.filters)
    data = (PHOTOS / "hopper_orientation_6.jpg").read_bytes()
    results: list[tuple[int, int]] = []

    def work() -> None:
        for _ in range(5):
            results.append(imaging.decode(data, LIMITS, name="h.jpg").size)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(128, 128)] * 40
    assert warnings.filters == before


# --- the gate lets real photos through, upright and in a working mode -------------------------


@pytest.mark.parametrize("path", PHOTO_FILES, ids=lambda p: p.name)
def test_every_photo_decodes_to_a_working_mode(path: Path) -> None:
    image = decode_file(path)
    assert image.mode in WORKING_MODES
    assert image.getexif().get(0x0112, 1) == 1
    assert set(image.info) <= {"icc_profile", "exif", "xmp", "dpi", "comment"}


@pytest.mark.parametrize("name", sorted(BAD_METADATA_ONLY))
def test_broken_exif_is_refused_by_default_and_dropped_on_request(name: str) -> None:
    with pytest.raises(InputError, match="orientation cannot be trusted") as info:
        decode_file(BAD / name)
    assert name in str(info.value) and 'corrupt_metadata = "drop"' in str(info.value)
    image = decode_file(BAD / name, imaging.ImagingSection(corrupt_metadata="drop"))
    assert image.mode in WORKING_MODES
    assert reopen(imaging.encode(image, "JPEG", {})).size == image.size


def test_unreadable_exif_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(image: Image.Image, **kwargs: object) -> None:
        msg = "bad IFD"
        raise SyntaxError(msg)

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    image = decode_file(PHOTOS / "flower.jpg")
    assert image.size == (480, 360)
    assert "exif" not in image.info


@pytest.mark.parametrize("orientation", [3, 6])
def test_exif_orientation_is_applied(orientation: int) -> None:
    reference = decode_file(PHOTOS / "hopper.jpg")
    path = PHOTOS / f"hopper_orientation_{orientation}.jpg"
    stored = reopen(path.read_bytes()).convert("RGB")
    assert imaging.probe(path.read_bytes(), LIMITS, name=path.name).orientation == orientation
    upright = decode_file(path)
    assert upright.size == (stored.size[::-1] if orientation == 6 else stored.size)
    assert mean_abs_diff(upright, reference) < 6
    assert mean_abs_diff(stored, reference) > 20
    assert reopen(imaging.encode(upright, "JPEG", {})).getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "WEBP", "PNG"])
def test_decode_resize_to_comes_out_upright_at_that_size(fmt: str) -> None:
    """``resize_to`` gives the upright pixels at that size for every format that carries an
    EXIF orientation (a TIFF keeps it in its own tags, not in ``info["exif"]``): the same
    pixels as a whole decode scaled after, except that a JPEG is decoded at a reduced DCT
    scale and turned after scaling (within the shrink-on-load bound of test_local_ops)."""
    photo = Image.open(PHOTOS / "astronaut.png").convert("RGB").resize((400, 240))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    photo.save(buffer, fmt, exif=exif)
    data = buffer.getvalue()
    assert imaging.probe(data, LIMITS, name=f"turned.{fmt}").orientation == 6
    small = imaging.decode(data, LIMITS, name=f"turned.{fmt}", resize_to=(60, 100))
    reference = imaging.resized(imaging.decode(data, LIMITS, name=f"turned.{fmt}"), (60, 100))
    assert small.size == (60, 100), f"{fmt}: came out {small.size}, not upright at 60x100"
    assert small.getexif().get(0x0112, 1) == 1, f"{fmt}: the orientation is left to apply"
    diff = ImageChops.difference(small, reference)
    mean, worst = max(ImageStat.Stat(diff).mean), max(high for _, high in diff.getextrema())
    if fmt == "JPEG":
        assert mean < 1.0 and worst <= 24, (
            f"JPEG: {mean:.2f} mean, {worst} worst off a whole decode scaled after (bound "
            "< 1.0, <= 24): the reduced decode or the turn after scaling is wrong"
        )
    else:
        assert diff.getbbox() is None, (
            f"{fmt}: {mean:.2f} mean, {worst} worst off a whole decode scaled after; only a "
            "JPEG may be scaled before its turn (imaging.decode resize_to)"
        )


def test_16bit_tiff_keeps_its_precision_until_an_8bit_encoder() -> None:
    raw = reopen((PHOTOS / "16bit.cropped.tif").read_bytes())
    image = decode_file(PHOTOS / "16bit.cropped.tif")
    assert image.mode == "I;16"
    assert image.getextrema() == raw.getextrema() == (291, 694)
    png = reopen(imaging.encode(image, "PNG", {}))
    assert png.mode == "I;16"
    assert png.getextrema() == (291, 694)
    assert imaging.to_8bit(image).getextrema() == (73, 173)  # 10 significant bits: x 255/1023
    jpeg = reopen(imaging.encode(image, "JPEG", {}))
    assert jpeg.mode == "L"
    assert jpeg.getextrema() == pytest.approx((73, 173), abs=5)


@pytest.mark.parametrize(("bits", "step"), [(16, 257), (12, 4095 / 255), (8, 1)])
def test_16bit_scales_onto_8bit_by_its_significant_bits(bits: int, step: float) -> None:
    ramp = Image.new("I;16", (256, 1))
    ramp.putdata([round(v * step) for v in range(256)])
    eight = imaging.to_8bit(ramp)
    assert eight.mode == "L"
    assert list(eight.get_flattened_data()) == list(range(256))


def test_lab_tiff_becomes_plausible_rgb() -> None:
    image = decode_file(PHOTOS / "hopper.Lab.tif")
    reference = decode_file(PHOTOS / "hopper.tif")
    assert image.mode == "RGB"
    assert mean_abs_diff(image, reference) < 5


@pytest.mark.parametrize("name", ["iss634.gif", "iss634.apng"])
def test_animations_decode_to_their_first_frame(name: str) -> None:
    first = Image.open(PHOTOS / name)
    first.seek(0)
    expected = first.convert("RGBA")
    image = decode_file(PHOTOS / name)
    assert image.size == (245, 245)
    assert mean_abs_diff(image.convert("RGBA"), expected) < 1
    first.seek(20)
    assert mean_abs_diff(image.convert("RGBA"), first.convert("RGBA")) > 1


def test_cmyk_becomes_rgb() -> None:
    hopper = decode_file(PHOTOS / "hopper.jpg")
    buffer = io.BytesIO()
    hopper.convert("CMYK").save(buffer, "JPEG", quality=95)
    image = imaging.decode(buffer.getvalue(), LIMITS, name="cmyk.jpg")
    assert image.mode == "RGB"
    assert mean_abs_diff(image, hopper) < 4


def test_palette_with_transparency_becomes_rgba() -> None:
    palette = Image.new("P", (64, 64), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0])
    palette.info["transparency"] = 0
    buffer = io.BytesIO()
    palette.save(buffer, "PNG")
    image = imaging.decode(buffer.getvalue(), LIMITS, name="p.png")
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0


# --- encode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(imaging.WRITABLE))
def test_encode_writes_each_format(fmt: str) -> None:
    image = decode_file(PHOTOS / "logo.png")
    written = reopen(imaging.encode(image, fmt, {}))
    assert written.format == fmt
    assert written.size == image.size


def test_jpeg_flattens_alpha_onto_white_or_the_background() -> None:
    image = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    assert reopen(imaging.encode(image, "JPEG", {})).getpixel((5, 5)) == (255, 255, 255)
    black = reopen(imaging.encode(image, "JPEG", {"background": "black"}))
    assert black.getpixel((5, 5)) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_alpha_survives_png_webp_and_tiff(fmt: str) -> None:
    image = decode_file(PHOTOS / "hopper.jpg").convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    written = reopen(imaging.encode(image, fmt, {"lossless": True} if fmt == "WEBP" else {}))
    assert written.mode == "RGBA"
    assert mean_abs_diff(written.getchannel("A"), image.getchannel("A")) < 1


def test_icc_and_exif_are_kept_or_dropped_on_request() -> None:
    image = decode_file(PHOTOS / "xmp_test.jpg")
    kept = reopen(imaging.encode(image, "JPEG", {}))
    assert kept.info["icc_profile"] == image.info["icc_profile"]
    assert dict(kept.getexif()) == dict(image.getexif())
    assert kept.getexif()
    dropped = reopen(imaging.encode(image, "JPEG", {"icc_profile": None, "exif": None}))
    assert "icc_profile" not in dropped.info
    assert not dropped.getexif()


def test_a_profile_for_another_colour_space_is_not_written() -> None:
    image = Image.new("RGB", (16, 16), "red")
    image.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert "icc_profile" not in reopen(imaging.encode(image, "JPEG", {})).info
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image.info["icc_profile"] = srgb
    assert reopen(imaging.encode(image, "PNG", {})).info["icc_profile"] == srgb


def test_encoder_defaults_and_options() -> None:
    image = decode_file(PHOTOS / "rocket.jpg")
    default = imaging.encode(image, "JPEG", {})
    assert len(imaging.encode(image, "JPEG", {"quality": 90})) == len(default)
    assert len(imaging.encode(image, "JPEG", {"quality": 40})) < len(default)
    assert reopen(imaging.encode(image, "JPEG", {"progressive": True})).info.get("progressive")


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "extension", "media_type"),
    [
        ("JPEG", "jpg", "image/jpeg"),
        ("PNG", "png", "image/png"),
        ("WEBP", "webp", "image/webp"),
        ("TIFF", "tif", "image/tiff"),
        ("GIF", "gif", "image/gif"),
        ("BMP", "bmp", "image/bmp"),
        ("MPO", "jpg", "image/jpeg"),
    ],
)
def test_extension_and_media_type(fmt: str, extension: str, media_type: str) -> None:
    assert imaging.extension_for(fmt) == extension
    assert imaging.media_type_for(fmt) == media_type


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("jpg", "JPEG"),
        ("JPEG", "JPEG"),
        (".jpeg", "JPEG"),
        ("png", "PNG"),
        ("WebP", "WEBP"),
        ("tif", "TIFF"),
        (".tiff", "TIFF"),
        ("gif", "GIF"),
        ("bmp", "BMP"),
    ],
)
def test_format_for_users_names(name: str, fmt: str) -> None:
    assert imaging.format_for(name) == fmt


def test_format_for_an_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown image format 'tga'") as caught:
        imaging.format_for("tga")
    assert "jpeg, png, webp, tiff, gif, bmp, avif, heif" in (caught.value.hint or "")


def test_limits_validation() -> None:
    assert imaging.ImagingSection(formats=("jpg", "png")).formats == ("JPEG", "PNG")
    with pytest.raises(ValidationError, match="Pillow cannot read NOPE"):
        imaging.ImagingSection(formats=("nope",))
    with pytest.raises(ValidationError, match="min_pixels"):
        imaging.ImagingSection(min_pixels=10, max_pixels=5)
    with pytest.raises(ValidationError, match="cannot exceed"):
        imaging.ImagingSection(max_pixels=10**10)


# --- HEIC/HEIF, AVIF, MPO, BMP --------------------------------------------------------------


def _heic(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", **options)
    return buffer.getvalue()


def test_the_gate_reads_heic_avif_mpo_and_bmp_by_default() -> None:
    assert {"HEIF", "BMP", "JPEG"} <= set(LIMITS.formats)
    assert ("AVIF" in LIMITS.formats) == imaging.HAS_AVIF
    picture = Image.new("RGB", (40, 30), "teal")
    encoded = {"HEIF": _heic(picture)}
    for fmt in ("AVIF", "BMP", "MPO"):
        if fmt == "AVIF" and not imaging.HAS_AVIF:
            continue
        buffer = io.BytesIO()
        if fmt == "MPO":
            picture.save(buffer, "MPO", save_all=True, append_images=[picture.rotate(90)])
        else:
            picture.save(buffer, fmt)
        encoded[fmt] = buffer.getvalue()
    for fmt, data in encoded.items():
        found = imaging.probe(data, LIMITS, name=f"x.{fmt.lower()}")
        assert found.format == ("JPEG" if fmt == "MPO" else fmt)
        assert imaging.decode(data, LIMITS, name="x").size == (40, 30)


def test_heic_orientation_and_icc_profile_are_honoured() -> None:
    picture = Image.new("RGB", (64, 32), "red")
    picture.paste((0, 0, 255), (0, 0, 16, 32))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to view
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _heic(picture, exif=exif.tobytes(), icc_profile=icc)
    found = imaging.probe(data, LIMITS, name="turned.heic")
    assert found.upright_size == (32, 64)
    image = imaging.decode(data, LIMITS, name="turned.heic")
    assert image.size == (32, 64)  # turned once, not twice
    red, _green, blue = image.getpixel((16, 4))[:3]  # the blue band is now at the top
    assert blue > 200 and red < 60
    assert image.getexif().get(0x0112, 1) == 1
    assert image.info.get("icc_profile") == icc


def test_include_globs_follow_the_gate_formats() -> None:
    globs = imaging.include_globs()
    for glob in ("*.jpg", "*.jpeg", "*.mpo", "*.bmp", "*.heic", "*.heif", "*.png", "*.tif"):
        assert glob in globs
    assert ("*.avif" in globs) == imaging.HAS_AVIF
    assert "*.tga" not in globs
    assert imaging.include_globs(("png",)) == ["*.png", "*.apng"]
    assert imaging.reader_for("photo.TGA") == "TGA"
    assert imaging.reader_for("pair.mpo") == "JPEG"
    assert imaging.reader_for("readme.txt") is None


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "I;16"])
def test_avif_and_heic_are_written_from_any_working_mode(fmt: str, mode: str) -> None:
    if fmt == "AVIF" and not imaging.HAS_AVIF:
        pytest.skip("this Pillow has no AVIF")
    data = imaging.encode(Image.new(mode, (20, 10)), fmt, {})
    reopened = Image.open(io.BytesIO(data))
    assert (reopened.format, reopened.size) == (fmt, (20, 10))
    assert reopened.mode == ("RGBA" if mode == "RGBA" else "RGB")
    assert imaging.media_type_for(fmt) == {"AVIF": "image/avif", "HEIF": "image/heic"}[fmt]


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_venice_uploads_of_heic_and_avif_are_reencoded(fmt: str) -> None:
    from hotfolder.artifact import Artifact
    from hotfolder.venice.preflight import upload_input

    if fmt == "AVIF" and not imaging.HAS_AVIF:
        pytest.skip("this Pillow has no AVIF")
    opaque = imaging.encode(Image.new("RGB", (48, 40), "navy"), fmt, {})
    clear = imaging.encode(Image.new("RGBA", (48, 40), (0, 0, 0, 0)), fmt, {})
    for data, expected in ((opaque, "image/jpeg"), (clear, "image/png")):
        sent = upload_input(Artifact.from_bytes(data, name=f"phone.{fmt.lower()}"))
        assert sent.media_type == expected
        assert sent.data is not None
        assert Image.open(io.BytesIO(sent.data)).size == (48, 40)
        assert sent.filename == "phone." + ("jpg" if expected == "image/jpeg" else "png")
