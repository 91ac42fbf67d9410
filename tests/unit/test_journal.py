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


def _mark(journal):
    return journal._db.execute("SELECT seq FROM jobs_names_mark").fetchone()[0]


def _fts(journal, name):
    """The ids the trigram index alone gives for ``name``."""
    rows = journal._db.execute(
        "SELECT id FROM jobs WHERE seq IN"
        " (SELECT rowid FROM jobs_names WHERE jobs_names MATCH ?) ORDER BY seq",
        (f'"{name}"',),
    )
    return [r[0] for r in rows]


def _index_whole(journal, *, caught_up):
    """FTS5's integrity-check of the name index; ``caught_up``: also that it holds exactly the
    names of the jobs table (rank 1; only true once no row waits past the mark). SQLite 3.40's
    plain check does not notice a 'delete' of a row never indexed; the rank-1 one does."""
    try:
        journal._db.execute(
            "INSERT INTO jobs_names (jobs_names, rank) VALUES ('integrity-check', ?)",
            (int(caught_up),),
        )
    except sqlite3.DatabaseError as exc:
        pytest.fail(
            f"the name index in {journal.path} is corrupt ({exc}): a trigger touched it for a "
            "row past the mark, or index_names skipped or repeated rows; see the v4 script in "
            "hotfolder/daemon/journal.py"
        )


def test_claims_skip_the_name_index_and_index_names_catches_up_in_batches(journal):
    journal.add(_jobs(2500))
    assert _mark(journal) == 0 and _fts(journal, "f7.png") == []
    _index_whole(journal, caught_up=False)
    assert [journal.index_names(1000) for _ in range(4)] == [1000, 1000, 500, 0]
    assert _mark(journal) == 2500
    assert _fts(journal, "f7.png") == ["job-00007"]
    assert _fts(journal, "f2499.png") == ["job-02499"]
    _index_whole(journal, caught_up=True)
    journal.add(_jobs(3, start=2500))
    assert journal.index_names() == 3 and _mark(journal) == 2503
    _index_whole(journal, caught_up=True)


def test_renames_and_deletes_on_both_sides_of_the_mark_keep_the_index_whole(journal):
    journal.add(_jobs(10))
    assert journal.index_names(5) == 5  # job-00000..00004 indexed; job-00005..00009 not yet
    with journal.transaction() as db:
        db.execute("UPDATE jobs SET name = 'renamed-indexed.png' WHERE id = 'job-00001'")
        db.execute("UPDATE jobs SET name = 'renamed-pending.png' WHERE id = 'job-00007'")
        db.execute("DELETE FROM jobs WHERE id IN ('job-00002', 'job-00008')")
    _index_whole(journal, caught_up=False)
    assert _fts(journal, "renamed-indexed") == ["job-00001"]
    assert _fts(journal, "f1.png") == _fts(journal, "f2.png") == []
    assert _fts(journal, "renamed-pending") == []
    assert journal.index_names() == 4  # the pending rows still there, by their names now
    _index_whole(journal, caught_up=True)
    assert _fts(journal, "renamed-pending") == ["job-00007"]
    assert _fts(journal, "f7.png") == _fts(journal, "f8.png") == []
    with journal.transaction() as db:  # every row indexed now: both go through the index
        db.execute("UPDATE jobs SET name = 'again.png' WHERE id = 'job-00007'")
        db.execute("DELETE FROM jobs WHERE id = 'job-00009'")
    _index_whole(journal, caught_up=True)
    assert _fts(journal, "again.png") == ["job-00007"] and _fts(journal, "f9.png") == []
    assert journal.index_names() == 0


def test_a_v3_journal_is_migrated_with_every_row_marked_indexed(tmp_path):
    path = tmp_path / JOURNAL_NAME
    db = sqlite3.connect(path)
    for script in SCHEMA[:3]:
        db.executescript(script)
    db.execute("PRAGMA user_version=3")
    db.executemany(
        "INSERT INTO jobs (id, folder, name, chain, state, created, updated)"
        " VALUES (?, '/in', ?, 'web', 'done', 0, 0)",
        [(f"old{i}", f"old-{i}.png") for i in range(20)],
    )
    db.execute("DELETE FROM jobs WHERE id = 'old19'")  # seq 20, by v3's triggers: MAX is 19
    db.execute("UPDATE jobs SET name = 'moved.png' WHERE id = 'old3'")
    db.commit()
    db.close()
    readonly = Journal(path, readonly=True)
    assert (readonly.version, readonly.index_names()) == (3, 0)  # left as it is
    readonly.close()
    journal = Journal(path)
    try:
        assert journal.version == len(SCHEMA)
        assert _mark(journal) == 19 and journal.index_names() == 0
        triggers = {r[0] for r in journal._db.execute("SELECT name FROM sqlite_master"
                                                      " WHERE type = 'trigger'")}  # fmt: skip
        assert triggers == {"jobs_names_delete", "jobs_names_update"}
        _index_whole(journal, caught_up=True)
        assert _fts(journal, "moved") == ["old3"] and _fts(journal, "old-19") == []
        journal.add(_jobs(2))
        assert journal.index_names() == 2 and _mark(journal) == 22  # seq 21, 22 (AUTOINCREMENT)
        _index_whole(journal, caught_up=True)
    finally:
        journal.close()
