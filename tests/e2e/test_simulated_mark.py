"""Simulated stays simulated, through the real CLI and the real daemon: an output made from
the sandbox's answers carries the simulated mark in its file (no sidecar needed), and
``hotfolder status`` tells simulated spend from real spend."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from hotfolder.imaging import SIMULATED_MARK, has_simulated_mark
from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.cli import hotfolder
from tests.helpers.daemon import Daemon, cutout_config, files_under, noise_photos

pytestmark = pytest.mark.e2e

IDENTIFY = shutil.which("identify")
EXIFTOOL = shutil.which("exiftool")

CONFIG = """
[venice]
requests_per_minute = 600

[chains.cutout-jpeg]
steps = [
  { op = "venice.background-remove" },
  { op = "resize", width = 200 },
  { op = "convert", format = "jpeg", quality = 80 },
]
outputs = [{ sink = "folder", path = "out" }]

[chains.cutout-stripped-webp]
steps = [
  { op = "venice.background-remove" },
  { op = "strip-metadata" },
  { op = "convert", format = "webp" },
]
outputs = [{ sink = "folder", path = "out" }]
"""


def _mark_in(path: Path) -> str | None:
    """Where Pillow shows the mark: the JPEG comment, or the WebP's EXIF ImageDescription."""
    with Image.open(path) as image:
        image.load()
        value = image.info.get("comment") or image.getexif().get(0x010E)
    return value.decode("latin-1") if isinstance(value, bytes) else value


@pytest.mark.parametrize(
    ("chain", "ext"), [("cutout-jpeg", "jpg"), ("cutout-stripped-webp", "webp")]
)
def test_process_with_sandbox_marks_the_output_file_without_a_sidecar(tmp_path, chain, ext):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    Image.effect_noise((320, 240), 40).convert("RGB").save(tmp_path / "shot.png")
    run = hotfolder("process", "shot.png", "--chain", chain, "--sandbox", cwd=tmp_path)
    assert run.code == 0, run.output[-3000:]

    [output] = files_under(tmp_path / "out")
    assert output.name == f"shot.{ext}"
    assert not list((tmp_path / "out").glob("*.json"))  # no sidecar: the file says it alone
    assert _mark_in(output) == SIMULATED_MARK
    assert has_simulated_mark(output.read_bytes())
    if IDENTIFY and ext == "jpg":
        shown = subprocess.run([IDENTIFY, "-verbose", str(output)], capture_output=True, text=True)
        assert f"comment: {SIMULATED_MARK}" in shown.stdout
    if EXIFTOOL:
        tags = ["-Comment"] if ext == "jpg" else ["-ImageDescription"]
        shown = subprocess.run(
            [EXIFTOOL, "-s3", *tags, str(output)], capture_output=True, text=True
        )
        assert shown.stdout.strip() == SIMULATED_MARK


def test_process_without_sandbox_leaves_local_work_unmarked(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(
        '[chains.local]\nsteps = [{ op = "convert", format = "jpeg" }]\n'
        'outputs = [{ sink = "folder", path = "out" }]\n'
    )
    Image.effect_noise((320, 240), 40).convert("RGB").save(tmp_path / "shot.png")
    run = hotfolder("process", "shot.png", "--chain", "local", cwd=tmp_path)
    assert run.code == 0, run.output[-3000:]
    assert not has_simulated_mark((tmp_path / "out" / "shot.jpg").read_bytes())


DAEMON_CONFIG = cutout_config(
    '{ op = "venice.background-remove" }, { op = "convert", format = "jpeg" }'
)


def test_the_daemon_journals_simulated_spend_apart_and_status_says_so(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(DAEMON_CONFIG)
    (tmp_path / "inbox").mkdir()
    staging = tmp_path / "staging"
    noise_photos(staging, 2, prefix="shot", seed=50)
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            for n in range(2):
                subprocess.run(["cp", str(staging / f"shot{n}.png"), "inbox/"], cwd=tmp_path)
            rows = daemon.wait_states(done=2)
            text = daemon.cli("status")
            as_json = daemon.cli("status", "--json")
        paid = sandbox.stats()["paid_total"]

    assert paid == 2
    assert all(r["cost_usd"] == 0 and r["simulated_usd"] > 0 for r in rows), rows
    simulated = round(sum(r["simulated_usd"] for r in rows), 6)

    assert text.returncode == 0, text.stderr
    assert f"spent today: $0.00 (and ${simulated:.2f} simulated)" in text.stdout.splitlines()
    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)
    assert status["spent_today_usd"] == 0
    assert status["simulated_today_usd"] == pytest.approx(simulated)

    outputs = files_under(tmp_path / "out")
    assert len(outputs) == 2
    for output in outputs:
        with Image.open(io.BytesIO(output.read_bytes())) as image:
            assert image.format == "JPEG"
            assert image.info["comment"] == SIMULATED_MARK.encode()
