"""Routes, ``{dir}`` and companion prompt files through the real daemon and the sandbox as an
HTTP server: each file of a recursive folder goes through its route's chain into
``out/<subfolder>/<name>``, never out of the sink's folder; ``NAME.prompt.txt`` dropped with
``cp`` or ``mv`` in either order fills ``{prompt}`` of the edit it goes with; an image whose
prompt never comes fails without a Venice request; ``process`` does the same for the files it
is given."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.cli import hotfolder
from tests.helpers.daemon import FAST_DAEMON, Daemon, files_under, noise_photos, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAME = 'name = "{dir}/{stem}.{ext}"'
ROUTES = (
    FAST_DAEMON
    + f"""
[venice]
requests_per_minute = 600

[[folders]]
path = "inbox"
recursive = true
quiet_seconds = 0.2
chain = "web"
routes = [
  {{ match = "products/**", chain = "cutout" }},
  {{ match = "*_bg.png", chain = "bg" }},
]

[chains.cutout]
steps = [{{ op = "venice.background-remove" }}]
outputs = [{{ sink = "folder", path = "out", {NAME} }}]

[chains.bg]
steps = [{{ op = "resize", width = 100 }}, {{ op = "convert", format = "webp" }}]
outputs = [{{ sink = "folder", path = "out", {NAME} }}]

[chains.web]
steps = [{{ op = "convert", format = "jpeg" }}]
outputs = [{{ sink = "folder", path = "out", {NAME} }}]
"""
)


def _drop(tmp_path: Path, source: Path, rel: str) -> None:
    """``cp`` a staged photo to ``inbox/<rel>`` (its folder made first, as a user would)."""
    target = tmp_path / "inbox" / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", str(source), str(target)], check=True)


def test_routes_send_each_file_through_its_chain_into_its_subfolder(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(ROUTES)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "out").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out" / "escape").symlink_to(outside)  # a subfolder that leads out of out/
    photos = noise_photos(tmp_path / "staging", 7, size=(320, 240))  # all different
    names = {
        "products/shoe.png": "cutout",
        "products/summer/hat.png": "cutout",
        "sky_bg.png": "bg",
        "sub/tree_bg.png": "bg",
        "plain.png": "web",
        "sub/deep/other.png": "web",
        "escape/away.png": "web",
    }
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            for photo, rel in zip(photos, names, strict=True):
                _drop(tmp_path, photo, rel)
            rows = daemon.wait_states(done=6, failed=1)
            (folder,) = json.loads(daemon.cli("status", "--json").stdout)["folders"]
        stats = sandbox.stats()
    assert {r["name"]: r["chain"] for r in rows} == names
    assert folder["chain"] == "web"  # status shows the routes, then the chain of the rest
    assert folder["routes"] == [
        {"match": "products/**", "chain": "cutout"},
        {"match": "*_bg.png", "chain": "bg"},
    ]
    assert stats["paid_total"] == 2  # the two product photos, and nothing else
    out = tmp_path / "out"
    written = sorted(str(p.relative_to(out)) for p in files_under(out) if not p.is_symlink())
    assert written == [
        "plain.jpg",
        "products/shoe.png",
        "products/summer/hat.png",
        "sky_bg.webp",
        "sub/deep/other.jpg",
        "sub/tree_bg.webp",
    ]
    for rel in ["products/shoe.png", "products/summer/hat.png"]:
        with Image.open(out / rel) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (320, 240))
    for rel in ["sky_bg.webp", "sub/tree_bg.webp"]:
        with Image.open(out / rel) as image:
            assert (image.format, image.size) == ("WEBP", (100, 75))
    for rel in ["plain.jpg", "sub/deep/other.jpg"]:
        with Image.open(out / rel) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (320, 240))
    # The file whose subfolder is a link out of out/ failed; nothing was written outside.
    (failed,) = (r for r in rows if r["state"] == "failed")
    assert failed["name"] == "escape/away.png"
    assert failed["error"]["class"] == "SinkError"
    assert "would leave the sink folder" in failed["error"]["message"]
    assert list(outside.iterdir()) == []


def test_a_name_template_that_climbs_out_is_refused_at_load(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(ROUTES.replace(NAME, 'name = "../{dir}/{stem}.{ext}"'))
    run = hotfolder("validate", cwd=tmp_path)
    assert run.code == 2, run.output
    assert "chains.web.outputs[0].name" in run.output
    assert "'..' path component" in run.output


PROMPTS = (
    FAST_DAEMON
    + """
[venice]
requests_per_minute = 600

[[folders]]
path = "inbox"
quiet_seconds = 0.2
prompt_wait_seconds = 1
chain = "edit"

[chains.edit]
steps = [{ op = "venice.edit", prompt = "{prompt}", enhance_prompt = true }]
outputs = [{ sink = "folder", path = "out" }, { sink = "sidecar" }]
"""
)


def _sidecar(out: Path, stem: str) -> dict:
    (path,) = out.glob(f"{stem}.*.json")
    return json.loads(path.read_text())


def test_prompt_files_go_with_their_image_in_either_order(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(PROMPTS)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    staging = tmp_path / "staging"
    noise_photos(staging, 3, prefix="shot", size=(320, 240))
    (staging / "shot0.prompt.txt").write_text("a red shoe on white\n")
    (staging / "shot1.prompt.txt").write_text("a blue boot in the snow\n")
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            # the prompt first, then its image (cp)
            subprocess.run(["cp", "shot0.prompt.txt", str(inbox)], cwd=staging, check=True)
            subprocess.run(["cp", "shot0.png", str(inbox)], cwd=staging, check=True)
            daemon.wait_states(done=1)
            # the image first (mv), seen waiting for its prompt, then the prompt (mv)
            subprocess.run(["mv", "shot1.png", str(inbox)], cwd=staging, check=True)
            wait_for(lambda: "shot1.png: ready; waits for its prompt file" in daemon.log(),
                     30, "the image to wait for its prompt")  # fmt: skip
            subprocess.run(["mv", "shot1.prompt.txt", str(inbox)], cwd=staging, check=True)
            daemon.wait_states(done=2)
            # an image whose prompt file never comes
            subprocess.run(["cp", "shot2.png", str(inbox)], cwd=staging, check=True)
            rows = daemon.wait_states(done=2, failed=1)
        stats = sandbox.stats()
    assert stats["paid_total"] == 2
    assert stats["requests"].get("/image/edit", {}) != {}
    for stem, prompt in [("shot0", "a red shoe on white"), ("shot1", "a blue boot in the snow")]:
        record = _sidecar(tmp_path / "out", stem)
        (step,) = record["steps"]
        assert step["params"]["prompt"] == prompt  # as sent
        assert step["notes"]["prompt_file"] == f"{stem}.prompt.txt"
        # the sandbox answers with the prompt it received (its stand-in for enhancement)
        assert step["notes"]["enhanced_prompt"].startswith(prompt + ", ")
        with Image.open(tmp_path / "out" / f"{stem}.png") as image:
            assert image.size == (1024, 768)  # the edit's 1K, in the input's 4:3
    archived = {p.name for p in files_under(inbox / ".hotfolder" / "archive")}
    assert archived == {"shot0.png", "shot0.prompt.txt", "shot1.png", "shot1.prompt.txt"}
    assert sorted(p.name for p in inbox.iterdir()) == [".hotfolder"]  # no prompt left behind
    (failed,) = (r for r in rows if r["state"] == "failed")
    assert failed["name"] == "shot2.png"
    assert (
        "uses {prompt} and its prompt file shot2.prompt.txt was not complete"
        in (failed["error"]["message"])
    )
    error = json.loads((inbox / ".hotfolder/failed/shot2.png.error.json").read_text())
    assert "prompt_wait_seconds" in error["hint"]


def test_an_image_without_its_prompt_sends_no_request(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(PROMPTS)
    (tmp_path / "inbox").mkdir()
    noise_photos(tmp_path / "staging", 1, prefix="lone")
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            subprocess.run(["cp", "staging/lone0.png", "inbox/"], cwd=tmp_path, check=True)
            (row,) = daemon.wait_states(failed=1)
            status = json.loads(daemon.cli("status", "--json").stdout)
        stats = sandbox.stats()
    assert stats["requests_total"] == 0 and stats["paid_total"] == 0
    assert row["error"]["class"] == "InputError" and row["chain"] == "edit"
    (folder,) = status["folders"]
    assert folder["counts"]["failed"] == 1


def test_process_uses_the_prompt_file_beside_each_file_given(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(PROMPTS)
    noise_photos(tmp_path / "in", 2, prefix="shot")
    (tmp_path / "in" / "shot0.prompt.txt").write_text("a red shoe")
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        run = hotfolder(
            "process", "in/shot0.png", "in/shot0.prompt.txt", "in/shot1.png", "--chain", "edit",
            cwd=tmp_path, env=env,
        )  # fmt: skip
        stats = sandbox.stats()
    assert run.code == 1, run.output
    assert "in/shot0.prompt.txt is a prompt file: it goes with its image" in run.output
    assert "the prompt file" in run.output and "shot1.prompt.txt does not exist" in run.output
    assert stats["paid_total"] == 1
    (step,) = _sidecar(tmp_path / "out", "shot0")["steps"]
    assert step["params"]["prompt"] == "a red shoe"
    assert not (tmp_path / "out" / "shot1.png").exists()


def test_process_of_a_folder_names_outputs_by_their_subfolder(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(ROUTES)
    noise_photos(tmp_path / "in" / "a" / "b", 1, prefix="deep")
    noise_photos(tmp_path / "in", 1, prefix="top")
    (tmp_path / "in" / "top0.prompt.txt").write_text("not an input")
    run = hotfolder("process", "in", "-r", "--all", "--chain", "web", cwd=tmp_path)
    assert run.code == 0, run.output
    out = tmp_path / "out"
    assert sorted(str(p.relative_to(out)) for p in files_under(out)) == [
        "a/b/deep0.jpg",
        "top0.jpg",
    ]
