"""The SQLite journal: durable settings, schema versions, the queue on disk, state changes."""

from __future__ import annotations

import sqlite3
import time

import pytest

from hotfolder.daemon.journal import JOURNAL_NAME, SCHEMA, Journal, JournalError, NewJob


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / JOURNAL_NAME)
    yield j
    j.close()


def _jobs(n, folder="/in", chain="web", start=0):
    return [
        NewJob(f"job-{i:05d}", folder, f"f{i}.png", chain, f"1:{i}:{i}")
        for i in range(start, start + n)
    ]


def test_wal_full_sync_and_schema_version(journal, tmp_path):
    db = journal._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA)
    Journal(tmp_path / JOURNAL_NAME).close()  # opening again migrates nothing


def test_a_journal_from_a_newer_hotfolder_is_refused(tmp_path):
    path = tmp_path / JOURNAL_NAME
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(SCHEMA) + 1}")
    db.close()
    with pytest.raises(JournalError, match="upgrade hotfolder"):
        Journal(path)


def test_readonly_needs_an_existing_journal(tmp_path):
    with pytest.raises(JournalError, match="hotfolder run"):
        Journal(tmp_path / "missing.sqlite3", readonly=True)


def test_queue_order_limits_and_exclusions(journal):
    journal.add(_jobs(3, folder="/a", chain="paid") + _jobs(2, folder="/b", start=3))
    assert [r.id for r in journal.runnable(10)] == [f"job-{i:05d}" for i in range(5)]
    assert [r.id for r in journal.runnable(2)] == ["job-00000", "job-00001"]
    assert {r.folder for r in journal.runnable(10, exclude_folders=["/a"])} == {"/b"}
    assert {r.chain for r in journal.runnable(10, exclude_chains=["paid"])} == {"web"}
    journal.update("job-00000", not_before=time.time() + 60)
    assert journal.runnable(1)[0].id == "job-00001"
    assert journal.next_wake() is not None


def test_attempts_states_and_recovery(journal):
    journal.add(_jobs(2))
    assert journal.start("job-00000") == 1
    assert journal.start("job-00001") == 1
    journal.update("job-00001", state="paused", error={"class": "AuthError", "message": "401"})
    assert journal.requeue_running() == 1  # as after a crash: attempts are kept
    row = journal.get("job-00000")
    assert (row.state, row.attempts) == ("queued", 1)
    assert journal.start("job-00000") == 2
    assert journal.resume_paused() == 1
    assert journal.get("job-00001").state == "queued"
    assert journal.get("job-00001").error == {"class": "AuthError", "message": "401"}
    with pytest.raises(ValueError, match="unknown job state"):
        journal.update("job-00000", state="lost")


def test_done_keys_seen_files_counts_errors_and_spend(journal):
    journal.add(_jobs(3))
    journal.update("job-00000", state="done", key="abc:def", cost_usd=0.25, finished=time.time(),
                   outputs=[{"sink": "folder", "location": "/out/f0.png"}])  # fmt: skip
    journal.update("job-00001", state="failed", error={"class": "InputError", "message": "bad"})
    assert journal.done_with_key("abc:def").id == "job-00000"
    assert journal.done_with_key("abc:xyz") is None
    assert journal.get("job-00000").outputs == [{"sink": "folder", "location": "/out/f0.png"}]
    assert journal.seen("/in", "f2.png", "1:2:2")
    assert not journal.seen("/in", "f2.png", "1:2:3")
    assert journal.counts() == {"/in": {"done": 1, "failed": 1, "queued": 1}}
    assert [r.id for r in journal.last_errors("/in")] == ["job-00001"]
    assert journal.spent_since(time.time() - 60) == 0.25
    journal.set_meta("pause", {"kind": "auth"})
    assert journal.meta("pause") == {"kind": "auth"}
    journal.set_meta("pause", None)
    assert journal.meta("pause") is None


def test_ten_thousand_queued_jobs_are_read_a_few_at_a_time(journal):
    for start in range(0, 10_000, 1000):
        journal.add(_jobs(1000, start=start))
    assert journal.counts() == {"/in": {"queued": 10_000}}
    rows = journal.runnable(4)
    assert [r.id for r in rows] == ["job-00000", "job-00001", "job-00002", "job-00003"]


def test_another_process_sees_committed_changes(journal, tmp_path):
    journal.add(_jobs(1))
    other = Journal(tmp_path / JOURNAL_NAME, readonly=True)
    try:
        assert other.get("job-00000").state == "queued"
        journal.update("job-00000", state="done")
        assert other.get("job-00000").state == "done"
    finally:
        other.close()


def test_real_and_simulated_spend_are_kept_apart(journal):
    journal.add(_jobs(4))
    now = time.time()
    journal.update("job-00000", state="done", finished=now, cost_usd=0.5, simulated_usd=0.0)
    journal.update("job-00001", state="done", finished=now, cost_usd=0.0, simulated_usd=6.75)
    journal.update("job-00002", state="done", finished=now - 7200, cost_usd=1.0,
                   simulated_usd=2.0)  # fmt: skip
    journal.update("job-00003", state="failed", finished=now)  # no cost recorded
    assert journal.get("job-00001").simulated_usd == 6.75
    assert journal.spent_since(now - 60) == 0.5
    assert journal.simulated_since(now - 60) == 6.75
    assert (journal.spent_since(0), journal.simulated_since(0)) == (1.5, 8.75)


def _v1_journal(path):
    """A journal as hotfolder wrote it at schema v1, with one finished job."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA[0])
    db.execute("PRAGMA user_version=1")
    db.execute(
        "INSERT INTO jobs (id, folder, name, chain, state, created, updated, finished, cost_usd)"
        " VALUES ('old', '/in', 'a.png', 'web', 'done', 1, 1, ?, 2.0)",
        (time.time(),),
    )
    db.commit()
    db.close()


def test_a_v1_journal_is_migrated_with_its_rows_kept(tmp_path):
    path = tmp_path / JOURNAL_NAME
    _v1_journal(path)
    journal = Journal(path)
    try:
        assert journal.version == len(SCHEMA) >= 2
        columns = [row[1] for row in journal._db.execute("PRAGMA table_info(jobs)")]
        assert columns[-1] == "simulated_usd"
        old = journal.get("old")
        assert (old.cost_usd, old.simulated_usd) == (2.0, None)
        assert (journal.spent_since(0), journal.simulated_since(0)) == (2.0, 0.0)
        journal.update("old", simulated_usd=1.25)
        assert journal.simulated_since(0) == 1.25
    finally:
        journal.close()
    Journal(path).close()  # opening again migrates nothing


def test_a_v1_journal_opened_read_only_is_read_as_it_is(tmp_path):
    path = tmp_path / JOURNAL_NAME
    _v1_journal(path)
    journal = Journal(path, readonly=True)
    try:
        assert journal.version == 1
        assert journal.get("old").simulated_usd is None
        assert (journal.spent_since(0), journal.simulated_since(0)) == (2.0, 0.0)
    finally:
        journal.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1  # left as it was
    db.close()


def test_a_file_failed_before_it_was_a_job_is_recorded_whole_at_once(tmp_path):
    """A quarantined file's row has its error from the first moment a reader can see it (the
    row was once added, then updated: a reader in between saw a failed job with no error)."""
    from hotfolder.daemon.journal import Journal, NewJob

    journal = Journal(tmp_path / "journal.sqlite3")
    error = {"class": "UnsafeInputError", "message": "link.png was not processed", "hint": "h"}
    journal.add_failed(
        NewJob("q1", "/in", "link.png", "web"), place="/in/failed/link.png", error=error
    )
    row = journal.get("q1")
    assert row is not None
    assert (row.state, row.place, row.error) == ("failed", "/in/failed/link.png", error)
    assert row.finished is not None
    journal.close()
