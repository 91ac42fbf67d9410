"""Global options where users type them: before the command's name or after it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from hotfolder.daemon.journal import JOURNAL_NAME, Journal
from hotfolder.testing import make_image
from tests.helpers.cli import hotfolder

pytestmark = pytest.mark.e2e

CONFIG = """
chains.web.steps = [{ op = "resize", width = 32 }]
chains.web.outputs = [{ sink = "folder", path = "out" }]
folders = [{ path = "inbox", chain = "web" }]
"""


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, Path]:
    """A config outside the working folder, so only ``--config`` can find it."""
    project = tmp_path / "project"
    (project / "inbox").mkdir(parents=True)
    config = project / "my.toml"
    config.write_text(CONFIG)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return config, cwd


@pytest.mark.parametrize("where", ["before", "after"])
def test_validate_takes_config_on_either_side(elsewhere, where):
    config, cwd = elsewhere
    args = ["--config", str(config), "validate"]
    if where == "after":
        args = ["validate", "--config", str(config)]
    run = hotfolder(*args, cwd=cwd)
    assert run.code == 0, run.output
    assert f"{config}: valid (1 folder(s), 1 chain(s): web)" in run.stdout


def test_validate_after_the_command_reports_a_broken_config(elsewhere):
    config, cwd = elsewhere
    config.write_text(CONFIG.replace('chain = "web" }', 'chain = "wbe" }'))
    run = hotfolder("validate", "--config", str(config), cwd=cwd)
    assert run.code == 2
    assert "folders[0].chain: no chain named 'wbe'" in run.stderr
    assert "did you mean 'web'?" in run.stderr


def test_status_takes_config_and_json_after_the_command(elsewhere, tmp_path):
    config, cwd = elsewhere
    state = tmp_path / "state"
    config.write_text(f'daemon.state_dir = "{state}"\n' + CONFIG)
    Journal(state / JOURNAL_NAME).close()  # as the first `hotfolder run` leaves it
    run = hotfolder("status", "--config", str(config), "--json", cwd=cwd)
    assert run.code == 0, run.output
    data = json.loads(run.stdout)
    assert data["state_dir"] == str(state)
    assert data["daemon"] == {"running": False, "pid": None}
    [folder] = data["folders"]
    assert folder["path"] == str((config.parent / "inbox").resolve())
    assert folder["chain"] == "web"


@pytest.mark.parametrize("where", ["before", "after"])
def test_status_takes_state_dir_on_either_side(elsewhere, tmp_path, where):
    config, cwd = elsewhere
    state = tmp_path / "state-by-option"
    Journal(state / JOURNAL_NAME).close()
    options = ["--state-dir", str(state), "--config", str(config)]
    args = [*options, "status", "--json"] if where == "before" else ["status", *options, "--json"]
    run = hotfolder(*args, cwd=cwd, env={"HOTFOLDER_STATE_DIR": str(tmp_path / "not-this")})
    assert run.code == 0, run.output
    assert json.loads(run.stdout)["state_dir"] == str(state)


def test_status_reads_the_state_dir_from_the_environment(elsewhere, tmp_path):
    config, cwd = elsewhere
    state = tmp_path / "state-by-env"
    Journal(state / JOURNAL_NAME).close()
    run = hotfolder(
        "status", "--json", "-c", str(config), cwd=cwd, env={"HOTFOLDER_STATE_DIR": str(state)}
    )
    assert run.code == 0, run.output
    assert json.loads(run.stdout)["state_dir"] == str(state)


def test_process_takes_log_format_after_the_command(elsewhere):
    config, cwd = elsewhere
    photo = cwd / "photo.png"
    photo.write_bytes(make_image((64, 48)))
    run = hotfolder(
        "process", str(photo), "--chain", "web", "--log-format", "json", "--config", str(config),
        cwd=cwd,
    )  # fmt: skip
    assert run.code == 0, run.output
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert lines, "no log lines"
    messages = [line["message"] for line in lines]
    assert any("processed 1 input(s): 1 done" in m for m in messages), messages
    with Image.open(config.parent / "out" / "photo.png") as out:
        assert out.size == (32, 24)


def test_log_level_after_the_command_shows_debug_lines(elsewhere):
    config, cwd = elsewhere
    run = hotfolder("validate", "--log-level", "debug", "--config", str(config), cwd=cwd)
    assert run.code == 0, run.output
    assert f"config: {config}" in run.stderr
