"""Every file the real daemon meets has a fate it shows: HEIC, AVIF, MPO and BMP are taken;
a text file and a TGA are named once in the log and listed by ``status --json`` as ignored,
an empty file as waiting; ``on_unmatched = "fail"`` moves them to ``failed/``; a file moved in
is taken without the quiet period; WebP and TIFF appended in chunks become one job each."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from hotfolder import imaging
from tests.helpers.daemon import Daemon, convert_to_png_config, cp, files_under, wait_for

pytestmark = pytest.mark.e2e


def _encoded(fmt: str, size: tuple[int, int], **options: object) -> bytes:
    picture = Image.effect_noise(size, 50).convert("RGB")
    buffer = io.BytesIO()
    if fmt == "MPO":
        options = {"save_all": True, "append_images": [picture.rotate(180)]}
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def project(tmp_path: Path):
    def make(quiet: float = 0.2, **folder: str | float) -> Path:
        config = convert_to_png_config(**folder)
        config = config.replace("quiet_seconds = 0.2", f"quiet_seconds = {quiet}")
        (tmp_path / "hotfolder.toml").write_text(config)
        (tmp_path / "inbox").mkdir()
        (tmp_path / "src").mkdir()
        return tmp_path

    return make


def _status(daemon: Daemon) -> dict:
    done = daemon.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    [folder] = json.loads(done.stdout)["folders"]
    return folder


def test_heic_avif_mpo_and_bmp_dropped_with_cp_are_processed(project):
    root = project()
    sizes = {
        "phone.heic": (64, 48),
        "web.avif": (50, 40),
        "pair.mpo": (40, 30),
        "old.bmp": (30, 20),
    }
    formats = {"phone.heic": "HEIF", "web.avif": "AVIF", "pair.mpo": "MPO", "old.bmp": "BMP"}
    if not imaging.HAS_AVIF:
        del sizes["web.avif"]
    for name, size in sizes.items():
        (root / "src" / name).write_bytes(_encoded(formats[name], size))
    with Daemon(root).start() as daemon:
        for name in sizes:
            cp(root / "src" / name, root / "inbox" / name)
        rows = daemon.wait_states(done=len(sizes))
    assert sorted(r["name"] for r in rows) == sorted(sizes)
    for name, size in sizes.items():
        with Image.open(root / "out" / f"{Path(name).stem}.png") as out:
            assert (out.format, out.size) == ("PNG", size)


def test_unmatched_and_empty_files_are_named_once_and_shown_by_status(project):
    root = project()
    with Daemon(root).start() as daemon:
        (root / "inbox" / "readme.txt").write_text("notes")
        (root / "inbox" / "old.tga").write_bytes(_encoded("TGA", (8, 8)))
        (root / "inbox" / "empty.png").write_bytes(b"")

        def listed() -> dict | None:
            folder = _status(daemon)
            ignored = {f["name"]: f["reason"] for f in folder["ignored"]}
            waiting = {f["name"]: f["reason"] for f in folder["waiting"]}
            wanted = {"readme.txt": "not in include", "old.tga": "unsupported format"}
            return folder if ignored == wanted and waiting == {"empty.png": "empty"} else None

        folder = wait_for(listed, 30, "status to list the ignored and waiting files")
        assert (folder["ignored_count"], folder["waiting_count"]) == (2, 1)
        assert all(w["since"] for w in folder["waiting"])
        text = daemon.cli("status").stdout
        assert "2 ignored: old.tga (unsupported format:" in text
        assert "readme.txt (not in include: add '*.txt' to include)" in text
        assert "1 waiting: empty.png (empty, since" in text
        time.sleep(2.5)  # a few rescans (rescan_seconds = 1): nothing is logged again
        log = daemon.log()
        assert log.count("readme.txt: ignored (not in include); to take it: add '*.txt'") == 1
        assert log.count("old.tga: ignored (unsupported format)") == 1
        assert log.count("empty.png: waiting since") == 1
        assert daemon.rows() == []
    assert sorted(p.name for p in (root / "inbox").iterdir() if p.is_file()) == [
        "empty.png", "old.tga", "readme.txt",
    ]  # fmt: skip


def test_on_unmatched_fail_sends_them_to_failed_with_an_error_file(project):
    root = project(on_unmatched="fail")
    with Daemon(root).start() as daemon:
        (root / "inbox" / "readme.txt").write_text("notes")
        (root / "inbox" / "old.tga").write_bytes(_encoded("TGA", (8, 8)))
        daemon.wait_states(failed=2)
        rows = wait_for(lambda: all(r["error"] for r in daemon.rows()) and daemon.rows(), 10)
    failed = root / "inbox" / ".hotfolder" / "failed"
    assert sorted(p.name for p in files_under(failed)) == [
        "old.tga", "old.tga.error.json", "readme.txt", "readme.txt.error.json",
    ]  # fmt: skip
    error = json.loads((failed / "old.tga.error.json").read_text())
    assert error["message"] == "old.tga was not processed: unsupported format"
    assert "'TGA' to [imaging] formats" in error["hint"]
    assert {r["error"]["message"] for r in rows} == {
        "readme.txt was not processed: not in include",
        "old.tga was not processed: unsupported format",
    }


def test_a_file_moved_in_from_a_sibling_folder_is_taken_before_the_quiet_period(project):
    root = project(quiet=8)
    (root / "src" / "moved.png").write_bytes(_encoded("PNG", (40, 30)))
    with Daemon(root).start() as daemon:
        os.rename(root / "src" / "moved.png", root / "inbox" / "moved.png")
        # Claimed well before the 8 s quiet period could have ended: waited for at most 6 s.
        wait_for(lambda: daemon.rows(), 6, "the moved-in file to be claimed")
        daemon.wait_states(done=1)
    with Image.open(root / "out" / "moved.png") as out:
        assert out.size == (40, 30)


def test_webp_and_tiff_appended_in_chunks_with_closes_between_are_one_job_each(project):
    root = project(quiet=0.5)
    data = {
        "slow.webp": _encoded("WEBP", (200, 150), quality=90),
        "slow.tif": _encoded("TIFF", (200, 150)),
    }
    with Daemon(root).start() as daemon:
        for i in range(5):
            for name, whole in data.items():
                step = -(-len(whole) // 5)
                with (root / "inbox" / name).open("ab") as f:
                    f.write(whole[i * step : (i + 1) * step])
            time.sleep(1.0)
        rows = daemon.wait_states(done=2)
    assert sorted(r["name"] for r in rows) == ["slow.tif", "slow.webp"]
    for name in data:
        with Image.open(root / "out" / f"{Path(name).stem}.png") as out:
            assert out.size == (200, 150)
    assert not files_under(root / "inbox" / ".hotfolder" / "failed")
