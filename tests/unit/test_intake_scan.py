"""Files a scan finds (at start-up, or by a rescan): an old one that no program holds open is
taken at the first look, not after another quiet period, and the files one tick takes are
claimed together, in one journal transaction."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from hotfolder.daemon import intake as intake_module
from hotfolder.daemon.folders import plan_folder
from hotfolder.daemon.intake import Intake
from hotfolder.daemon.journal import Journal
from hotfolder.daemon.readiness import held_for_writing
from hotfolder.daemon.settings import FolderSection


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def test_old_files_found_at_start_are_claimed_at_once_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = _png()
    an_hour_ago = time.time() - 3600
    old = [inbox / f"old-{i:03d}.png" for i in range(300)]
    for path in old:
        path.write_bytes(data)
        os.utime(path, (an_hour_ago, an_hour_ago))
    (inbox / "new.png").write_bytes(data)  # written just now: waits the quiet period
    if held_for_writing(str(old[0])) is None:
        pytest.skip("no read leases here: an old file cannot be told closed, so it waits")

    journal = Journal(tmp_path / "journal.sqlite3")
    transactions: list[int] = []
    add = journal.add

    def counting_add(jobs, **kwargs):  # type: ignore[no-untyped-def]
        jobs = list(jobs)
        transactions.append(len(jobs))
        add(jobs, **kwargs)

    monkeypatch.setattr(journal, "add", counting_add)
    # what is measured is the batching, not how many files a loaded machine looks at in 50 ms
    monkeypatch.setattr(intake_module, "LOOK_BUDGET_SECONDS", 60.0)
    plan = plan_folder(FolderSection(path=inbox, chain="web", quiet_seconds=60))
    intake = Intake(journal, [plan])
    assert intake.scan(plan) == 301
    claimed = intake.tick()

    names = {row.name for row in journal.jobs()}
    assert claimed == 300 and names == {p.name for p in old}, (
        f"claimed {claimed} ({sorted(names)[:3]}...): every hour-old file found by the scan "
        "should be taken at the first look"
    )
    assert transactions == [300], f"journal transactions per tick: {transactions}"
    assert not any(p.exists() for p in old)  # renamed into their job folders
    assert (inbox / "new.png").exists()
    waiting = intake.candidates[str(inbox / "new.png")][1]
    assert waiting.why == "quiet period"
