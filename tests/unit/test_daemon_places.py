"""Folder plans, the observer choice, scans, claims and start-up reconciliation, on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hotfolder import job as job_module
from hotfolder.config import validate_config
from hotfolder.daemon import claim, recovery
from hotfolder.daemon.folders import plan_folder, plan_folders
from hotfolder.daemon.journal import Journal, NewJob
from hotfolder.daemon.settings import FolderSection
from hotfolder.daemon.watcher import filesystem_type, scan, wants_polling
from hotfolder.errors import ConfigError, HotfolderError
from hotfolder.job import new_job_id
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.prompts import companion

MOUNTS = """\
/dev/sda1 / ext4 rw 0 0
server:/export /mnt/nas nfs4 rw 0 0
//host/share /mnt/smb cifs rw 0 0
me@host:/ /mnt/ssh fuse.sshfs rw 0 0
/dev/sdb1 /mnt/nas/local ext4 rw 0 0
"""


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(load_entrypoints=False))


@pytest.mark.parametrize(
    ("path", "fstype", "polling"),
    [
        ("/home/me/inbox", "ext4", False),
        ("/mnt/nas/inbox", "nfs4", True),
        ("/mnt/nas/local/inbox", "ext4", False),  # the longest mount point wins
        ("/mnt/smb", "cifs", True),
        ("/mnt/ssh/x", "fuse.sshfs", True),
    ],
)
def test_auto_observer_polls_on_network_file_systems(tmp_path, path, fstype, polling):
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    assert filesystem_type(Path(path), mounts) == fstype
    assert wants_polling("auto", Path(path), mounts) is polling
    assert wants_polling("native", Path(path), mounts) is False
    assert wants_polling("polling", Path(path), mounts) is True


def _config(tmp_path, registry, folder: dict, out: str = "inbox/out"):
    raw = {
        "folders": [{"path": "inbox", "chain": "web", **folder}],
        "chains": {
            "web": {"steps": [{"op": "auto-orient"}], "outputs": [{"sink": "folder", "path": out}]}
        },
    }
    return validate_config(raw, registry, path=tmp_path / "hotfolder.toml")


def test_outputs_archive_failed_and_state_are_excluded_from_scans(tmp_path, registry):
    inbox = tmp_path / "inbox"
    for rel in ["a.jpg", "sub/b.jpg", "out/c.jpg", ".hotfolder/processing/1/d.jpg", "notes.txt"]:
        (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
        (inbox / rel).write_bytes(b"x")
    (inbox / "linked-dir").symlink_to(inbox / "sub")
    [plan] = plan_folders(_config(tmp_path, registry, {"recursive": True}))
    assert inbox.resolve() / "out" in plan.excluded
    assert sorted(scan(plan)) == ["a.jpg", "sub/b.jpg"]
    [flat] = plan_folders(_config(tmp_path, registry, {}))
    assert sorted(scan(flat)) == ["a.jpg"]


def test_a_chain_writing_into_its_watched_folder_is_refused(tmp_path, registry):
    (tmp_path / "inbox").mkdir()
    with pytest.raises(ConfigError, match="writes its outputs into the watched folder"):
        plan_folders(_config(tmp_path, registry, {}, out="inbox"))


def test_one_daemon_per_folder(tmp_path):
    (tmp_path / "inbox").mkdir()
    section = FolderSection.model_validate({"path": str(tmp_path / "inbox"), "chain": "web"})
    first, second = plan_folder(section), plan_folder(section)
    first.lock()
    try:
        with pytest.raises(HotfolderError, match="already watched by another hotfolder daemon"):
            second.lock()
    finally:
        first.unlock()


def test_claim_finish_and_quarantine(tmp_path):
    root = tmp_path
    (root / "a.jpg").write_bytes(b"data")
    claimed = claim.claim(root, "a.jpg")
    assert claimed.path == root / ".hotfolder/processing" / f"{claimed.id}.a.jpg"
    assert claim.input_path(root, claimed.id, "a.jpg") == claimed.path
    assert claimed.path.read_bytes() == b"data"
    assert not (root / "a.jpg").exists()
    assert claim.claim(root, "a.jpg") is None  # gone: a second claimer loses
    target = claim.archive_target(root / "archive", "a.jpg", claimed.id)
    claim.finish_move(root, claimed.id, "a.jpg", str(target))
    claim.finish_move(root, claimed.id, "a.jpg", str(target))  # repeating is harmless
    assert target.read_bytes() == b"data"
    assert list((root / ".hotfolder/processing").iterdir()) == []
    assert claim.archive_target(root / "archive", "a.jpg", "J2").name == "a.J2.jpg"

    (root / "evil.jpg").symlink_to("/etc/passwd")
    _, where = claim.quarantine(root, root / "failed", "evil.jpg", "it is a symbolic link")
    assert where.is_symlink() and os.readlink(where) == "/etc/passwd"
    info = json.loads(Path(str(where) + ".error.json").read_text())
    assert info["class"] == "UnsafeInputError" and "symbolic link" in info["message"]


def test_reconcile_after_crashes(tmp_path):
    root = tmp_path / "inbox"
    [plan] = [plan_folder(FolderSection.model_validate({"path": str(root), "chain": "web"}))]
    processing = root / ".hotfolder/processing"
    processing.mkdir(parents=True)
    orphan, done, empty, run, gone, failed = (new_job_id() for _ in range(6))
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        # 1. claimed, then a crash before the journal insert
        (processing / f"{orphan}.o.jpg").write_bytes(b"o")
        # 2. done in the journal, then a crash before the original (and prompt) was archived
        (processing / f"{done}.d.jpg").write_bytes(b"d")
        (processing / f"{done}.d.prompt.txt").write_text("make it blue")
        journal.add([NewJob(done, plan.key, "d.jpg", "web")])
        journal.update(done, state="done", place=str(root / "archive/d.jpg"))
        # 3. a job's folder with no row; 4. a running job with a saved paid result;
        # 5. a queued job whose file vanished; 6. a failed job whose move was cut short
        (processing / empty).mkdir()
        (processing / run / "checkpoints").mkdir(parents=True)
        (processing / run / "checkpoints/0.png").write_bytes(b"paid")
        (processing / f"{run}.r.jpg").write_bytes(b"r")
        (processing / f"{failed}.f.jpg").write_bytes(b"f")
        journal.add([NewJob(run, plan.key, "r.jpg", "web"), NewJob(gone, plan.key, "g.jpg", "web")])
        journal.add([NewJob(failed, plan.key, "f.jpg", "web")])
        journal.start(run)
        journal.update(failed, state="failed", place=str(root / "failed/f.jpg"))
        # 7. a file someone put there
        (processing / "notes.txt").write_text("mine")

        recovery.recover(journal, [plan])

        assert journal.get(orphan).state == "queued" and journal.get(orphan).name == "o.jpg"
        assert (root / "archive/d.jpg").read_bytes() == b"d"
        assert (root / "archive/d.prompt.txt").read_text() == "make it blue"
        assert (journal.get(run).state, journal.get(run).attempts) == ("queued", 1)
        assert journal.get(gone).state == "failed"
        assert (root / "failed/f.jpg").read_bytes() == b"f"
        assert sorted(p.name for p in processing.iterdir()) == sorted(
            [f"{orphan}.o.jpg", run, f"{run}.r.jpg", "notes.txt"]
        )
        assert (processing / run / "checkpoints/0.png").read_bytes() == b"paid"
    finally:
        journal.close()


def test_claimed_files_of_the_old_layout_move_to_their_names_at_start_up(tmp_path):
    """An earlier hotfolder kept a claimed file in its job's folder
    (``processing/<job-id>/a.jpg``): an upgrade finds each where this layout looks, with its
    checkpoints and prompt file, and removes the spare folders it made ahead."""
    root = tmp_path / "inbox"
    [plan] = [plan_folder(FolderSection.model_validate({"path": str(root), "chain": "web"}))]
    processing = root / ".hotfolder/processing"
    queued, paid, orphan = (new_job_id() for _ in range(3))
    for job_id, name in ((queued, "q.jpg"), (paid, "p.jpg"), (orphan, "o.jpg")):
        (processing / job_id).mkdir(parents=True)
        (processing / job_id / name).write_bytes(name.encode())
    (processing / queued / "q.prompt.txt").write_text("a red hat")
    (processing / paid / "checkpoints").mkdir()
    (processing / paid / "checkpoints/0.png").write_bytes(b"paid")
    spare = root / ".hotfolder/spare/batch1"  # the empty folders it made ahead
    (spare / "0").mkdir(parents=True)
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        journal.add(
            [NewJob(queued, plan.key, "q.jpg", "web"), NewJob(paid, plan.key, "p.jpg", "web")]
        )

        recovery.recover(journal, [plan])

        assert claim.input_path(root, queued, "q.jpg").read_bytes() == b"q.jpg"
        assert claim.prompt_path(root, queued, "q.jpg").read_text() == "a red hat"
        assert claim.input_path(root, paid, "p.jpg").read_bytes() == b"p.jpg"
        assert (claim.checkpoint_dir(root, paid) / "0.png").read_bytes() == b"paid"
        assert journal.get(orphan).state == "queued" and journal.get(orphan).name == "o.jpg"
        assert not (processing / queued).exists() and not (processing / orphan).exists()
        assert not (root / ".hotfolder/spare").exists()
        assert {r.state for r in journal.jobs()} == {"queued"}
    finally:
        journal.close()


def test_a_long_name_is_claimed_under_a_name_that_fits_with_its_prompt_file(tmp_path):
    name = "é" * 120 + ".jpg"  # 244 bytes: with a job id in front it would not fit
    (tmp_path / name).write_bytes(b"x")
    (tmp_path / companion(Path(name))).write_text("a prompt")
    claimed = claim.claim(tmp_path, name, with_prompt=True)
    assert claimed is not None
    assert claimed.path == claim.input_path(tmp_path, claimed.id, name)
    assert claimed.path.suffix == ".jpg" and claimed.path.name.startswith(f"{claimed.id}.")
    assert claim.prompt_path(tmp_path, claimed.id, name).read_text() == "a prompt"
    assert len(claim.prompt_path(tmp_path, claimed.id, name).name.encode()) <= 255
    assert claim.split_claimed(claimed.path.name)[0] == claimed.id


def test_a_burst_of_hints_wakes_the_loop_once_and_keeps_their_order():
    import asyncio
    import threading

    from hotfolder.daemon.watcher import HintQueue

    async def main() -> tuple[list[str], int]:
        loop = asyncio.get_running_loop()
        delivered: list[str] = []
        wakeups = 0
        real = loop.call_soon_threadsafe

        def counting(callback, *args):
            nonlocal wakeups
            wakeups += 1
            return real(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        hints = HintQueue(loop, lambda plan, path, kind: delivered.append(path))
        thread = threading.Thread(
            target=lambda: [hints(None, f"f{i}", "arrived") for i in range(5000)]
        )
        thread.start()
        thread.join()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return delivered, wakeups

    delivered, wakeups = asyncio.run(main())
    assert delivered == [f"f{i}" for i in range(5000)]
    # One byte in the loop's self-pipe for the whole burst, not 5,000 (a full pipe loses signals).
    assert wakeups == 1


@pytest.mark.parametrize("length", [8, 100, 244, 245, 255])
def test_every_place_name_fits_255_bytes_with_its_error_file(tmp_path, length):
    from hotfolder.daemon.claim import ERROR_SUFFIX, fitting_name

    stem = ("写" * 100).encode()[: length - 4].decode(errors="ignore")
    name = stem + "x" * (length - 4 - len(stem.encode())) + ".jpg"
    assert len(name.encode()) == length
    plain = fitting_name(tmp_path / name)
    tagged = fitting_name(tmp_path / name, tag="20261130T180303-486af429")
    for path in (plain, tagged):
        assert len((path.name + ERROR_SUFFIX).encode()) <= 255
        assert path.suffix == ".jpg" and path.name.startswith(name[:1])
    if length + len(ERROR_SUFFIX) <= 255:
        assert plain.name == name  # short names are left alone
    assert fitting_name(tmp_path / name, reserve=0).name == name  # the name itself fits
    assert tagged != plain


def test_job_ids_made_in_one_second_never_repeat(monkeypatch):
    """Two claims in one second that draw the same 32 random bits get two ids: the journal
    refuses a second row with the same id, and a tick's whole batch with it."""
    draws = iter([b"\x00\x00\x00\x01", b"\x00\x00\x00\x01", b"\x00\x00\x00\x02"])
    monkeypatch.setattr(job_module.os, "urandom", lambda n: next(draws))
    monkeypatch.setattr(job_module.time, "time", lambda: 1_796_000_000.0)
    first, second = new_job_id(), new_job_id()
    assert first == "20261130T005320-00000001"
    assert second == "20261130T005320-00000002"
