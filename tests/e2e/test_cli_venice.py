"""The Venice operations through the real CLI: --sandbox, dry-run costs, models, balance,
and an API key that never shows up in any log line."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.cli import hotfolder
from tests.helpers.corpus import BAD, PHOTOS

pytestmark = pytest.mark.e2e

CONFIG = """
[venice]
api_key = { env = "VENICE_API_KEY" }
requests_per_minute = 600

[chains.all-four]
steps = [
  { op = "venice.background-remove", fit = true },
  { op = "venice.edit", prompt = "a warm studio light", output_format = "png" },
  { op = "venice.multi-edit", prompt = "blend the texture in", with = ["texture.png"] },
  { op = "venice.upscale", scale = 2 },
]
outputs = [{ sink = "folder", path = "out" }, { sink = "sidecar" }]

[chains.upscale]
steps = [{ op = "venice.upscale", scale = 2, fit = true }]
outputs = [{ sink = "folder", path = "up" }]
"""

SECRET = "vk-test-5f2c9e7a1b3d4e6f8a0b2c4d6e8f0a1b"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    Image.new("RGB", (300, 300), (180, 160, 120)).save(tmp_path / "texture.png")
    return tmp_path


def _sidecars(folder: Path) -> dict[str, dict]:
    return {
        Path(d["source"]).name: d
        for d in (json.loads(p.read_text()) for p in folder.glob("*.json"))
    }


def test_all_four_endpoints_over_the_photos_with_sandbox(project):
    run = hotfolder(
        "process", str(PHOTOS), "--chain", "all-four", "--sandbox", cwd=project, timeout=600
    )
    assert run.code == 0, run.output[-3000:]
    assert "local sandbox" in run.stderr
    sidecars = _sidecars(project / "out")
    photos = sorted(p.name for p in PHOTOS.iterdir())
    assert sorted(sidecars) == photos
    for name, data in sidecars.items():
        assert data["simulated"] is True, name
        assert [s["op"] for s in data["steps"]] == [
            "venice.background-remove", "venice.edit", "venice.multi-edit", "venice.upscale",
        ]  # fmt: skip
        assert all(s["request_ids"] for s in data["steps"]), name
        assert data["cost_usd"] > 0
        with Image.open(project / "out" / data["output"]["file"]) as im:
            im.load()
            assert im.format == "PNG"
            assert im.width * im.height >= 2 * 2 * 65_536 * 0.99  # upscaled 2x from >= 65,536 px


def test_dry_run_shows_paid_calls_and_cost(project):
    Image.new("RGB", (600, 400), "navy").save(project / "a.png")
    run = hotfolder("process", "a.png", "--chain", "all-four", "--dry-run", cwd=project)
    assert run.code == 0, run.output
    assert "0. venice.background-remove [paid call ~$" in run.stdout
    assert "3. venice.upscale [paid call ~$" in run.stdout
    assert "1 input(s), 4 paid call(s), estimated $" in run.stdout


def test_bad_files_never_reach_the_api(project):
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_BASE_URL": sandbox.base_url, "VENICE_API_KEY": SECRET}
        run = hotfolder(  # --all: every file of the folder, not only image names
            "process", str(BAD), "--chain", "upscale", "--all", cwd=project, env=env
        )
        stats = sandbox.stats()
    assert run.code == 1
    assert stats["requests_total"] == 0, stats
    for bad in BAD.iterdir():
        assert bad.name in run.stderr


def test_the_api_key_never_appears_in_any_log(project):
    Image.new("RGB", (400, 300), "olive").save(project / "a.png")
    with start_sandbox(SandboxConfig(requests_per_minute=600, valid_keys=[SECRET])) as sandbox:
        env = {"VENICE_BASE_URL": sandbox.base_url, "VENICE_API_KEY": SECRET}
        runs = [
            hotfolder(
                "--log-level",
                "DEBUG",
                "process",
                "a.png",
                "--chain",
                "upscale",
                cwd=project,
                env=env,
            ),
            hotfolder(
                "--log-format",
                "json",
                "--log-level",
                "DEBUG",
                "process",
                "a.png",
                "--chain",
                "upscale",
                cwd=project,
                env=env,
            ),
            hotfolder("--log-level", "DEBUG", "balance", cwd=project, env=env),
            # A key the server refuses: the 401 path (and its probes) must not echo it either.
            hotfolder(
                "--log-level",
                "DEBUG",
                "process",
                "a.png",
                "--chain",
                "upscale",
                "--wait-paused",
                "1.5",
                cwd=project,
                env={**env, "VENICE_API_KEY": SECRET[::-1]},
            ),
        ]
        stats = sandbox.stats()
    assert [r.code for r in runs] == [0, 0, 0, 1], [r.output[-500:] for r in runs]
    assert "VENICE_API_KEY" in runs[3].stderr and "paused" in runs[3].stderr
    assert stats["paid_total"] == 2
    for run in runs:
        assert SECRET not in run.output
        assert SECRET[::-1] not in run.output
    for path in project.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_models_and_balance_commands(project):
    with start_sandbox(SandboxConfig(balance_usd=12.5)) as sandbox:
        env = {"VENICE_BASE_URL": sandbox.base_url, "VENICE_API_KEY": SECRET}
        models = hotfolder("models", "--json", cwd=project, env=env)
        balance = hotfolder("balance", "--json", cwd=project, env=env)
    assert models.code == 0, models.output
    rows = json.loads(models.stdout)
    ids = {row["id"] for row in rows}
    assert "firered-image-edit" in ids
    assert balance.code == 0, balance.output
    assert "12.5" in balance.stdout


def test_a_job_manifest_drives_multi_edit_with_overrides(project):
    examples = Path(__file__).resolve().parents[2] / "config" / "examples"
    (project / "restyle.job.toml").write_text((examples / "restyle.job.toml").read_text())
    with (project / "hotfolder.toml").open("a") as f:
        f.write(
            "\n[chains.restyle]\n"
            'steps = [{ op = "venice.multi-edit", prompt = "placeholder", fit = true }]\n'
            'outputs = [{ sink = "folder", path = "restyled" }, { sink = "sidecar" }]\n'
        )
    run = hotfolder("process", "restyle.job.toml", "--sandbox", cwd=project)
    assert run.code == 0, run.output[-2000:]
    (sidecar,) = (project / "restyled").glob("*.json")
    data = json.loads(sidecar.read_text())
    assert data["chain"] == "restyle"  # the manifest's chain, no --chain needed
    (step,) = data["steps"]
    assert step["params"]["prompt"].startswith("turn the first image into a linen")
    with Image.open(project / "restyled" / data["output"]["file"]) as im:
        assert im.width * im.height >= 65_536


def test_the_sandbox_command_on_a_taken_port_says_so_in_one_line(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = hotfolder("sandbox", "--port", str(port), cwd=project, timeout=60)
    assert run.code == 2, run.output
    assert "Traceback" not in run.output
    assert "cannot listen" in run.stderr and "--port" in run.stderr


def test_old_venice_time_keys_still_load_and_say_what_to_rename(project):
    config = project / "hotfolder.toml"
    config.write_text(config.read_text().replace("requests_per_minute = 600", "timeout_s = 90"))
    run = hotfolder("validate", cwd=project)
    assert run.code == 0, run.output
    assert "[venice] timeout_s is deprecated" in run.stderr
    assert "rename it to timeout_seconds" in run.stderr

    config.write_text(
        config.read_text().replace("timeout_s = 90", "timeout_s = 90\ntimeout_seconds = 90")
    )
    both = hotfolder("validate", cwd=project)
    assert both.code == 2
    assert "venice.timeout_s: unknown key" in both.stderr


def test_models_without_a_key_shows_the_snapshot_and_sends_nothing(project):
    with start_sandbox(SandboxConfig()) as sandbox:
        run = hotfolder("models", cwd=project, env={"VENICE_BASE_URL": sandbox.base_url})
        stats = sandbox.stats()
    assert run.code == 0, run.output
    assert "Venice models (snapshot)" in run.stdout and "firered-image-edit" in run.stdout
    assert "no Venice API key" in run.stderr
    assert stats["requests_total"] == 0


def test_models_and_balance_with_sandbox_say_it_is_the_sandbox(project):
    models = hotfolder("models", "--sandbox", cwd=project)
    balance = hotfolder("balance", "--sandbox", cwd=project)
    assert models.code == balance.code == 0, models.output + balance.output
    assert "Venice models (the local sandbox)" in models.stdout
    assert "the local sandbox (simulated" in balance.stdout


COPIES = 24


def test_copies_of_one_image_in_one_run_each_get_their_own_paid_result(project):
    """Byte-identical inputs run at once have one checkpoint folder each: none loses its
    checkpoint to its twin's clean-up, every one is paid once and gives its own output."""
    (project / "in").mkdir()
    Image.new("RGB", (400, 300), "olive").save(project / "in" / "a.png")
    for n in range(1, COPIES):
        subprocess.run(["cp", "a.png", f"copy-{n}.png"], cwd=project / "in", check=True)
    with start_sandbox(SandboxConfig(requests_per_minute=600, latency_ms=200)) as sandbox:
        env = {"VENICE_BASE_URL": sandbox.base_url, "VENICE_API_KEY": SECRET}
        run = hotfolder("process", "in", "--chain", "upscale", "--jobs", "8", cwd=project, env=env)
        stats = sandbox.stats()
    assert run.code == 0, run.output[-3000:]
    assert "Traceback" not in run.output
    outputs = sorted(p.name for p in (project / "up").iterdir())
    assert outputs == sorted(["a.png", *(f"copy-{n}.png" for n in range(1, COPIES))])
    assert stats["paid_total"] == COPIES
    for out in outputs:
        with Image.open(project / "up" / out) as im:
            assert im.size == (800, 600)
    checkpoints = project / ".xdg-cache" / "hotfolder" / "checkpoints"
    assert not checkpoints.exists() or not list(checkpoints.iterdir())  # all done: cleaned up
