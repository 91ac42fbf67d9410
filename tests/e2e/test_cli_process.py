"""`hotfolder process` and friends, driven as a subprocess over the real corpus."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.cli import hotfolder
from tests.helpers.corpus import BAD, PHOTOS

pytestmark = pytest.mark.e2e

CONFIG = """
[[folders]]
path = "inbox"
chain = "web"

[chains.web]
steps = [
  { op = "auto-orient" },
  { op = "fit-to-limits" },
  { op = "convert", format = "jpeg", quality = 85 },
]
outputs = [
  { sink = "folder", path = "out", name = "{stem}.{ext}" },
  { sink = "sidecar" },
]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    return tmp_path


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "hotfolder.toml").write_text(CONFIG)
    run = hotfolder("process", str(PHOTOS), "--chain", "web", cwd=root)
    return root, run


def _outputs_by_source(root: Path) -> dict[str, Path]:
    """Each output file keyed by the name of the input it came from (read from its sidecar)."""
    found = {}
    for sidecar in (root / "out").glob("*.json"):
        data = json.loads(sidecar.read_text())
        found[Path(data["source"]).name] = root / "out" / data["output"]["file"]
    return found


def test_every_photo_gives_one_valid_output_and_sidecar(photos_run):
    root, run = photos_run
    assert run.code == 0, run.output
    photos = sorted(p.name for p in PHOTOS.iterdir() if not p.name.startswith("."))
    outputs = _outputs_by_source(root)
    assert sorted(outputs) == photos
    assert len(list((root / "out").glob("*.jpg"))) == len(photos)
    for source, out in outputs.items():
        with Image.open(out) as im:
            im.load()
            assert im.format == "JPEG", source
            assert im.mode in ("RGB", "L"), source
            assert 65_536 <= im.width * im.height <= 33_177_600, source
        sidecar = json.loads(out.with_name(out.name + ".json").read_text())
        assert sidecar["chain"] == "web"
        assert [s["op"] for s in sidecar["steps"]] == ["auto-orient", "fit-to-limits", "convert"]
        assert sidecar["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
        assert sidecar["input_sha256"] == hashlib.sha256((PHOTOS / source).read_bytes()).hexdigest()


def test_exif_rotated_inputs_come_out_upright(photos_run):
    root, _ = photos_run
    outputs = _outputs_by_source(root)
    with Image.open(outputs["hopper.jpg"]) as upright:
        reference = upright.convert("RGB")
    for name, rotation in (("hopper_orientation_3.jpg", 180), ("hopper_orientation_6.jpg", 270)):
        with Image.open(outputs[name]) as im:
            rotated = im.convert("RGB")
        assert rotated.size == reference.size
        # Upright means close to the upright reference, and far from the raw (unrotated) pixels.
        raw = rotated.rotate(-rotation, expand=True)
        assert _mean_diff(rotated, reference) < 20
        assert _mean_diff(raw, reference) > _mean_diff(rotated, reference) * 2


def test_unusual_modes_keep_their_content(photos_run):
    root, _ = photos_run
    outputs = _outputs_by_source(root)
    with Image.open(outputs["16bit.cropped.tif"]) as im:
        lo, hi = im.convert("L").getextrema()
        assert hi - lo > 50, "16-bit input lost its range"
    with Image.open(outputs["hopper.Lab.tif"]) as lab, Image.open(outputs["hopper.jpg"]) as rgb:
        assert _mean_diff(lab.convert("RGB"), rgb.convert("RGB")) < 25
    with Image.open(outputs["iss634.gif"]) as first_frame, Image.open(PHOTOS / "iss634.gif") as gif:
        assert first_frame.size[0] / first_frame.size[1] == pytest.approx(
            gif.size[0] / gif.size[1], rel=0.02
        )
        gif.seek(0)
        frame = gif.convert("RGB").resize(first_frame.size)
        assert _mean_diff(first_frame.convert("RGB"), frame) < 20


def test_bad_files_each_get_one_line_and_the_batch_goes_on(project):
    good = project / "good.png"
    Image.new("RGB", (400, 300), "teal").save(good)
    # --all: every file of the folder, not only the names a watched folder takes
    run = hotfolder("process", str(BAD), str(good), "--chain", "web", "--all", cwd=project)
    assert run.code == 1, run.output
    assert "Traceback" not in run.output
    for bad in BAD.iterdir():
        lines = [line for line in run.stderr.splitlines() if bad.name in line and "ERROR" in line]
        assert len(lines) == 1, f"{bad.name}: {lines}"
    assert (project / "out" / "good.jpg").is_file()
    assert len(list((project / "out").glob("*.jpg"))) == 1


def test_dry_run_lists_steps_and_runs_nothing(project):
    Image.new("RGB", (400, 300), "teal").save(project / "a.png")
    run = hotfolder("process", "a.png", "--chain", "web", "--dry-run", cwd=project)
    assert run.code == 0, run.output
    assert "0. auto-orient [local]" in run.stdout
    assert "2. convert [local] format='JPEG' quality=85" in run.stdout
    assert "1 input(s), 0 paid call(s)" in run.stdout
    assert not (project / "out").exists()


def test_unknown_chain_is_a_usage_error(project):
    run = hotfolder("process", "x.png", "--chain", "wbe", cwd=project)
    assert run.code == 2
    assert "did you mean 'web'?" in run.stderr


def test_validate(project):
    assert hotfolder("validate", cwd=project).code == 0
    (project / "hotfolder.toml").write_text(CONFIG.replace("quality = 85", "qualty = 85"))
    run = hotfolder("validate", cwd=project)
    assert run.code == 2
    assert "chains.web.steps[2].qualty: unknown key; did you mean 'quality'?" in run.stderr
    (project / "hotfolder.toml").write_text(CONFIG.replace("quality = 85", "quality = 0"))
    run = hotfolder("validate", cwd=project)
    assert run.code == 2
    assert "chains.web.steps[2].quality" in run.stderr and "(got 0)" in run.stderr


def test_init_writes_a_valid_config_and_never_overwrites(tmp_path):
    run = hotfolder("init", cwd=tmp_path)
    assert run.code == 0, run.output
    text = (tmp_path / "hotfolder.toml").read_text()
    assert text.startswith("# hotfolder configuration")
    assert hotfolder("validate", cwd=tmp_path).code == 0
    (tmp_path / "hotfolder.toml").write_text("# mine\n")
    again = hotfolder("init", cwd=tmp_path)
    assert again.code == 2 and "--force" in again.stderr
    assert (tmp_path / "hotfolder.toml").read_text() == "# mine\n"
    assert hotfolder("init", "--force", cwd=tmp_path).code == 0
    assert (tmp_path / "hotfolder.toml").read_text() == text


def test_plugins_lists_builtins_and_the_contrib_template(project):
    run = hotfolder("plugins", "--json", cwd=project)
    assert run.code == 0, run.output
    rows = {row["name"]: row for row in json.loads(run.stdout)}
    assert rows["hotfolder_plugins.local_ops"]["builtin"] is True
    assert "resize" in rows["hotfolder_plugins.local_ops"]["operations"]
    assert "venice.edit" in rows["hotfolder_plugins.venice_ops"]["operations"]
    assert rows["template"]["operations"] == ["template.sepia"]
    assert rows["template"]["distribution"] == "hotfolder-template"


def test_contrib_plugin_runs_in_a_chain(project):
    (project / "hotfolder.toml").write_text(
        CONFIG + '\n[chains.toned]\nsteps = [{ op = "template.sepia" }]\n'
        'outputs = [{ sink = "folder", path = "toned" }]\n'
    )
    Image.new("RGB", (300, 300), (128, 128, 128)).save(project / "gray.png")
    run = hotfolder("process", "gray.png", "--chain", "toned", cwd=project)
    assert run.code == 0, run.output
    with Image.open(project / "toned" / "gray.png") as im:
        r, g, b = im.convert("RGB").getpixel((5, 5))
    assert r > g > b


def test_disabled_plugin_is_gone(project):
    (project / "hotfolder.toml").write_text('[plugins]\ndisabled = ["template"]\n' + CONFIG)
    rows = json.loads(hotfolder("plugins", "--json", cwd=project).stdout)
    assert "template" not in {row["name"] for row in rows}
    run = hotfolder(
        "plugins",
        "--json",
        cwd=project,
        env={"HOTFOLDER_DISABLE_PLUGINS": "hotfolder_plugins.venice_ops"},
    )
    assert "hotfolder_plugins.venice_ops" not in {row["name"] for row in json.loads(run.stdout)}


def test_json_logs_are_one_object_per_line(project):
    Image.new("RGB", (400, 300), "teal").save(project / "a.png")
    run = hotfolder("--log-format", "json", "process", "a.png", "--chain", "web", cwd=project)
    assert run.code == 0, run.output
    records = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "message", "job", "file"} <= set(r) for r in records)
    assert any("a.png" in r["message"] for r in records)


def _mean_diff(a: Image.Image, b: Image.Image) -> float:
    from PIL import ImageChops, ImageStat

    if a.size != b.size:
        b = b.resize(a.size)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3
