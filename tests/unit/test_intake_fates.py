"""Every file the intake meets has a fate it can show: taken, waiting (and why), ignored (and
why, with the fix), or failed under ``on_unmatched = "fail"``; the lists reach ``status``
through the journal only."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hotfolder.daemon import fates
from hotfolder.daemon.folders import plan_folder
from hotfolder.daemon.intake import Intake
from hotfolder.daemon.journal import Journal
from hotfolder.daemon.settings import FolderSection


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def setup(tmp_path: Path):
    def make(**folder: Any) -> tuple[Intake, Journal, Path]:
        inbox = tmp_path / "inbox"
        inbox.mkdir(exist_ok=True)
        journal = Journal(tmp_path / "journal.sqlite3")
        plan = plan_folder(FolderSection(path=inbox, chain="web", quiet_seconds=0, **folder))
        return Intake(journal, [plan]), journal, inbox

    return make


def _settle(intake: Intake, rounds: int = 5) -> int:
    claimed = 0
    for _ in range(rounds):
        for path in intake._due:
            intake._due[path] = 0.0
        claimed += intake.tick()
    return claimed


def test_ignored_files_are_listed_with_reasons_and_fixes(setup, caplog):
    intake, journal, inbox = setup()
    (inbox / "photo.png").write_bytes(_png())
    (inbox / "readme.txt").write_text("hello")
    (inbox / "old.tga").write_bytes(b"\0" * 40)
    (inbox / "photo.jpg.part").write_bytes(b"\xff\xd8")
    (inbox / ".DS_Store").write_bytes(b"x")
    (inbox / "sub").mkdir()
    (inbox / "sub" / "inner.png").write_bytes(_png())
    assert intake.scan(intake.plans[str(inbox)]) == 1
    assert _settle(intake) == 1
    listed = fates.read(journal, str(inbox))
    by_name = {f["name"]: f for f in listed["ignored"]["files"]}
    assert listed["ignored"]["count"] == 4 == len(by_name)
    assert by_name["readme.txt"]["reason"] == "not in include"
    assert by_name["readme.txt"]["fix"] == "add '*.txt' to include"
    assert by_name["old.tga"]["reason"] == "unsupported format"
    assert "'TGA' to [imaging] formats and '*.tga' to include" in by_name["old.tga"]["fix"]
    assert by_name["photo.jpg.part"]["reason"] == "temp name"
    assert by_name["sub/"]["reason"] == "subfolder of a non-recursive folder"
    assert "recursive = true" in by_name["sub/"]["fix"]
    # a second scan changes nothing and logs nothing new
    writes = journal.meta(f"ignored:{inbox}")
    intake.scan(intake.plans[str(inbox)])
    _settle(intake)
    assert journal.meta(f"ignored:{inbox}") == writes
    # a file that goes away leaves the list at the next scan
    (inbox / "readme.txt").unlink()
    intake.scan(intake.plans[str(inbox)])
    _settle(intake)
    names = {f["name"] for f in fates.read(journal, str(inbox))["ignored"]["files"]}
    assert "readme.txt" not in names


def test_an_event_for_an_unmatched_file_lists_it_once(setup):
    intake, journal, inbox = setup()
    plan = intake.plans[str(inbox)]
    (inbox / "notes.txt").write_text("x")
    for _ in range(3):
        intake.hint(plan, str(inbox / "notes.txt"), "changed")
    _settle(intake)
    assert [f["name"] for f in fates.read(journal, str(inbox))["ignored"]["files"]] == ["notes.txt"]
    assert not intake.candidates


def test_an_empty_file_is_shown_as_waiting_then_taken_once_written(setup):
    intake, journal, inbox = setup()
    plan = intake.plans[str(inbox)]
    (inbox / "empty.png").write_bytes(b"")
    intake.scan(plan)
    assert _settle(intake) == 0
    [waiting] = fates.read(journal, str(inbox))["waiting"]["files"]
    assert (waiting["name"], waiting["reason"]) == ("empty.png", "empty")
    assert waiting["since"]
    (inbox / "empty.png").write_bytes(_png())
    time.sleep(0.01)
    assert _settle(intake) == 1
    assert fates.read(journal, str(inbox))["waiting"]["count"] == 0
    assert [r.name for r in journal.jobs()] == ["empty.png"]


def test_on_unmatched_fail_moves_unmatched_files_to_failed_with_an_error_file(setup):
    intake, journal, inbox = setup(on_unmatched="fail")
    plan = intake.plans[str(inbox)]
    (inbox / "readme.txt").write_text("hello")
    (inbox / "old.tga").write_bytes(b"\0" * 40)
    (inbox / "x.jpg.part").write_bytes(b"\xff")
    intake.scan(plan)
    assert _settle(intake) == 0
    failed = inbox / ".hotfolder" / "failed"
    assert sorted(p.name for p in failed.iterdir()) == [
        "old.tga", "old.tga.error.json", "readme.txt", "readme.txt.error.json",
    ]  # fmt: skip
    error = json.loads((failed / "readme.txt.error.json").read_text())
    assert error["message"] == "readme.txt was not processed: not in include"
    assert "add '*.txt' to include" in error["hint"]
    rows = {r.name: r for r in journal.jobs()}
    assert {n: r.state for n, r in rows.items()} == {"readme.txt": "failed", "old.tga": "failed"}
    assert (inbox / "x.jpg.part").exists()  # temp names are left alone
    ignored = fates.read(journal, str(inbox))["ignored"]["files"]
    assert [f["name"] for f in ignored] == ["x.jpg.part"]


def test_a_move_in_is_taken_without_a_quiet_period(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    journal = Journal(tmp_path / "journal.sqlite3")
    plan = plan_folder(FolderSection(path=inbox, chain="web", quiet_seconds=60))
    intake = Intake(journal, [plan])
    (tmp_path / "photo.png").write_bytes(_png())
    (tmp_path / "photo.png").rename(inbox / "photo.png")
    intake.hint(plan, str(inbox / "photo.png"), "arrived")
    assert intake.tick() == 1


def test_a_long_wait_is_listed_and_logged_once(tmp_path, monkeypatch):
    monkeypatch.setattr(fates, "LONG_WAIT_SECONDS", 0.0)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    journal = Journal(tmp_path / "journal.sqlite3")
    plan = plan_folder(FolderSection(path=inbox, chain="web", quiet_seconds=0))
    intake = Intake(journal, [plan])
    (inbox / "cut.png").write_bytes(_png()[:40])
    intake.scan(plan)
    _settle(intake)
    [waiting] = fates.read(journal, str(inbox))["waiting"]["files"]
    assert (waiting["name"], waiting["reason"]) == ("cut.png", "incomplete image")


def test_status_reads_the_lists_from_the_journal(setup, tmp_path):
    from hotfolder.daemon import status

    intake, journal, inbox = setup()
    (inbox / "readme.txt").write_text("hello")
    (inbox / "empty.png").write_bytes(b"")
    intake.scan(intake.plans[str(inbox)])
    _settle(intake)
    folder = status.folder_fates(journal, str(inbox), running=True)
    assert folder["ignored"] == [
        {"name": "readme.txt", "reason": "not in include", "fix": "add '*.txt' to include"}
    ]
    assert [(w["name"], w["reason"]) for w in folder["waiting"]] == [("empty.png", "empty")]
    assert (folder["ignored_count"], folder["waiting_count"]) == (1, 1)
    assert status.folder_fates(journal, str(inbox), running=False)["ignored"] == []
