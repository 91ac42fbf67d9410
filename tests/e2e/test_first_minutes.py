"""The first minutes of a new user, with the real CLI and the real daemon: `init` then `run`,
the status command `make run` prints, the shipped try-it image, `validate` naming every
problem, nested folders each with their own chain, names in the done line and the sidecar,
and a second Ctrl-C that stops at once."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from hotfolder.config import load_config
from hotfolder.daemon.settings import DaemonSection
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.cli import hotfolder
from tests.helpers.daemon import (
    FAST_DAEMON,
    Daemon,
    convert_to_png_config,
    cutout_config,
    files_under,
    wait_for,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_init_then_run_takes_an_image_and_does_not_enlarge_it(tmp_path):
    made = hotfolder("init", cwd=tmp_path)
    assert made.code == 0, made.output
    assert (tmp_path / "inbox").is_dir(), made.output
    with Daemon(tmp_path) as daemon:
        daemon.start()
        Image.new("RGB", (128, 96), "orange").save(tmp_path / "inbox" / "small.png")
        [row] = daemon.wait_states(done=1)
    assert row["chain"] == "web"
    [out] = files_under(tmp_path / "outbox" / "web", "*.jpg")
    with Image.open(out) as image:
        assert image.size == (128, 96)


def test_the_status_command_works_from_elsewhere_when_the_config_names_its_state_dir(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "inbox").mkdir()
    config = project / "hotfolder.toml"
    config.write_text(convert_to_png_config().replace("[daemon]", '[daemon]\nstate_dir = "state"'))
    with Daemon(project) as daemon:  # its state dir is project/state, as the config says
        daemon.start()
        Image.new("RGB", (64, 64), "blue").save(project / "inbox" / "a.png")
        daemon.wait_states(done=1)
        elsewhere = tmp_path / "another-terminal"
        elsewhere.mkdir()
        status = hotfolder("--config", str(config), "status", "--json", cwd=elsewhere)
    assert status.code == 0, status.output
    [folder] = json.loads(status.stdout)["folders"]
    assert folder["counts"]["done"] == 1


def test_make_run_prints_a_status_command_that_the_shipped_config_supports():
    dry = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "make status" in dry.stdout and "cp examples/try-it.jpg inbox/" in dry.stdout
    assert "--state-dir" not in dry.stdout  # the config names it, so `status` finds it too
    status = subprocess.run(
        ["make", "-n", "status"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "--config config/hotfolder.toml status" in status.stdout
    registry = build_registry(make_plugin_manager(load_entrypoints=False))
    config = load_config(ROOT / "config" / "hotfolder.toml", registry)
    state_dir = config.section(DaemonSection).state_dir
    assert state_dir is not None and state_dir.resolve() == ROOT / "state"
    with Image.open(ROOT / "examples" / "try-it.jpg") as image:
        assert image.format == "JPEG" and image.width * image.height >= 65_536


def test_validate_names_three_problems_in_three_sections(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(
        """
[venice]
requests_per_minute = "lots"

[[folders]]
path = "inbox"
chain = "web"

[[folders]]
path = "inbox"
chain = "web"

[chains.web]
steps = [{ op = "resize", widht = 100 }]
outputs = [{ sink = "folder", path = "out" }]
"""
    )
    run = hotfolder("validate", cwd=tmp_path)
    assert run.code == 2, run.output
    assert "venice.requests_per_minute" in run.stderr
    assert "folders[1]: " in run.stderr and "listed twice" in run.stderr
    assert "chains.web.steps[0].widht: unknown key; did you mean 'width'?" in run.stderr


NESTED = (
    FAST_DAEMON
    + """
[[folders]]
path = "inbox"
chain = "web"
recursive = true
quiet_seconds = 0.2

[[folders]]
path = "inbox/products"
chain = "web2"
quiet_seconds = 0.2

[chains.web]
steps = [{ op = "convert", format = "png" }]
outputs = [{ sink = "folder", path = "out/web", name = "{stem}.{ext}" }, { sink = "sidecar" }]

[chains.web2]
steps = [{ op = "convert", format = "webp" }]
outputs = [{ sink = "folder", path = "out/web2", name = "{stem}.{ext}" }]
"""
)


def test_each_file_goes_through_its_own_folders_chain_and_is_named_where_it_was(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(NESTED)
    (tmp_path / "inbox" / "products").mkdir(parents=True)
    (tmp_path / "inbox" / "misc").mkdir()
    with Daemon(tmp_path) as daemon:
        daemon.start()
        Image.new("RGB", (64, 64), "red").save(tmp_path / "inbox" / "top.jpg")
        Image.new("RGB", (64, 64), "green").save(tmp_path / "inbox" / "misc" / "deep.jpg")
        Image.new("RGB", (64, 64), "blue").save(tmp_path / "inbox" / "products" / "shoe.jpg")
        rows = daemon.wait_states(done=3)
        log = daemon.log()
    chains = {Path(r["name"]).name: r["chain"] for r in rows}
    assert chains == {"top.jpg": "web", "deep.jpg": "web", "shoe.jpg": "web2"}
    assert sorted(p.name for p in files_under(tmp_path / "out" / "web", "*.png")) == [
        "deep.png",
        "top.png",
    ]
    assert [p.name for p in files_under(tmp_path / "out" / "web2")] == ["shoe.webp"]

    # The done line and the sidecar name the file as dropped and where it was archived.
    inbox = (tmp_path / "inbox").resolve()
    done = next(line for line in log.splitlines() if "top.jpg done in" in line)
    assert f"{inbox / 'top.jpg'} done in" in done and ".hotfolder/processing" not in done
    archived = re.search(r"the original is archived as (\S+)", done)
    assert archived and Path(archived.group(1)).is_file(), done
    sidecar = json.loads((tmp_path / "out" / "web" / "top.png.json").read_text())
    assert sidecar["source"] == str(inbox / "top.jpg")
    assert sidecar["archived"] == archived.group(1)


SLOW = cutout_config(daemon=FAST_DAEMON.replace("grace_seconds = 10", "grace_seconds = 120"))


def test_a_second_sigint_during_the_grace_period_stops_at_once(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(SLOW)
    (tmp_path / "inbox").mkdir()
    with start_sandbox(SandboxConfig(requests_per_minute=600, latency_ms=20_000)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            Image.new("RGB", (320, 320), "purple").save(tmp_path / "inbox" / "slow.png")
            wait_for(lambda: daemon.states().get("running"), 30, "the job to run")
            daemon.signal(signal.SIGINT)
            wait_for(lambda: "again to stop them at once" in daemon.log(), 10, "the first stop")
            started = time.monotonic()
            assert daemon.stop(signal.SIGINT, timeout=30) == 0
            assert time.monotonic() - started < 10
            log = daemon.log()
            [row] = daemon.rows()
    assert "SIGINT received again: stopping now; 1 running job(s) stopped and left queued" in log
    assert row["state"] == "queued"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
