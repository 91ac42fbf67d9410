"""Job manifests (``*.job.toml``) dropped into a watched folder, through the real daemon: the
manifest is claimed into ``processing/`` like any file, but its relative images are taken from
the folder it was dropped in (they stay there); one naming an image that is not there fails
with the manifest's own name, the missing path and what to do, and the daemon goes on. With
the sandbox as an HTTP server, a manifest's second image goes to ``venice.multi-edit``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.daemon import (
    Daemon,
    convert_to_png_config,
    cp,
    cutout_config,
    files_under,
    noise_photos,
)

pytestmark = pytest.mark.e2e


def _manifest(tmp_path: Path, name: str, text: str) -> Path:
    """A manifest written outside the watched folder, to be dropped in with ``cp``."""
    path = tmp_path / "staging" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_manifest_takes_its_images_from_the_folder_it_was_dropped_in(tmp_path: Path):
    (tmp_path / "hotfolder.toml").write_text(convert_to_png_config())
    inbox = tmp_path / "inbox"
    (inbox / "assets").mkdir(parents=True)  # a subfolder: not taken on its own
    Image.new("RGB", (64, 48), "teal").save(inbox / "assets/backdrop.jpg")
    good = _manifest(tmp_path, "shoot.job.toml", 'images = ["assets/backdrop.jpg"]\n')
    lost = _manifest(tmp_path, "lost.job.toml", 'images = ["assets/missing.jpg"]\n')

    with Daemon(tmp_path).start() as daemon:
        cp(good, inbox / good.name)
        cp(lost, inbox / lost.name)
        rows = daemon.wait_states(done=1, failed=1)
        assert daemon.proc is not None and daemon.proc.poll() is None  # still running

    by_name = {row["name"]: row for row in rows}
    assert by_name["shoot.job.toml"]["state"] == "done"
    with Image.open(tmp_path / "out/backdrop.png") as out:
        assert (out.format, out.size, out.mode) == ("PNG", (64, 48), "RGB")
    assert (inbox / "assets/backdrop.jpg").is_file()  # the manifest's image stays where it is
    archived = [p.name for p in files_under(inbox / ".hotfolder/archive")]
    assert archived == ["shoot.job.toml"]

    error = by_name["lost.job.toml"]["error"]
    assert error["class"] == "InputError"
    assert f"{inbox.resolve() / 'lost.job.toml'}: image 'assets/missing.jpg'" in error["message"]
    assert f"is not at {inbox.resolve() / 'assets/missing.jpg'}" in error["message"]
    assert ".hotfolder" not in error["message"]  # not the claimed copy's place
    assert "drop the manifest last" in error["hint"]
    failed = inbox / ".hotfolder/failed"
    assert (failed / "lost.job.toml").read_text() == lost.read_text()
    on_disk = json.loads((failed / "lost.job.toml.error.json").read_text())
    assert on_disk["message"] == error["message"]
    assert list((inbox / ".hotfolder/processing").iterdir()) == []


def test_a_manifest_in_a_watched_folder_sends_its_images_to_multi_edit(tmp_path: Path):
    (tmp_path / "hotfolder.toml").write_text(
        cutout_config(steps='{ op = "venice.multi-edit", prompt = "blend the texture in" }')
    )
    inbox = tmp_path / "inbox"
    front, texture = noise_photos(inbox / "set", 2, size=(320, 240))
    manifest = _manifest(
        tmp_path, "set.job.toml", 'images = ["set/photo0.png", "set/photo1.png"]\n'
    )
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env).start() as daemon:
            cp(manifest, inbox / manifest.name)
            (row,) = daemon.wait_states(done=1)
        stats = sandbox.stats()

    assert row["name"] == "set.job.toml"
    assert stats["paid_total"] == 1
    (endpoint,) = stats["paid_calls"]
    assert endpoint.endswith("multi-edit")
    # both images went up in that one request
    sent = stats["bytes_received"][endpoint]
    assert sent > front.stat().st_size + texture.stat().st_size
    (output,) = files_under(tmp_path / "out")
    assert output.name.startswith("photo0")  # named after the first image
    with Image.open(output) as image:
        assert image.size[0] > 0 and image.format in {"PNG", "JPEG", "WEBP"}
    assert front.is_file() and texture.is_file()
