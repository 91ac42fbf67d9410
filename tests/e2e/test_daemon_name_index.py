"""The dashboard's name index (journal schema v4) off the claim's path: the real daemon indexes
the names of the files it claimed once it is idle, and ``hotfolder web`` run alone finds every
row by name, also those no daemon has indexed yet."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from hotfolder.daemon.journal import JOURNAL_NAME, Journal, NewJob
from tests.helpers.daemon import (
    BIN,
    Daemon,
    base_env,
    convert_to_png_config,
    noise_photos,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _marks(journal: Path) -> tuple[int, int]:
    """The name index's mark and the largest ``seq`` in the journal (read-only)."""
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=30)
    try:
        mark = db.execute("SELECT seq FROM jobs_names_mark").fetchone()[0]
        top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()[0]
    finally:
        db.close()
    return int(mark), int(top)


def test_the_idle_daemon_indexes_the_names_it_claimed(tmp_path: Path) -> None:
    (tmp_path / "hotfolder.toml").write_text(convert_to_png_config())
    (tmp_path / "inbox").mkdir()
    photos = noise_photos(tmp_path / "made", 6, size=(64, 48))
    with Daemon(tmp_path) as daemon:
        daemon.start()
        subprocess.run(["cp", *map(str, photos), str(tmp_path / "inbox")], check=True)
        daemon.wait_states(done=6)
        journal = daemon.state_dir / JOURNAL_NAME

        def caught_up() -> bool:
            mark, top = _marks(journal)
            return top == 6 and mark == top

        try:
            wait_for(caught_up, 30, "the name index to catch up")
        except AssertionError:
            mark, top = _marks(journal)
            pytest.fail(
                f"{journal}: the idle daemon indexed names up to seq {mark} of {top}; "
                "Daemon._loop (hotfolder/daemon/service.py) should call "
                f"journal.index_names() each tick the intake is not behind\n{daemon.log()[-3000:]}"
            )
        assert daemon.stop() == 0
    db = sqlite3.connect(journal)
    try:  # rank 1: the index holds exactly the names of the jobs table
        db.execute("INSERT INTO jobs_names (jobs_names, rank) VALUES ('integrity-check', 1)")
        hits = db.execute(
            "SELECT name FROM jobs WHERE seq IN"
            " (SELECT rowid FROM jobs_names WHERE jobs_names MATCH '\"photo3\"')"
        ).fetchall()
    finally:
        db.close()
    assert hits == [("photo3.png",)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_viewer_alone_finds_names_the_index_has_not_caught_up_with(tmp_path: Path) -> None:
    """A daemon stopped right after a burst of claims leaves their names unindexed; the viewer
    (no daemon to catch the index up) still finds every one, with the indexed ones."""
    state = tmp_path / "state"
    journal = Journal(state / JOURNAL_NAME)
    try:
        for start in range(0, 1500, 500):
            journal.add(
                [
                    NewJob(f"j{i:04d}", "/in", f"shot-{i:04d}.jpg", "web")
                    for i in range(start, start + 500)
                ]
            )
        assert journal.index_names(1000) == 1000  # shot-0000..0999 indexed, the rest not
    finally:
        journal.close()
    assert _marks(state / JOURNAL_NAME) == (1000, 1500)
    port = _free_port()
    log = (tmp_path / "viewer.log").open("wb")
    viewer = subprocess.Popen(
        [str(BIN), "web", "--state-dir", str(state), "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=base_env(tmp_path), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def search(q: str) -> dict | None:
                try:
                    reply = client.get("/api/jobs", params={"q": q})
                except httpx.TransportError:
                    return None
                return reply.json() if reply.status_code == 200 else None

            indexed = wait_for(lambda: search("shot-09"), 30, "the viewer to answer")
            assert indexed["total"] == 100  # shot-0900..0999: all indexed
            pending = search("shot-14")
            assert pending is not None and pending["total"] == 100  # 1400..1499: none indexed
            assert [j["id"] for j in pending["jobs"]] == [
                f"j{i:04d}" for i in range(1499, 1449, -1)
            ]
            straddling = search("9.jpg")  # 100 below the mark, 50 past it
            assert straddling is not None and straddling["total"] == 150
            none = search("nothing-like-it")
            assert none is not None and (none["total"], none["jobs"]) == (0, [])
    finally:
        viewer.terminate()
        code = viewer.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "viewer.log").read_text()
    assert _marks(state / JOURNAL_NAME) == (1000, 1500), "the read-only viewer moved the mark"
