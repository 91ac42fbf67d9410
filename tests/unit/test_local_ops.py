"""The built-in local operations, run on real photos and on synthetic images."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat
from pydantic import ValidationError

import hotfolder
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder_plugins.local.formats import Convert, StripMetadata
from hotfolder_plugins.local.geometry import AutoOrient, FitToLimits, Resize
from hotfolder_plugins.local.watermark import Watermark
from tests.helpers.corpus import PHOTOS

NO_CONTEXT: Any = None  # the local operations never touch their context


def artifact(name: str) -> hotfolder.Artifact:
    return hotfolder.Artifact.from_bytes((PHOTOS / name).read_bytes(), name=name)


def synthetic(image: Image.Image, fmt: str = "PNG") -> hotfolder.Artifact:
    return hotfolder.Artifact.from_image(image, name=f"synthetic.{fmt.lower()}", format=fmt)


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def run(
    operation: type[hotfolder.Operation], image: hotfolder.Artifact, **params: Any
) -> hotfolder.Artifact:
    result = operation(operation.Params(**params)).run(NO_CONTEXT, image)
    assert isinstance(result, hotfolder.Artifact)
    return result


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / len(a.getbands())


def test_all_local_operations_are_registered() -> None:
    registry = build_registry(make_plugin_manager(load_entrypoints=False))
    names = {"auto-orient", "resize", "fit-to-limits", "convert", "strip-metadata", "watermark"}
    assert names <= set(registry.operations)
    assert {registry.operations[n].plugin for n in names} == {"hotfolder_plugins.local_ops"}


# --- auto-orient ----------------------------------------------------------------------------


def test_auto_orient_decodes_only_what_needs_turning() -> None:
    upright = artifact("hopper.jpg")
    assert run(AutoOrient, upright) is upright
    assert not upright.is_decoded
    original = artifact("hopper_orientation_6.jpg")
    turned = run(AutoOrient, original)
    # Not decoded yet (a resize next decodes at a reduced size), but its bytes are upright.
    assert not turned.is_decoded
    assert turned.data != original.data
    written = reopen(turned.data)
    assert written.getexif().get(0x0112, 1) == 1
    assert mean_abs_diff(written, upright.image) < 6
    assert mean_abs_diff(turned.image, upright.image) < 6
    assert run(AutoOrient, turned) is turned


# --- resize ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"width": 500}, (500, 436)),
        ({"height": 436}, (500, 436)),
        ({"width": 500, "height": 300}, (344, 300)),
        ({"width": 2000, "height": 2000}, (2000, 1744)),
        ({"width": 300, "height": 100, "mode": "fill"}, (300, 100)),
        ({"width": 50, "height": 70, "mode": "exact"}, (50, 70)),
    ],
)
def test_resize_sizes(params: dict[str, Any], size: tuple[int, int]) -> None:
    result = run(Resize, artifact("hubble_deep_field.jpg"), **params)  # 1000x872
    assert result.image.size == size
    assert reopen(result.data).size == size


def test_fit_without_upscale_leaves_small_images_alone() -> None:
    image = artifact("hopper.jpg")
    assert run(Resize, image, width=256, upscale=False) is image


def test_fill_keeps_the_gravity_side() -> None:
    halves = Image.new("RGB", (200, 100), "red")
    halves.paste((0, 0, 255), (100, 0, 200, 100))
    left = run(Resize, synthetic(halves), width=50, height=50, mode="fill", gravity="left")
    right = run(Resize, synthetic(halves), width=50, height=50, mode="fill", gravity="right")
    assert left.image.getpixel((25, 25)) == (255, 0, 0)
    assert right.image.getpixel((25, 25)) == (0, 0, 255)


def test_resize_keeps_16bit_and_alpha() -> None:
    assert run(Resize, artifact("16bit.cropped.tif"), width=32).image.mode == "I;16"
    logo = run(Resize, artifact("logo.png"), width=100)
    assert logo.image.mode == "RGBA"


def test_resize_refuses_outputs_over_the_pixel_limit() -> None:
    with pytest.raises(hotfolder.OperationError, match="over \\[imaging\\] max_pixels"):
        run(Resize, artifact("hopper.jpg"), width=60_000, height=60_000, mode="exact")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"width": 100, "mode": "fill"},
        {"height": 100, "mode": "exact"},
        {"width": 0},
        {"width": 100, "mode": "stretch"},
        {"width": 100, "gravity": "middle"},
        {"width": 100, "colour": "red"},
    ],
)
def test_resize_params_are_validated(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Resize.Params(**params)


# --- fit-to-limits --------------------------------------------------------------------------


def test_fit_to_limits_enlarges_tiny_images() -> None:
    result = run(FitToLimits, artifact("hopper.jpg"))
    written = reopen(result.data)
    assert written.width * written.height >= 65_536
    assert written.size == (256, 256)
    assert result.format == written.format == "JPEG"


def test_fit_to_limits_reaches_the_minimum_with_odd_sizes() -> None:
    result = run(FitToLimits, synthetic(Image.new("RGB", (100, 75), "teal")))
    written = reopen(result.data)
    assert written.width * written.height >= 65_536
    assert written.size == (296, 222)


def test_fit_to_limits_shrinks_huge_images() -> None:
    rng = random.Random(0)
    noise = Image.frombytes("L", (8000, 6000), rng.randbytes(8000 * 6000))
    result = run(FitToLimits, synthetic(noise, "JPEG"))
    written = reopen(result.data)
    assert 33_000_000 <= written.width * written.height <= 33_177_600
    assert abs(written.width / written.height - 8000 / 6000) < 0.001
    assert len(result.data) < 25_000_000


def test_fit_to_limits_lowers_jpeg_quality_to_fit_the_bytes() -> None:
    source = artifact("hubble_deep_field.jpg")
    assert len(run(Convert, source, format="jpeg", quality=90).data) > 150_000
    result = run(FitToLimits, source, max_bytes=150_000)
    assert len(result.data) < 150_000
    assert reopen(result.data).size == (1000, 872)
    floor = run(Convert, source, format="jpeg", quality=40).data
    assert len(result.data) > len(floor)  # stepped down, not straight to the floor


def test_fit_to_limits_shrinks_a_png_that_compression_cannot_save() -> None:
    rng = random.Random(1)
    noise = Image.frombytes("RGB", (400, 400), rng.randbytes(400 * 400 * 3))
    result = run(FitToLimits, synthetic(noise), min_pixels=1_000, max_bytes=100_000)
    assert len(result.data) < 100_000
    written = reopen(result.data)
    assert written.format == "PNG"
    assert written.width < 400


def test_fit_to_limits_fails_when_it_cannot_fit() -> None:
    rng = random.Random(2)
    noise = Image.frombytes("RGB", (300, 300), rng.randbytes(300 * 300 * 3))
    with pytest.raises(hotfolder.OperationError, match="without going under 65,536 pixels"):
        run(FitToLimits, synthetic(noise), max_bytes=20_000)


def test_fit_to_limits_passes_fitting_bytes_through_untouched() -> None:
    source = artifact("hubble_deep_field.jpg")
    assert run(FitToLimits, source) is source
    assert not source.is_decoded


def test_fit_to_limits_sends_other_formats_as_png() -> None:
    result = run(FitToLimits, artifact("hopper.tif"))
    assert result.format == reopen(result.data).format == "PNG"
    assert run(FitToLimits, artifact("hopper.tif"), format="webp").format == "WEBP"


@pytest.mark.parametrize(
    "params",
    [
        {"min_pixels": 10, "max_pixels": 5},
        {"max_bytes": 10},
        {"format": "tga"},
        {"min_quality": 0},
    ],
)
def test_fit_to_limits_params_are_validated(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FitToLimits.Params(**params)


# --- convert --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jpeg", "JPG", "png", "webp", "tiff", "gif", "bmp"])
def test_convert_writes_the_format(name: str) -> None:
    result = run(Convert, artifact("logo.png"), format=name)
    written = reopen(result.data)
    assert written.format == result.format == hotfolder.imaging.format_for(name)
    assert written.size == (500, 500)


def test_convert_to_jpeg_flattens_onto_the_background() -> None:
    transparent = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    white = reopen(run(Convert, synthetic(transparent), format="jpeg").data)
    red = reopen(run(Convert, synthetic(transparent), format="jpeg", background="#ff0000").data)
    assert white.getpixel((10, 10)) == (255, 255, 255)
    assert red.getpixel((10, 10))[0] > 250 > 5 > red.getpixel((10, 10))[1]


def test_convert_options_reach_the_encoder() -> None:
    source = artifact("rocket.jpg")
    high = run(Convert, source, format="webp", quality=95).data
    low = run(Convert, source, format="webp", quality=20).data
    assert len(low) < len(high)
    fast = run(Convert, source, format="png", compress_level=0).data
    small = run(Convert, source, format="png", compress_level=9).data
    assert len(small) < len(fast)


def test_convert_to_the_same_format_without_options_keeps_the_bytes() -> None:
    source = artifact("rocket.jpg")
    assert run(Convert, source, format="jpg") is source


@pytest.mark.parametrize(
    "params",
    [
        {"format": "tga"},
        {"format": "jpeg", "quality": 0},
        {"format": "jpeg", "quality": 101},
        {"format": "png", "quality": 80},
        {"format": "png", "compress_level": 10},
        {"format": "jpeg", "lossless": True},
        {"format": "jpeg", "background": "not-a-colour"},
        {},
    ],
)
def test_convert_params_are_validated(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Convert.Params(**params)


# --- strip-metadata -------------------------------------------------------------------------


def test_strip_metadata_removes_exif_xmp_and_keeps_icc() -> None:
    source = artifact("xmp_test.jpg")
    original = reopen(source.data)
    assert original.getexif() and "xmp" in original.info and "icc_profile" in original.info
    written = reopen(run(StripMetadata, source).data)
    assert not written.getexif()
    assert "xmp" not in written.info
    assert written.info["icc_profile"] == original.info["icc_profile"]
    bare = reopen(run(StripMetadata, source, keep_icc=False).data)
    assert "icc_profile" not in bare.info


def test_strip_metadata_removes_comments_and_text_chunks() -> None:
    assert "comment" in reopen(artifact("hopper.jpg").data).info
    assert "comment" not in reopen(run(StripMetadata, artifact("hopper.jpg")).data).info
    png = run(Convert, run(StripMetadata, artifact("chelsea.png")), format="png")
    assert not {"xmp", "XML:com.adobe.xmp", "Comment"} & set(reopen(png.data).info)


def test_strip_metadata_leaves_the_previous_artifact_alone() -> None:
    source = artifact("xmp_test.jpg")
    run(StripMetadata, source)
    assert "exif" in source.image.info


# --- watermark ------------------------------------------------------------------------------


def changed_box(before: hotfolder.Artifact, after: hotfolder.Artifact) -> tuple[int, int, int, int]:
    box = ImageChops.difference(before.image.convert("RGB"), after.image.convert("RGB")).getbbox()
    assert box is not None, "the watermark changed nothing"
    return box


def test_text_watermark_stays_in_its_corner() -> None:
    source = artifact("coffee.png")  # 600x400
    marked = run(Watermark, source, text="© hotfolder", position="bottom-right", opacity=1.0)
    left, top, right, bottom = changed_box(source, marked)
    assert left >= 300 and top >= 300
    assert right <= 600 - 16 and bottom <= 400 - 16


def test_image_watermark_stays_in_its_corner(tmp_path: Path) -> None:
    mark = Image.new("RGBA", (40, 20), (255, 0, 0, 255))
    mark.save(tmp_path / "mark.png")
    params = Watermark.Params.model_validate(
        {"image": "mark.png", "position": "top-left", "scale": 0.1, "margin": 10},
        context={"base_dir": tmp_path},
    )
    source = artifact("coffee.png")
    marked = Watermark(params).run(NO_CONTEXT, source)
    assert changed_box(source, marked) == (10, 10, 70, 40)
    assert marked.image.getpixel((30, 20))[0] > marked.image.getpixel((30, 20))[1]


def test_tiled_watermark_covers_the_image() -> None:
    source = artifact("coffee.png")
    left, top, right, bottom = changed_box(
        source, run(Watermark, source, text="draft", position="tile")
    )
    assert left < 100 and top < 100 and right > 500 and bottom > 300


def test_watermark_keeps_alpha() -> None:
    marked = run(Watermark, artifact("logo.png"), text="x", position="center")
    assert marked.image.mode == "RGBA"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"text": "a", "image": "mark.png"},
        {"image": "missing.png"},
        {"text": "a", "opacity": 0},
        {"text": "a", "opacity": 1.5},
        {"text": "a", "position": "middle"},
        {"text": "a", "color": "no-such-colour"},
        {"text": ""},
    ],
)
def test_watermark_params_are_validated(params: dict[str, Any], tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "mark.png")
    with pytest.raises(ValidationError):
        Watermark.Params.model_validate(params, context={"base_dir": tmp_path})


@pytest.mark.parametrize("fmt", ["avif", "heic"])
def test_convert_writes_avif_and_heic(fmt: str) -> None:
    from hotfolder import imaging

    if fmt == "avif" and not imaging.HAS_AVIF:
        pytest.skip("this Pillow has no AVIF")
    result = run(Convert, artifact("hopper.jpg"), format=fmt, quality=70)
    reopened = reopen(result.data)
    assert result.format == reopened.format == {"avif": "AVIF", "heic": "HEIF"}[fmt]
    assert reopened.size == reopen((PHOTOS / "hopper.jpg").read_bytes()).size
    assert result.extension == fmt
    assert mean_abs_diff(reopened.convert("RGB"), reopen((PHOTOS / "hopper.jpg").read_bytes())) < 8


@pytest.mark.parametrize("fmt", ["avif", "heic", "tiff"])
def test_fit_to_limits_writes_only_what_venice_takes(fmt):
    from hotfolder_plugins.local.geometry import FitToLimits

    with pytest.raises(ValueError, match="fit-to-limits makes what Venice takes"):
        FitToLimits.Params.model_validate({"format": fmt})
    assert FitToLimits.Params.model_validate({"format": "webp"}).format == "WEBP"


def _camera_jpeg(orientation: int = 1) -> bytes:
    """A 6000x4000 JPEG made from a real photo, as a phone or camera writes them."""
    photo = Image.open(PHOTOS / "astronaut.png").convert("RGB").resize((6000, 4000))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", [1, 6])
def test_shrinking_a_camera_jpeg_decodes_less_and_looks_the_same(orientation):
    """Resize decodes a JPEG at a reduced DCT scale (still twice the target), then Lanczos:
    the output matches a full decode + Lanczos within a per-pixel error bound."""
    from hotfolder.artifact import Artifact
    from hotfolder_plugins.local.geometry import Resize

    data = _camera_jpeg(orientation)
    artifact = Artifact.from_bytes(data, name="camera.jpg")
    upright = (4000, 6000) if orientation == 6 else (6000, 4000)
    assert artifact.upright_size == upright and not artifact.is_decoded
    target = (683, 1024) if orientation == 6 else (1024, 683)
    reduced = artifact.image_at_least(target)
    assert reduced.width * reduced.height <= upright[0] * upright[1] // 4  # a quarter or less
    assert reduced.width >= 2 * target[0] and reduced.height >= 2 * target[1]

    op = Resize(Resize.Params(width=1024, height=1024))
    shrunk = op.run(None, Artifact.from_bytes(data, name="camera.jpg")).image
    reference = Artifact.from_bytes(data, name="camera.jpg").image.resize(target, Image.LANCZOS)
    assert shrunk.size == reference.size == target
    _assert_looks_the_same(shrunk, reference, "camera.jpg")


def _assert_looks_the_same(image: Image.Image, reference: Image.Image, what: str) -> None:
    """The bound a reduced decode must keep against a full decode + Lanczos: a mean error
    under 1 of 255 on every channel, no pixel off by more than 24."""
    diff = ImageChops.difference(image.convert("RGB"), reference.convert("RGB"))
    mean, worst = max(ImageStat.Stat(diff).mean), max(high for _, high in diff.getextrema())
    assert mean < 1.0 and worst <= 24, (
        f"{what}: differs from a full decode + Lanczos by {mean:.2f} on average and {worst} "
        "at worst (bound: < 1.0 and <= 24 of 255); the reduced decode or the turn after "
        "scaling is wrong (see imaging.decode resize_to)"
    )


def test_auto_orient_then_resize_decodes_a_turned_camera_jpeg_at_a_reduced_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """auto-orient on a 6000x4000 JPEG stored sideways (orientation 6) decodes nothing; the
    resize after it decodes once, at a reduced DCT scale, scales the pixels while they are
    still sideways and turns the small result upright."""
    from hotfolder import imaging

    decoded: list[tuple[int, int]] = []
    scaled: list[tuple[tuple[int, int], tuple[int, int]]] = []
    real_decode, real_resized = imaging.decode, imaging.resized

    def counting_decode(*args: Any, **kwargs: Any) -> Image.Image:
        image = real_decode(*args, **kwargs)
        decoded.append(image.size)
        return image

    def recording_resized(image: Image.Image, size: tuple[int, int], **kwargs: Any) -> Image.Image:
        scaled.append((image.size, size))
        return real_resized(image, size, **kwargs)

    monkeypatch.setattr(imaging, "decode", counting_decode)
    monkeypatch.setattr(imaging, "resized", recording_resized)
    data = _camera_jpeg(6)
    oriented = run(AutoOrient, hotfolder.Artifact.from_bytes(data, name="camera.jpg"))
    assert decoded == [], f"auto-orient decoded {decoded}: it should leave decoding to resize"
    resized = run(Resize, oriented, width=1024, height=1024)
    assert resized.image.size == (683, 1024)  # upright: portrait
    assert len(decoded) == 1, f"decoded {len(decoded)} times: {decoded}"
    # what was scaled: the reduced decode as stored (landscape), to the sideways target
    assert len(scaled) == 1, f"scaled {len(scaled)} times: {scaled}"
    (width, height), to = scaled[0]
    assert to == (1024, 683), f"scaled to {to}: not while still sideways"
    assert width * height <= 6000 * 4000 // 4, f"decoded at {width}x{height}: not reduced"
    assert width >= 2 * 1024 and height >= 2 * 683, f"decoded at {width}x{height}: too small"
    # the written bytes are upright, with no orientation left to apply
    written = reopen(resized.data)
    assert written.size == (683, 1024) and written.getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["fit", "exact"])
def test_resize_scales_before_the_turn_for_every_orientation(orientation: int, mode: str) -> None:
    """A shrunk JPEG is scaled while stored as it is and turned after: for each of the eight
    EXIF orientations (mirrors and quarter turns) the result is upright, the right way round,
    and matches a full decode turned first, then Lanczos."""
    from hotfolder.artifact import Artifact
    from hotfolder_plugins.local.geometry import Resize

    photo = Image.open(PHOTOS / "astronaut.png").convert("RGB").resize((1200, 800))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90, exif=exif)
    data = buffer.getvalue()
    turned = orientation in (5, 6, 7, 8)
    upright = (800, 1200) if turned else (1200, 800)
    target = (200, 300) if turned else (300, 200)
    op = Resize(Resize.Params(width=target[0], height=target[1], mode=mode))
    shrunk = op.run(NO_CONTEXT, Artifact.from_bytes(data, name=f"o{orientation}.jpg")).image
    full = Artifact.from_bytes(data, name=f"o{orientation}.jpg").image
    assert full.size == upright, f"orientation {orientation}: a whole decode is {full.size}"
    reference = full.resize(target, Image.LANCZOS)
    assert shrunk.size == target, f"orientation {orientation}: {shrunk.size}, not {target}"
    assert shrunk.getexif().get(0x0112, 1) == 1, "the orientation tag was left to apply again"
    _assert_looks_the_same(shrunk, reference, f"orientation {orientation}")


class _CountingFile:
    """A :class:`hotfolder.artifact.SourceFile` that counts how often its bytes are read."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.reads = 0

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self._data).hexdigest()

    def read_bytes(self) -> bytes:
        self.reads += 1
        return self._data

    def open(self) -> Any:
        self.reads += 1
        return io.BytesIO(self._data)


@pytest.mark.parametrize("orientation", [1, 6])
def test_auto_orient_then_resize_reads_the_file_once(orientation: int) -> None:
    """An input from a file is read again once, to decode it: auto-orient takes the
    orientation from the header checked when the file was first read, and the turned
    artifact keeps that header."""
    from hotfolder.artifact import Artifact

    data = _camera_jpeg(orientation)
    file = _CountingFile(data)
    artifact = Artifact.from_file(file, data, name="camera.jpg")
    oriented = run(AutoOrient, artifact)
    assert file.reads == 0, f"auto-orient read the file {file.reads} times"
    resized = run(Resize, oriented, width=1024, height=1024)
    assert resized.image.size == ((683, 1024) if orientation == 6 else (1024, 683))
    assert file.reads == 1, f"auto-orient + resize read the file {file.reads} times, not once"
