"""An upgrade over files an earlier hotfolder claimed: it kept each in a folder of its job
(``processing/<job-id>/photo.png``) and made empty folders ahead in ``.hotfolder/spare/``. The
real daemon, started on that state, runs every one of them (the queued job and the one claimed
just before a crash, with no journal row) and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from hotfolder.daemon.journal import Journal, NewJob
from hotfolder.job import new_job_id
from tests.helpers.daemon import Daemon, convert_to_png_config, files_under

pytestmark = pytest.mark.e2e


def test_files_claimed_by_the_earlier_layout_are_run_after_an_upgrade(tmp_path: Path):
    (tmp_path / "hotfolder.toml").write_text(convert_to_png_config())
    inbox = (tmp_path / "inbox").resolve()
    processing = inbox / ".hotfolder/processing"
    queued, unrecorded = new_job_id(), new_job_id()
    for job_id, name, size in (
        (queued, "queued.jpg", (96, 64)),
        (unrecorded, "lost.jpg", (48, 80)),
    ):
        (processing / job_id).mkdir(parents=True)
        Image.new("RGB", size, "orange").save(processing / job_id / name)
    (inbox / ".hotfolder/spare/batch/0").mkdir(parents=True)
    (tmp_path / "state").mkdir()
    journal = Journal(tmp_path / "state/journal.sqlite3")
    journal.add([NewJob(queued, str(inbox), "queued.jpg", "web")])
    journal.close()

    with Daemon(tmp_path).start() as daemon:
        rows = daemon.wait_states(done=2)
        log = daemon.log()

    assert sorted(r["name"] for r in rows) == ["lost.jpg", "queued.jpg"]
    assert "moved to" in log and "(the new layout)" in log, log[-3000:]
    for stem, size in (("queued", (96, 64)), ("lost", (48, 80))):
        with Image.open(tmp_path / "out" / f"{stem}.png") as out:
            assert (out.format, out.size, out.mode) == ("PNG", size, "RGB")
    archived = sorted(p.name for p in files_under(inbox / ".hotfolder/archive"))
    assert archived == ["lost.jpg", "queued.jpg"]
    assert list(processing.iterdir()) == []
    assert not (inbox / ".hotfolder/spare").exists()
