"""A backlog (hundreds of files a scan finds at once) is claimed by the helper process, through
the real intake, journal and helper on real files: it takes exactly what the intake itself
would take at once, hands every other file back to the usual look, and loses nothing when the
helper dies between a request and its answer."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

import pytest

from hotfolder.daemon import backlog, claim
from hotfolder.daemon.folders import FolderPlan, plan_folder
from hotfolder.daemon.intake import Intake
from hotfolder.daemon.journal import Journal
from hotfolder.daemon.readiness import held_for_writing
from hotfolder.daemon.settings import FolderSection

AN_HOUR_AGO = time.time() - 3600


def _files(folder: Path, count: int, prefix: str = "old") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"{prefix}-{n:04d}.jpg"
        path.write_bytes(b"\xff\xd8 image " + str(n).encode())
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
        paths.append(path)
    return paths


def _intake(tmp_path: Path, inbox: Path) -> tuple[Intake, Journal, FolderPlan]:
    """An intake over ``inbox`` (chain "web", ``quiet_seconds = 2``), its journal and plan."""
    journal = Journal(tmp_path / "journal.sqlite3")
    plan = plan_folder(FolderSection(path=inbox, chain="web", quiet_seconds=2))
    return Intake(journal, [plan]), journal, plan


def _tick_until_done(intake: Intake, rounds: int = 50) -> None:
    for _ in range(rounds):
        intake.tick()
        if not intake.backlog.busy:
            return
    raise AssertionError("the backlog was not worked off")


@pytest.fixture(autouse=True)
def _leases(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    if held_for_writing(str(probe)) is None:
        pytest.skip("no read leases here: the helper is only used where they are")


def test_the_helper_claims_the_old_files_and_leaves_the_rest_to_the_usual_look(tmp_path):
    inbox = tmp_path / "inbox"
    old = _files(inbox, 450)
    young = inbox / "young.jpg"
    young.write_bytes(b"just written")
    empty = inbox / "empty.jpg"
    empty.write_bytes(b"")
    os.utime(empty, (AN_HOUR_AGO, AN_HOUR_AGO))
    paired = inbox / "paired.jpg"
    for path in (paired, inbox / "paired.prompt.txt"):
        path.write_bytes(b"with a prompt")
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    link = inbox / "link.jpg"
    link.symlink_to(old[0])
    held = inbox / "held.jpg"
    intake, journal, plan = _intake(tmp_path, inbox)
    with held.open("wb") as writer:  # an old file a program still writes
        writer.write(b"half")
        os.utime(held, (AN_HOUR_AGO, AN_HOUR_AGO))
        assert intake.scan(plan) == len(old) + 5
        # the old ones go to the helper (the held and the empty one come back from it); the
        # young ones (the link was made just now) and the one with a prompt file are looked at
        # the usual way
        assert len(intake._backlogged) == len(old) + 2
        assert sorted(intake.candidates) == sorted([str(paired), str(young), str(link)])
        _tick_until_done(intake)
        intake.tick()  # the candidates the helper handed back get their first look

    rows = {row.name: row for row in journal.jobs()}
    taken = {p.name for p in old}
    assert rows.keys() - taken == {"link.jpg", "paired.jpg"}
    assert rows["link.jpg"].state == "failed"  # quarantined
    assert rows["paired.jpg"].state == "queued"  # with its prompt file, the usual way
    assert not paired.exists() and not (inbox / "paired.prompt.txt").exists()
    for path in old:
        row = rows[path.name]
        claimed = claim.input_path(inbox, row.id, row.name)
        st = claimed.lstat()
        assert row.src_sig == f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
        assert row.state == "queued" and not path.exists()
    for waits in (young, empty, held):  # the usual way: each waits for its reason
        assert waits.exists() and str(waits) in intake.candidates, waits.name
    intake.close()


def test_a_few_files_are_claimed_without_the_helper(tmp_path):
    inbox = tmp_path / "inbox"
    old = _files(inbox, backlog.MIN_FILES - 1)
    intake, journal, plan = _intake(tmp_path, inbox)
    intake.scan(plan)
    assert not intake.backlog.busy
    assert len(intake.candidates) == len(old)
    for _ in range(20):
        intake.tick()
    assert len(journal.jobs()) == len(old)


def test_nothing_is_lost_when_the_helper_dies_between_a_request_and_its_answer(tmp_path):
    inbox = tmp_path / "inbox"
    old = _files(inbox, 1200)
    intake, journal, plan = _intake(tmp_path, inbox)
    intake.scan(plan)  # two requests sent while the folder is listed
    proc = intake.backlog._proc
    assert proc is not None and proc.stdout is not None
    select.select([proc.stdout], [], [], 10)  # the helper answered (and renamed) the first ...
    proc.kill()  # ... and dies while renaming the second, or before
    proc.wait()
    assert intake.backlog.busy
    for _ in range(20):
        intake.tick()
    assert not intake.backlog.usable()

    rows = journal.jobs()
    assert sorted(r.name for r in rows) == [p.name for p in old]
    assert len({r.id for r in rows}) == len(old)
    processing = sorted(p.name for p in claim.processing_root(inbox).iterdir())
    assert processing == sorted(f"{r.id}.{r.name}" for r in rows)
    assert not any(p.exists() for p in old)


def test_where_no_lease_can_be_had_the_helper_is_not_used(tmp_path, monkeypatch):
    # a network file system: the helper would answer "look" for every file
    monkeypatch.setattr("hotfolder.daemon.intake.held_for_writing", lambda path: None)
    inbox = tmp_path / "inbox"
    old = _files(inbox, backlog.MIN_FILES + 10)
    intake, _, plan = _intake(tmp_path, inbox)
    intake.scan(plan)
    assert not intake.backlog.busy
    assert len(intake.candidates) == len(old)
