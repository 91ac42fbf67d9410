"""hotfolder.fsutil: atomic writes with names at the file system's limit, the removal of what a
killed writer left, and the reading of a failed write (wait and try again, or fail)."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from hotfolder import fsutil
from hotfolder.errors import SinkError, StorageUnavailable
from hotfolder.fsutil import atomic_write, sweep_dead_temps, write_failure, write_temp


@pytest.mark.parametrize(
    "code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENOENT, errno.EIO]
)
def test_a_full_read_only_or_vanished_place_is_waited_for(code):
    error = write_failure(OSError(code, "whatever the OS says"), "cannot write out/a.png")
    assert isinstance(error, StorageUnavailable)
    assert error.holds and error.retryable
    assert error.message == "cannot write out/a.png: whatever the OS says"
    assert "tried again" in (error.hint or "")


@pytest.mark.parametrize("code", [errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG])
def test_a_wrong_place_fails_the_job(code):
    error = write_failure(OSError(code, "no"), "cannot write out/a.png")
    assert type(error) is SinkError
    assert not error.holds and not error.retryable


def test_an_atomic_write_of_a_name_at_the_limit_works(tmp_path):
    name = "写" * 80 + ".json"  # 245 bytes: its temporary name would not fit
    atomic_write(tmp_path / name, b"{}")
    assert (tmp_path / name).read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def _dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def _temp_of(folder: Path, name: str, pid: int, *, host: str | None = None, age: float = 0) -> Path:
    """A temporary file as :func:`write_temp` names it, of the writer ``pid``."""
    path = folder / f".{name}.hf-{host or fsutil._host_tag()}-{pid}-0123abcd.tmp"
    path.write_bytes(b"half of an image")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_temporary_file_is_named_for_its_writer_and_an_atomic_write_leaves_none(tmp_path):
    tmp = write_temp(tmp_path / "photo.png", b"data", mode=0o640)
    assert tmp.name.startswith(f".photo.png.hf-{fsutil._host_tag()}-{os.getpid()}-")
    assert (tmp.read_bytes(), tmp.stat().st_mode & 0o777) == (b"data", 0o640)
    atomic_write(tmp_path / "photo.png", b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["photo.png", tmp.name])


def test_the_sweep_removes_only_what_no_write_will_finish(tmp_path):
    with subprocess.Popen(["sleep", "30"]) as live:
        try:
            dead = _temp_of(tmp_path, "a.png", _dead_pid())
            kept = [
                _temp_of(tmp_path, "b.png", live.pid),  # a writer still running
                _temp_of(tmp_path, "c.png", os.getpid()),  # this process's: another thread's
                _temp_of(tmp_path, "d.png", live.pid, host="abcdef"),  # another host's
            ]
            old = _temp_of(tmp_path, "e.png", live.pid, host="abcdef", age=3600)
            strangers = [tmp_path / ".notes.tmp", tmp_path / "photo.png", tmp_path / ".x.hf-1.tmp"]
            for path in strangers:
                path.write_bytes(b"not ours")
            removed = sweep_dead_temps(tmp_path)
        finally:
            live.kill()
    assert sorted(removed) == sorted([dead, old])
    assert sorted(tmp_path.iterdir()) == sorted(kept + strangers)


def test_the_first_write_into_a_folder_sweeps_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fsutil, "_swept", {})
    left = _temp_of(tmp_path, "photo.png", _dead_pid())
    atomic_write(tmp_path / "other.png", b"x")
    assert not left.exists()
    again = _temp_of(tmp_path, "photo.png", _dead_pid())
    atomic_write(tmp_path / "third.png", b"x")
    assert again.exists()  # looked at once an hour, not at every write
    monkeypatch.setattr(fsutil, "SWEEP_EVERY_SECONDS", 0.0)
    atomic_write(tmp_path / "fourth.png", b"x")
    assert not again.exists()
