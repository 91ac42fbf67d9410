"""The intake with routes and companion prompt files: each file's job gets its route's chain;
a file no route takes is ignored (or failed) with that reason; ``NAME.prompt.txt`` is claimed
with its image in either order, is never a job or an ignored file of its own, and an image
whose chain needs it fails unread when it does not come in time. The moves that follow (done,
deleted, kept, failed, retried) carry the prompt file with its image."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hotfolder.config import validate_config
from hotfolder.daemon import claim, fates
from hotfolder.daemon.folders import plan_folders
from hotfolder.daemon.intake import Intake
from hotfolder.daemon.journal import Journal
from hotfolder.daemon.requeue import requeue
from hotfolder.plugins import build_registry, make_plugin_manager


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(load_entrypoints=False))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def _chains() -> dict[str, Any]:
    out = [{"sink": "folder", "path": "out"}]
    return {
        "edit": {"steps": [{"op": "venice.edit", "prompt": "make it {prompt}"}], "outputs": out},
        "web": {"steps": [{"op": "auto-orient"}], "outputs": out},
        "bg": {"steps": [{"op": "auto-orient"}], "outputs": out},
    }


@pytest.fixture
def setup(tmp_path: Path, registry):
    def make(**folder: Any) -> tuple[Intake, Journal, Path]:
        inbox = tmp_path / "inbox"
        inbox.mkdir(exist_ok=True)
        entry = {"path": "inbox", "quiet_seconds": 0, **folder}
        raw = {"folders": [entry], "chains": _chains()}
        config = validate_config(raw, registry, path=tmp_path / "hotfolder.toml")
        journal = Journal(tmp_path / "journal.sqlite3")
        return Intake(journal, plan_folders(config)), journal, inbox

    return make


def _settle(intake: Intake, rounds: int = 5) -> int:
    claimed = 0
    for _ in range(rounds):
        for path in intake._due:
            intake._due[path] = 0.0
        claimed += intake.tick()
    return claimed


def _job_files(inbox: Path, job_id: str) -> list[str]:
    """The files claimed for ``job_id``, by the names they had in the folder."""
    mine = [p.name for p in claim.processing_root(inbox).iterdir() if p.is_file()]
    return sorted(n.removeprefix(f"{job_id}.") for n in mine if n.startswith(f"{job_id}."))


# --- routes ----------------------------------------------------------------------------------


def test_each_file_is_queued_with_its_routes_chain(setup):
    intake, journal, inbox = setup(
        recursive=True,
        chain="web",
        routes=[{"match": "products/**", "chain": "edit"}, {"match": "*_bg.png", "chain": "bg"}],
    )
    for rel in ["products/a.png", "products/deep/b.png", "sky_bg.png", "sub/c_bg.png", "d.png"]:
        (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
        (inbox / rel).write_bytes(_png())
    for rel in ["products/a", "products/deep/b"]:
        (inbox / f"{rel}.prompt.txt").write_text("red")
    intake.scan(intake.plans[str(inbox)])
    assert _settle(intake) == 5
    assert {r.name: r.chain for r in journal.jobs()} == {
        "products/a.png": "edit",
        "products/deep/b.png": "edit",
        "sky_bg.png": "bg",
        "sub/c_bg.png": "bg",
        "d.png": "web",
    }


def test_a_file_no_route_takes_is_ignored_with_the_reason_and_fix(setup):
    intake, journal, inbox = setup(routes=[{"match": "*_bg.png", "chain": "bg"}])
    (inbox / "sky_bg.png").write_bytes(_png())
    (inbox / "other.png").write_bytes(_png())
    intake.scan(intake.plans[str(inbox)])
    assert _settle(intake) == 1
    assert [r.name for r in journal.jobs()] == ["sky_bg.png"]
    (ignored,) = fates.read(journal, str(inbox))["ignored"]["files"]
    assert ignored == {
        "name": "other.png",
        "reason": "matches no route",
        "fix": "add a route whose match takes it, or give the folder a chain for the rest",
    }
    # an event for it says the same, once
    intake.hint(intake.plans[str(inbox)], str(inbox / "other.png"), "closed")
    assert not intake.candidates
    assert (inbox / "other.png").exists()


def test_on_unmatched_fail_fails_a_file_no_route_takes(setup):
    intake, journal, inbox = setup(
        routes=[{"match": "*_bg.png", "chain": "bg"}], on_unmatched="fail"
    )
    (inbox / "other.png").write_bytes(_png())
    intake.scan(intake.plans[str(inbox)])
    _settle(intake)
    error = json.loads((inbox / ".hotfolder/failed/other.png.error.json").read_text())
    assert error["message"] == "other.png was not processed: matches no route"
    assert [(r.name, r.state) for r in journal.jobs()] == [("other.png", "failed")]


# --- prompt files ----------------------------------------------------------------------------


def test_a_prompt_file_first_then_its_image_make_one_job_holding_both(setup):
    intake, journal, inbox = setup(chain="edit")
    plan = intake.plans[str(inbox)]
    (inbox / "shoe.prompt.txt").write_text("red")
    intake.hint(plan, str(inbox / "shoe.prompt.txt"), "closed")
    assert _settle(intake) == 0 and not journal.jobs()
    (inbox / "shoe.png").write_bytes(_png())
    intake.hint(plan, str(inbox / "shoe.png"), "closed")
    assert _settle(intake) == 1
    (row,) = journal.jobs()
    assert (row.name, row.chain) == ("shoe.png", "edit")
    assert _job_files(inbox, row.id) == ["shoe.png", "shoe.prompt.txt"]
    assert sorted(os.listdir(inbox)) == [".hotfolder"]
    listed = fates.read(journal, str(inbox))
    assert listed["ignored"]["count"] == 0 and listed["waiting"]["count"] == 0


def test_an_image_first_waits_for_its_prompt_file(setup):
    intake, journal, inbox = setup(chain="edit", prompt_wait_seconds=60)
    plan = intake.plans[str(inbox)]
    (inbox / "shoe.png").write_bytes(_png())
    intake.scan(plan)
    assert _settle(intake) == 0
    (cand,) = (c for _, c in intake.candidates.values())
    assert cand.why == "prompt file"
    (inbox / "shoe.prompt.txt").write_text("red")
    intake.hint(plan, str(inbox / "shoe.prompt.txt"), "closed")
    assert intake._due[str(inbox / "shoe.png")] == 0.0  # the prompt's event wakes its image
    assert _settle(intake) == 1
    (row,) = journal.jobs()
    assert _job_files(inbox, row.id) == ["shoe.png", "shoe.prompt.txt"]


def test_an_image_whose_prompt_file_never_comes_fails_unread(setup):
    intake, journal, inbox = setup(chain="edit", prompt_wait_seconds=0)
    (inbox / "shoe.png").write_bytes(_png())
    intake.scan(intake.plans[str(inbox)])
    assert _settle(intake) == 0
    failed = inbox / ".hotfolder" / "failed"
    assert sorted(p.name for p in failed.iterdir()) == ["shoe.png", "shoe.png.error.json"]
    error = json.loads((failed / "shoe.png.error.json").read_text())
    assert error["class"] == "InputError"
    assert error["message"] == (
        "shoe.png was not processed: its chain 'edit' uses {prompt} and its prompt file "
        "shoe.prompt.txt was not complete beside it within 0s (quiet_seconds + "
        "prompt_wait_seconds)"
    )
    assert "shoe.prompt.txt" in error["hint"] and "prompt_wait_seconds" in error["hint"]
    (row,) = journal.jobs()
    assert (row.name, row.chain, row.state) == ("shoe.png", "edit", "failed")


def test_a_chain_without_prompt_takes_the_image_at_once_and_its_prompt_along(setup):
    intake, journal, inbox = setup(chain="web", prompt_wait_seconds=60)
    (inbox / "lone.png").write_bytes(_png())
    (inbox / "shoe.png").write_bytes(_png())
    (inbox / "shoe.prompt.txt").write_text("red")
    intake.scan(intake.plans[str(inbox)])
    assert _settle(intake) == 2
    files = {r.name: _job_files(inbox, r.id) for r in journal.jobs()}
    assert files == {"lone.png": ["lone.png"], "shoe.png": ["shoe.png", "shoe.prompt.txt"]}


def test_an_old_image_and_its_old_prompt_file_found_at_start_are_taken_at_once(setup):
    """Files that sat in the folder while the daemon was down: the prompt file, like its
    image, is not held for a quiet period when its mtime says it is long finished."""
    intake, journal, inbox = setup(chain="edit", quiet_seconds=30)
    an_hour_ago = time.time() - 3600
    (inbox / "shoe.png").write_bytes(_png())
    (inbox / "shoe.prompt.txt").write_text("red")
    for name in ("shoe.png", "shoe.prompt.txt"):
        os.utime(inbox / name, (an_hour_ago, an_hour_ago))
    intake.scan(intake.plans[str(inbox)])
    assert intake.tick() == 1
    (row,) = journal.jobs()
    assert _job_files(inbox, row.id) == ["shoe.png", "shoe.prompt.txt"]


def test_a_prompt_file_alone_is_no_job_and_waits_listed_for_its_image(setup, monkeypatch):
    monkeypatch.setattr(fates, "LONG_WAIT_SECONDS", 0.0)
    intake, journal, inbox = setup(chain="edit", on_unmatched="fail")
    (inbox / "shoe.prompt.txt").write_text("red")
    intake.scan(intake.plans[str(inbox)])
    _settle(intake)
    intake.board.publish()
    assert not journal.jobs()
    listed = fates.read(journal, str(inbox))
    assert listed["ignored"]["count"] == 0
    assert [(w["name"], w["reason"]) for w in listed["waiting"]["files"]] == [
        ("shoe.prompt.txt", "no image yet")
    ]
    assert (inbox / "shoe.prompt.txt").exists()


def test_a_linked_prompt_file_is_quarantined_and_never_read(setup):
    intake, journal, inbox = setup(chain="edit", prompt_wait_seconds=0)
    (inbox.parent / "secret.txt").write_text("not yours")
    os.symlink(inbox.parent / "secret.txt", inbox / "shoe.prompt.txt")
    (inbox / "shoe.png").write_bytes(_png())
    intake.scan(intake.plans[str(inbox)])
    assert _settle(intake) == 0
    rows = {r.name: r for r in journal.jobs()}
    assert rows["shoe.prompt.txt"].state == "failed"
    assert "symbolic link" in rows["shoe.prompt.txt"].error["message"]
    assert rows["shoe.png"].state == "failed"  # and without a prompt, its image fails
    assert (inbox.parent / "secret.txt").read_text() == "not yours"


# --- the moves after a job carry the prompt file with its image ------------------------------


def _claimed(inbox: Path) -> claim.Claimed:
    (inbox / "shoe.png").write_bytes(_png())
    (inbox / "shoe.prompt.txt").write_text("red")
    claimed = claim.claim(inbox, "shoe.png", with_prompt=True)
    assert claimed is not None
    return claimed


@pytest.mark.parametrize("after", ["archive", "delete", "keep"])
def test_finishing_moves_the_prompt_file_with_its_image(tmp_path: Path, after: str):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    claimed = _claimed(inbox)
    place = {"delete": "deleted", "keep": "kept"}.get(after) or str(
        claim.archive_target(tmp_path / "archive", "shoe.png", claimed.id)
    )
    claim.finish_move(inbox, claimed.id, "shoe.png", place)
    assert not claim.job_dir(inbox, claimed.id).exists()
    assert _job_files(inbox, claimed.id) == []
    if after == "archive":
        assert sorted(p.name for p in Path(place).parent.iterdir()) == [
            "shoe.png",
            "shoe.prompt.txt",
        ]
    elif after == "keep":
        assert (inbox / "shoe.prompt.txt").read_text() == "red"
    else:
        assert not list(tmp_path.rglob("shoe.prompt.txt"))


def test_a_taken_archive_name_renames_image_and_prompt_alike(tmp_path: Path):
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir()
    first = _claimed(inbox)
    claim.finish_move(
        inbox, first.id, "shoe.png", str(claim.archive_target(archive, "shoe.png", first.id))
    )
    second = _claimed(inbox)
    place = claim.archive_target(archive, "shoe.png", second.id)
    assert place.name == f"shoe.{second.id}.png"
    claim.finish_move(inbox, second.id, "shoe.png", str(place))
    assert (place.parent / f"shoe.{second.id}.prompt.txt").read_text() == "red"
    assert (place.parent / "shoe.prompt.txt").read_text() == "red"


def test_a_failed_job_and_its_retry_carry_the_prompt_file(tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    journal = Journal(tmp_path / "journal.sqlite3")
    claimed = _claimed(inbox)
    from hotfolder.daemon.journal import NewJob

    journal.add([NewJob(claimed.id, str(inbox), "shoe.png", "edit")])
    target = claim.failed_target(inbox / ".hotfolder/failed", "shoe.png", claimed.id)
    claim.write_error(target, {"message": "boom"})
    claim.finish_move(inbox, claimed.id, "shoe.png", str(target), keep_checkpoints=True)
    journal.update(claimed.id, state="failed", place=str(target))
    assert (target.parent / "shoe.prompt.txt").read_text() == "red"
    row = journal.get(claimed.id)
    assert row is not None
    requeue(journal, row)
    assert _job_files(inbox, claimed.id) == ["shoe.png", "shoe.prompt.txt"]
