"""Simulated stays simulated: an image made from a simulated answer carries the simulated mark
in its file metadata whatever the later steps and sinks do, and its cost is kept apart from
real spend in the job record, the journal and ``hotfolder status``."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import sqlite3
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

import hotfolder
from hotfolder import imaging
from hotfolder.artifact import Artifact
from hotfolder.config import validate_config
from hotfolder.daemon.journal import JOURNAL_NAME, SCHEMA, Journal, NewJob
from hotfolder.daemon.status import collect, render
from hotfolder.engine import Engine
from hotfolder.errors import OperationError
from hotfolder.job import Job, JobResult, StepRecord
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder.testing import run_chain, sandbox

MARK = imaging.SIMULATED_MARK
IDENTIFY = shutil.which("identify")
EXIFTOOL = shutil.which("exiftool")


def _encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _photo(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.effect_noise(size, 40).convert("RGB")
    image.paste((20, 120, 220), (0, 0, size[0] // 3, size[1] // 3))
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize(size))
    return image


def pillow_mark(data: bytes) -> str | None:
    """The mark where Pillow shows it for the file's format, decoded to text (or None)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.format == "PNG":
            value = image.info.get("Comment")
        elif image.format in ("JPEG", "MPO", "GIF"):
            value = image.info.get("comment")
        else:  # WEBP, TIFF: ImageDescription
            value = image.getexif().get(0x010E)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value


def exiftool_mark(path: Path) -> str:
    """What exiftool reads as the file's comment or image description."""
    assert EXIFTOOL is not None
    run = subprocess.run(
        [EXIFTOOL, "-a", "-s3", "-Comment", "-ImageDescription", str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def identify_shows_mark(path: Path) -> bool:
    """``identify -verbose`` prints the mark (as a comment or image description)."""
    assert IDENTIFY is not None
    run = subprocess.run([IDENTIFY, "-verbose", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return MARK in run.stdout


# --- the mark, format by format ---------------------------------------------------------------

FORMATS = {
    "png": (lambda: _encoded(_photo("RGBA"), "PNG"), "PNG"),
    "png-with-comment": (lambda: _encoded(_photo(), "PNG", pnginfo=_png_text()), "PNG"),
    "jpeg": (lambda: _encoded(_photo(), "JPEG", quality=85), "JPEG"),
    "jpeg-with-exif-icc-comment": (lambda: _jpeg_with_metadata(), "JPEG"),
    "webp-lossy": (lambda: _encoded(_photo(), "WEBP", quality=80), "WEBP"),
    "webp-lossy-alpha": (lambda: _encoded(_photo("RGBA"), "WEBP", quality=80), "WEBP"),
    "webp-lossless-alpha": (lambda: _encoded(_photo("RGBA"), "WEBP", lossless=True), "WEBP"),
    "webp-with-exif-xmp": (lambda: _webp_with_metadata(), "WEBP"),
    "tiff-little-endian": (lambda: _encoded(_photo(), "TIFF", compression="tiff_lzw"), "TIFF"),
    "tiff-big-endian": (lambda: _big_endian_tiff(), "TIFF"),
    "tiff-with-description": (lambda: _encoded(_photo(), "TIFF", description="a cat"), "TIFF"),
    "gif": (lambda: _encoded(_photo().convert("P"), "GIF"), "GIF"),
}


def _png_text() -> Any:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "the input's own comment")
    return info


def _exif(**tags: Any) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"  # Make
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"  # DateTimeOriginal, in a sub-IFD
    for tag, value in tags.items():
        exif[int(tag.removeprefix("t"))] = value
    return exif


def _jpeg_with_metadata() -> bytes:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _encoded(
        _photo(), "JPEG", exif=_exif().tobytes(), icc_profile=icc, comment=b"the input's comment"
    )


def _webp_with_metadata() -> bytes:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>'
    return _encoded(_photo(), "WEBP", exif=_exif(t270="a cat").tobytes(), xmp=xmp)


def _big_endian_tiff() -> bytes:
    # Pillow writes a big-endian ("MM") TIFF for big-endian 16-bit pixels only.
    gray = _photo().convert("L")
    pixels = Image.frombytes("I;16B", gray.size, bytes(b for v in gray.tobytes() for b in (v, 0)))
    data = _encoded(pixels, "TIFF")
    assert data[:2] == b"MM"
    return data


@pytest.mark.parametrize("case", sorted(FORMATS))
def test_the_mark_goes_into_each_format_without_touching_the_pixels(case, tmp_path):
    make, fmt = FORMATS[case]
    data = make()
    assert not imaging.has_simulated_mark(data)
    marked = imaging.mark_simulated(data, name=case)

    assert imaging.has_simulated_mark(marked)
    assert imaging.mark_simulated(marked) == marked  # marking again changes nothing
    assert MARK in (pillow_mark(marked) or "")
    with Image.open(io.BytesIO(data)) as before, Image.open(io.BytesIO(marked)) as after:
        assert after.format in (fmt, "MPO")
        assert after.size == before.size and after.mode == before.mode
        assert after.tobytes() == before.tobytes()  # the pixel data was not re-encoded
    # the safety gate takes the marked file as it takes any other
    limits = imaging.ImagingSection()
    assert imaging.probe(marked, limits, name=case).format == fmt
    imaging.decode(marked, limits, name=case)

    path = tmp_path / f"marked.{imaging.extension_for(fmt)}"
    path.write_bytes(marked)
    if IDENTIFY and fmt != "WEBP":  # ImageMagick 6 does not show WebP's EXIF fields
        assert identify_shows_mark(path)
    if EXIFTOOL:
        assert MARK in exiftool_mark(path)


def test_the_metadata_already_there_is_kept():
    jpeg = imaging.mark_simulated(_jpeg_with_metadata())
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.info["icc_profile"]
        assert image.getexif()[0x010F] == "Camera Maker"
        assert image.getexif().get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
        comments = [body for marker, body in image.applist if marker == "COM"]
        assert comments == [b"the input's comment", MARK.encode()]
        assert image.info["comment"] == MARK.encode()  # the last comment is the mark

    webp = imaging.mark_simulated(_webp_with_metadata())
    with Image.open(io.BytesIO(webp)) as image:
        exif = image.getexif()
        assert exif[0x010E] == f"a cat | {MARK}"
        assert exif[0x010F] == "Camera Maker"
        assert exif.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
        assert image.info["xmp"]

    tiff = imaging.mark_simulated(_encoded(_photo(), "TIFF", description="a cat"))
    with Image.open(io.BytesIO(tiff)) as image:
        assert image.tag_v2[270] == f"a cat | {MARK}"

    png = imaging.mark_simulated(_encoded(_photo(), "PNG", pnginfo=_png_text()))
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.info["Comment"] == MARK  # read last, so it is the one Pillow shows
    texts = _png_texts(png)
    assert texts == [b"Comment\x00the input's own comment", b"Comment\x00" + MARK.encode()]


def _png_texts(data: bytes) -> list[bytes]:
    found, position = [], 8
    while position < len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if kind == b"tEXt":
            found.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    return found


def test_an_mpo_keeps_its_second_image():
    buffer = io.BytesIO()
    _photo().save(buffer, "MPO", save_all=True, append_images=[_photo().rotate(90)])
    data = buffer.getvalue()
    marked = imaging.mark_simulated(data)
    assert imaging.has_simulated_mark(marked)
    with Image.open(io.BytesIO(data)) as before, Image.open(io.BytesIO(marked)) as after:
        assert after.format == "MPO" and after.n_frames == before.n_frames == 2
        after.seek(1)
        before.seek(1)
        assert after.tobytes() == before.tobytes()  # the offsets to the second image hold


def test_a_bmp_cannot_hold_the_mark_and_is_left_as_it_is():
    data = _encoded(_photo(), "BMP")
    assert imaging.mark_simulated(data, name="x.bmp") == data
    assert not imaging.has_simulated_mark(data)


def test_a_damaged_file_is_an_error_not_an_unmarked_output():
    data = _encoded(_photo(), "PNG")
    with pytest.raises(OperationError, match="cannot write the simulated mark"):
        imaging.mark_simulated(data[:40], name="cut.png")
    assert not imaging.has_simulated_mark(data[:40])


# --- the artifact: the fact travels, the bytes carry the mark --------------------------------


def test_a_simulated_artifact_marks_its_bytes_passed_on_or_encoded():
    png = _encoded(_photo("RGBA"), "PNG")
    plain = Artifact.from_bytes(png, name="a.png")
    assert plain.data == png and not plain.simulated

    passed_on = plain.with_data(png, info={"simulated": True})
    assert passed_on.simulated and imaging.has_simulated_mark(passed_on.data)
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF", "GIF"):
        encoded = passed_on.with_format(fmt)
        assert encoded.simulated, fmt
        assert MARK in (pillow_mark(encoded.data) or ""), fmt
    resized = passed_on.with_image(passed_on.image.resize((10, 10)))
    assert imaging.has_simulated_mark(resized.data)


def test_info_is_the_new_artifacts_own():
    first = Artifact.from_bytes(_encoded(_photo(), "PNG"), name="a.png").with_info(note="x")
    second = first.with_image(first.image)
    second.info["simulated"] = True
    assert "simulated" not in first.info
    assert first.with_info(simulated=True).info == {"note": "x", "simulated": True}
    assert first.info == {"note": "x"}


# --- chains through the real engine and the sandbox ------------------------------------------

CHAINS = {
    "jpeg": [{"op": "resize", "width": 120}, {"op": "convert", "format": "jpeg"}],
    "png": [{"op": "convert", "format": "png"}],
    "passed-on": [],
    "webp-stripped": [{"op": "strip-metadata"}, {"op": "convert", "format": "webp"}],
    "tiff-watermarked": [
        {"op": "watermark", "text": "proof"},
        {"op": "convert", "format": "tiff"},
    ],
    "fit-to-limits": [{"op": "fit-to-limits", "format": "jpeg", "max_bytes": 200_000}],
    "gif": [{"op": "auto-orient"}, {"op": "convert", "format": "gif"}],
}


@pytest.fixture(scope="module")
def venice():
    with sandbox(requests_per_minute=6000) as handle:
        yield handle


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_a_chain_after_a_simulated_step_writes_a_marked_file(case, venice, tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(_encoded(Image.effect_noise((320, 240), 30).convert("RGB"), "PNG"))
    steps = [{"op": "venice.background-remove"}, *CHAINS[case]]
    result = run_chain(source, steps, out_dir=tmp_path / "out", sandbox=venice)

    [output] = result.outputs
    data = Path(output.location).read_bytes()
    assert imaging.has_simulated_mark(data)
    assert MARK in (pillow_mark(data) or "")
    paid = result.steps[0]
    assert paid.simulated and paid.cost_usd and paid.cost_usd > 0
    assert not any(step.simulated for step in result.steps[1:])  # only paid steps say so
    assert result.cost_usd == 0.0
    assert result.simulated_usd == pytest.approx(paid.cost_usd)
    if IDENTIFY and not output.location.endswith(".webp"):
        assert identify_shows_mark(Path(output.location))
    if EXIFTOOL:
        assert MARK in exiftool_mark(Path(output.location))


def test_the_sidecar_says_simulated_and_hashes_the_marked_file(venice, tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(_encoded(Image.effect_noise((320, 240), 30).convert("RGB"), "PNG"))
    outputs = [{"sink": "folder", "path": str(tmp_path / "out")}, {"sink": "sidecar"}]
    steps = [{"op": "venice.background-remove"}, {"op": "convert", "format": "jpeg"}]
    result = run_chain(source, steps, outputs=outputs, sandbox=venice)
    image, sidecar = (Path(o.location) for o in result.outputs)
    record = json.loads(sidecar.read_text())
    assert record["simulated"] is True
    assert record["steps"][0]["simulated"] is True and record["steps"][1]["simulated"] is False
    assert record["simulated_usd"] == record["cost_usd"] > 0
    assert record["output"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert imaging.has_simulated_mark(image.read_bytes())


def test_a_real_answer_is_not_marked(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(_encoded(_photo(), "PNG"))
    result = run_chain(source, [{"op": "convert", "format": "jpeg"}], out_dir=tmp_path / "out")
    data = Path(result.outputs[0].location).read_bytes()
    assert not imaging.has_simulated_mark(data)
    assert not any(step.simulated for step in result.steps)


# --- the engine: a step that drops the fact, a checkpoint from before ------------------------


class SimulatedInvert(hotfolder.Operation):
    """A paid step answered by a simulated server, as venice_ops reports one."""

    name = "simulated-invert"
    paid = True

    async def run(self, context, image):
        context.record.cost_usd = 0.25
        inverted = ImageOps.invert(image.image.convert("RGB"))
        return image.with_image(inverted, format="PNG", info={**image.info, "simulated": True})


class Forgetful(hotfolder.Operation):
    """A step that builds a new artifact from scratch, dropping the input's info."""

    name = "forgetful"

    def run(self, context, image):
        return Artifact.from_image(image.image.copy(), name=image.name, format="JPEG")


class Plugin:
    @hotfolder.hookimpl
    def hotfolder_register_operations(self, register):
        register(SimulatedInvert)
        register(Forgetful)


def _engine_run(tmp_path: Path, checkpoints: Path | None) -> JobResult:
    pm = make_plugin_manager(load_entrypoints=False, extra=[(Plugin(), "simulated")])
    registry = build_registry(pm)
    raw = {
        "chains": {
            "c": {
                "steps": [{"op": "simulated-invert"}, {"op": "forgetful"}],
                "outputs": [{"sink": "folder", "path": str(tmp_path / "out"), "name": "{n}.{ext}"}],
            }
        }
    }
    engine = Engine(Runtime(validate_config(raw, registry), pm, registry))
    job = Job(source=str(tmp_path / "in.png"), chain="c", checkpoint_dir=checkpoints)
    return asyncio.run(engine.run(job))


def test_a_step_that_drops_the_fact_does_not_drop_the_mark(tmp_path):
    Image.new("RGB", (80, 60), (10, 20, 30)).save(tmp_path / "in.png")
    result = _engine_run(tmp_path, None)
    assert [s.simulated for s in result.steps] == [True, False]
    assert (result.cost_usd, result.simulated_usd) == (0.0, 0.25)
    data = Path(result.outputs[0].location).read_bytes()
    assert pillow_mark(data) == MARK


def test_a_reused_checkpoint_stays_simulated_even_from_before_the_record_said_so(tmp_path):
    Image.new("RGB", (80, 60), (10, 20, 30)).save(tmp_path / "in.png")
    checkpoints = tmp_path / "checkpoints"
    _engine_run(tmp_path, checkpoints)
    meta_path = checkpoints / "step-0.json"
    meta = json.loads(meta_path.read_text())
    assert meta["record"]["simulated"] is True and meta["info"]["simulated"] is True
    del meta["record"]["simulated"]  # as a checkpoint from an older hotfolder has it
    meta_path.write_text(json.dumps(meta))
    saved = (checkpoints / meta["file"]).read_bytes()
    assert imaging.has_simulated_mark(saved)  # the checkpoint's file carries the mark too

    again = _engine_run(tmp_path, checkpoints)
    assert again.steps[0].from_checkpoint and again.steps[0].simulated
    assert (again.cost_usd, again.simulated_usd) == (0.0, 0.0)  # nothing paid or simulated now
    assert pillow_mark(Path(again.outputs[0].location).read_bytes()) == MARK


def test_job_result_keeps_real_and_simulated_cost_apart():
    steps = [
        StepRecord(0, "venice.upscale", {}, paid=True, cost_usd=0.5),
        StepRecord(1, "venice.edit", {}, paid=True, cost_usd=0.25, simulated=True),
        StepRecord(2, "venice.edit", {}, paid=True, cost_usd=1.0, from_checkpoint=True),
        StepRecord(3, "resize", {}),
    ]
    result = JobResult(Job("a.png", "c"), "0" * 64, steps, [], 1.0)
    assert (result.cost_usd, result.simulated_usd) == (0.5, 0.25)


# --- status: spent today, and simulated apart --------------------------------------------------


def test_status_shows_simulated_spend_apart(tmp_path):
    journal = Journal(tmp_path / JOURNAL_NAME)
    journal.add([NewJob("a", "/in", "a.png", "c"), NewJob("b", "/in", "b.png", "c")])
    now = time.time()
    journal.update("a", state="done", finished=now, cost_usd=0.0, simulated_usd=6.75)
    journal.update("b", state="done", finished=now, cost_usd=0.0, simulated_usd=0.0)
    journal.close()

    status = collect(tmp_path, None)
    assert status["spent_today_usd"] == 0.0
    assert status["simulated_today_usd"] == 6.75
    assert "spent today: $0.00 (and $6.75 simulated)" in render(status).splitlines()


def test_status_says_nothing_of_simulation_when_there_was_none(tmp_path):
    journal = Journal(tmp_path / JOURNAL_NAME)
    journal.add([NewJob("a", "/in", "a.png", "c")])
    journal.update("a", state="done", finished=time.time(), cost_usd=1.5, simulated_usd=0.0)
    journal.close()
    status = collect(tmp_path, None)
    assert (status["spent_today_usd"], status["simulated_today_usd"]) == (1.5, 0.0)
    assert "spent today: $1.50" in render(status).splitlines()


def test_status_reads_a_journal_from_before_simulated_cost(tmp_path):
    path = tmp_path / JOURNAL_NAME
    db = _journal_v1(path)
    db.execute(
        "INSERT INTO jobs (id, folder, name, chain, state, created, updated, finished, cost_usd)"
        " VALUES ('a', '/in', 'a.png', 'c', 'done', 0, 0, ?, 2.0)",
        (time.time(),),
    )
    db.commit()
    db.close()
    status = collect(tmp_path, None)  # read-only: the journal is not migrated
    assert (status["spent_today_usd"], status["simulated_today_usd"]) == (2.0, 0.0)
    assert "spent today: $2.00" in render(status).splitlines()


def _journal_v1(path: Path) -> sqlite3.Connection:
    """A journal file as hotfolder wrote it before schema v2."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA[0])
    db.execute("PRAGMA user_version=1")
    return db
