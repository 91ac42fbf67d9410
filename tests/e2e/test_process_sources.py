"""What `hotfolder process` takes: from a folder only the images a watched folder would take
(`--all` for every file), a file named always, never the chain's own outputs; manifests with
their own chain in `--dry-run`, and `--chain` against a manifest's chain is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.cli import hotfolder

pytestmark = pytest.mark.e2e

CONFIG = """
[chains.web]
steps = [{ op = "convert", format = "png" }]
outputs = [{ sink = "folder", path = "photos/out", name = "{stem}.{ext}" }, { sink = "sidecar" }]

[chains.paid]
steps = [{ op = "venice.upscale", scale = 2 }]
outputs = [{ sink = "folder", path = "paid" }]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (300, 200), "teal").save(photos / "coins.png")
    (photos / "coins.xmp").write_text("<x:xmpmeta/>")
    (photos / "readme.txt").write_text("hello")
    (photos / "hotfolder.toml").write_text(CONFIG)
    return tmp_path


def _inputs(dry_run_stdout: str) -> str:
    return dry_run_stdout.strip().splitlines()[-1]


def test_a_folder_gives_only_its_images(project):
    dry = hotfolder("process", "photos", "--chain", "web", "--dry-run", cwd=project)
    assert dry.code == 0, dry.output
    assert _inputs(dry.stdout).startswith("1 input(s)"), dry.stdout
    assert "photos/coins.png (chain web)" in dry.stdout

    run = hotfolder("process", "photos", "--chain", "web", cwd=project)
    assert run.code == 0, run.output
    assert "processed 1 input(s): 1 done" in run.stderr
    assert sorted(p.name for p in (project / "photos/out").iterdir()) == [
        "coins.png",
        "coins.png.json",
    ]


def test_all_takes_every_file_and_a_named_file_is_always_taken(project):
    dry = hotfolder("process", "photos", "--chain", "web", "--all", "--dry-run", cwd=project)
    assert dry.code == 0, dry.output
    assert _inputs(dry.stdout).startswith("4 input(s)"), dry.stdout

    named = hotfolder("process", "photos/readme.txt", "--chain", "web", cwd=project)
    assert named.code == 1, named.output  # taken, and refused by the imaging gate
    assert "readme.txt" in named.stderr


def test_a_recursive_run_never_takes_its_own_outputs(project):
    first = hotfolder("process", "photos", "-r", "--chain", "web", cwd=project)
    assert first.code == 0, first.output
    again = hotfolder("process", "photos", "-r", "--chain", "web", "--dry-run", cwd=project)
    assert again.code == 0, again.output
    assert _inputs(again.stdout).startswith("1 input(s)"), again.stdout
    assert "photos/out" not in again.stdout


def test_dry_run_of_a_manifest_shows_its_chain_and_cost(project):
    (project / "photos/set.job.toml").write_text('images = ["coins.png"]\nchain = "paid"\n')
    for args in ((), ("--chain", "paid")):
        dry = hotfolder("process", "photos/set.job.toml", *args, "--dry-run", cwd=project)
        assert dry.code == 0, dry.output
        assert "photos/set.job.toml (chain paid)" in dry.stdout
        assert "venice.upscale [paid call ~$" in dry.stdout
        assert _inputs(dry.stdout).startswith("1 input(s), 1 paid call(s), estimated $0.0")


def test_chain_against_a_manifests_chain_is_an_error(project):
    (project / "photos/set.job.toml").write_text('images = ["coins.png"]\nchain = "paid"\n')
    for args in (("--dry-run",), ()):
        run = hotfolder("process", "photos/set.job.toml", "--chain", "web", *args, cwd=project)
        assert run.code == 2, run.output
        assert "names chain 'paid', but --chain says 'web'" in run.stderr
    assert not (project / "photos/out").exists() and not (project / "paid").exists()


def test_a_plain_input_without_chain_is_a_usage_error(project):
    run = hotfolder("process", "photos/coins.png", cwd=project)
    assert run.code == 2, run.output
    assert "no --chain given" in run.stderr


def test_data_uri_inputs_are_shortened_in_logs_and_sidecars(project):
    import base64
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    run = hotfolder("process", uri, "--chain", "web", cwd=project)
    assert run.code == 0, run.output
    assert uri not in run.stderr and "chars)" in run.stderr
    [sidecar] = (project / "photos/out").glob("*.json")
    record = json.loads(sidecar.read_text())
    assert record["source"].startswith("data:image/png;base64,")
    assert len(record["source"]) < 80 and record["archived"] is None


def test_json_log_lines_carry_the_jobs_fields(project):
    run = hotfolder(
        "--log-format", "json", "process", "photos/coins.png", "--chain", "web", cwd=project
    )
    assert run.code == 0, run.output
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    done = next(line for line in lines if " done in " in line["message"])
    assert done["file"] == "photos/coins.png" and done["chain"] == "web" and done["job"]
    assert {"folder", "step", "hint", "level", "time"} <= set(done)
    summary = next(line for line in lines if "processed 1 input(s)" in line["message"])
    assert summary["job"] is None


def test_a_json_error_line_carries_the_step_and_the_hint(project):
    (project / "hotfolder.toml").write_text(
        CONFIG + '\n[chains.tiny]\nsteps = [{ op = "resize", width = 50 }]\n'
        'outputs = [{ sink = "folder", path = "tiny" }]\n[imaging]\nmax_pixels = 1000\n'
    )
    run = hotfolder(
        "--log-format", "json", "process", "photos/coins.png", "--chain", "tiny", cwd=project
    )
    assert run.code == 1, run.output
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    error = next(line for line in lines if line["level"] == "ERROR")
    assert error["file"] == "photos/coins.png" and error["chain"] == "tiny"
    assert error["hint"], error
