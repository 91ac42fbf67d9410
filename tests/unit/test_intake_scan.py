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


def test_an_old_file_is_taken_without_opening_it_for_its_header_and_an_empty_one_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scanned file unchanged for longer than an incomplete image waits is taken whatever
    its header says, so its header is not read (an open is two events); an empty one is still
    a placeholder, told by its size."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    an_hour_ago = time.time() - 3600
    cut = inbox / "cut.jpg"
    cut.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)  # a JPEG without its end marker
    empty = inbox / "empty.jpg"
    empty.write_bytes(b"")
    for path in (cut, empty):
        os.utime(path, (an_hour_ago, an_hour_ago))
    if held_for_writing(str(cut)) is None:
        pytest.skip("no read leases here: an old file cannot be told closed, so it waits")
    headers: list[str] = []
    header_state = intake_module.check.__globals__["header_state"]

    def counting(path: str, *args: object) -> str:
        headers.append(path)
        return str(header_state(path, *args))

    monkeypatch.setitem(intake_module.check.__globals__, "header_state", counting)
    journal = Journal(tmp_path / "journal.sqlite3")
    plan = plan_folder(FolderSection(path=inbox, chain="web", quiet_seconds=2))
    intake = Intake(journal, [plan])
    assert intake.scan(plan) == 2
    assert intake.tick() == 1
    assert [row.name for row in journal.jobs()] == ["cut.jpg"]
    assert headers == [], f"headers read: {headers}; an hour-old file's is not needed"
    assert empty.exists() and intake.candidates[str(empty)][1].why == "empty"
