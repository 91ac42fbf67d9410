"""The backlog claimer's helper process, run as the daemon runs it (``python -I -S`` by path) on
real files: it claims exactly the files the daemon's readiness rule takes at once, and answers
"look" or "gone" for every other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hotfolder.daemon import _claim_helper

HELPER = Path(_claim_helper.__file__)
OLD = time.time() - 3600


@pytest.fixture
def helper():
    with subprocess.Popen(
        [sys.executable, "-I", "-S", str(HELPER)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        yield proc
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0


def ask(proc: subprocess.Popen[str], folder: Path, processing: Path, names: list[str]) -> Any:
    """Ask the helper to claim ``<name>.jpg`` of ``folder`` as ``j-<name>.jpg``."""
    assert proc.stdin is not None and proc.stdout is not None
    files = [[f"{n}.jpg", f"j-{n}.jpg", f"{n}.prompt.txt"] for n in names]
    request = [str(folder), str(processing), time.time() - 10, files]
    proc.stdin.write(json.dumps(request) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def _file(path: Path, data: bytes = b"image bytes", *, mtime: float = OLD) -> Path:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def test_an_old_file_is_claimed_and_every_other_is_left_to_the_daemon(tmp_path, helper):
    inbox, processing = tmp_path / "inbox", tmp_path / "processing"
    inbox.mkdir()
    processing.mkdir()
    old = _file(inbox / "old.jpg")
    young = _file(inbox / "young.jpg", mtime=time.time())
    empty = _file(inbox / "empty.jpg", b"")
    linked = _file(inbox / "linked.jpg")
    os.link(linked, tmp_path / "elsewhere.jpg")
    link = inbox / "link.jpg"
    link.symlink_to(old)
    paired = _file(inbox / "paired.jpg")
    _file(inbox / "paired.prompt.txt", b"a prompt")
    held = _file(inbox / "held.jpg")
    names = ["old", "young", "empty", "linked", "link", "paired", "held", "missing"]
    with held.open("ab"):  # a writer still has it open
        os.utime(held, (OLD, OLD))
        answers = ask(helper, inbox, processing, names)

    by_name = dict(zip(names, answers, strict=True))
    size, mtime_ns, ino, mode, nlink = by_name.pop("old")
    st = (processing / "j-old.jpg").lstat()
    assert (size, mtime_ns, ino, mode, nlink) == (
        st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, st.st_nlink,
    )  # fmt: skip
    assert not old.exists()
    assert by_name == {
        "young": "look", "empty": "look", "linked": "look", "link": "look", "paired": "look",
        "held": "look", "missing": "gone",
    }  # fmt: skip
    assert sorted(p.name for p in processing.iterdir()) == ["j-old.jpg"]
    for path in (young, empty, linked, paired, held):
        assert path.exists()
    assert link.is_symlink()


def test_it_answers_request_after_request(tmp_path, helper):
    processing = tmp_path / "processing"
    processing.mkdir()
    for n in range(3):
        _file(tmp_path / f"{n}.jpg")
        (answer,) = ask(helper, tmp_path, processing, [str(n)])
        assert isinstance(answer, list) and answer[0] == len(b"image bytes")
        assert (processing / f"j-{n}.jpg").is_file()
