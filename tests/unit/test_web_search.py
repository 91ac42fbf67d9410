"""The jobs list's name search (``/jobs?q=``): answered from the journal's trigram index when
few rows match, by a scan otherwise, and the same rows either way, as the plain ``LIKE`` of
before gives them: case folded for ASCII only, ``%``, ``_`` and quotes taken literally, short
filters, and a journal from before the index (schema v2, read as it is)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hotfolder.daemon.journal import JOURNAL_NAME, SCHEMA, Journal, NewJob
from hotfolder.web import queries

NAMES = [
    "photo-0001.jpg", "Photo-0002.JPG", "PHOTO_0003.png", "holiday 100%.jpg", "a_b.png",
    "ab.png", 'say "cheese".jpg', "café.jpg", "CAFÉ.jpg", "Straße.tif", "x.jpg",
]  # fmt: skip
QUERIES = [
    "photo", "PHOTO", "hoto-0", "0002", "_", "%", "100%", "a_b", '"cheese"', 'y "c', "café",
    "CAFÉ", "afé", "straße", "x", "xy", ".jpg", "nothing-like-it", "'", "AND", "OR NOT *",
]  # fmt: skip


def _like(path: Path, q: str) -> list[str]:
    """What the dashboard answered before the index: a plain LIKE, newest first."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT id FROM jobs WHERE name LIKE ? ESCAPE '\\' ORDER BY seq DESC", (f"%{escaped}%",)
        )
        return [r[0] for r in rows]


def _search(path: Path, q: str) -> tuple[list[str], int]:
    ids: list[str] = []
    page, total = 1, 0
    while True:
        result = queries.jobs(path, queries.JobFilter(q=q, page=page))
        ids += [r.id for r in result.rows]
        total = result.total
        if page >= result.pages:
            return ids, total
        page += 1


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / JOURNAL_NAME
    journal = Journal(path)
    journal.add([NewJob(f"j{i:03d}", "/in", name, "web") for i, name in enumerate(NAMES)])
    # many rows with one name part: a broad filter scans instead of taking them from the index
    journal.add([NewJob(f"m{i:05d}", "/in", f"many-{i}.jpg", "web") for i in range(2500)])
    journal.close()
    return path


@pytest.mark.parametrize("q", QUERIES)
def test_the_index_gives_the_rows_like_gives(journal_path: Path, q: str) -> None:
    ids, total = _search(journal_path, q)
    expected = _like(journal_path, q)
    assert ids == expected, f"name search {q!r}: {ids} != LIKE's {expected}"
    assert total == len(expected)


def test_filters_that_match_many_rows_scan_and_few_use_the_index(journal_path: Path) -> None:
    with queries.reading(journal_path) as db:
        assert queries.use_name_index(db, "photo")
        assert not queries.use_name_index(db, "many-")  # 2,500 > SPARSE candidates
        assert not queries.use_name_index(db, "ab")  # too short for trigrams
    ids, total = _search(journal_path, "many-")
    assert total == 2500 and ids == _like(journal_path, "many-")


def test_names_added_and_removed_later_are_found_and_gone(journal_path: Path) -> None:
    journal = Journal(journal_path)
    journal.add([NewJob("late", "/in", "late-arrival.jpg", "web")])
    assert _search(journal_path, "arrival") == (["late"], 1)
    with journal.transaction() as db:
        db.execute("UPDATE jobs SET name = 'renamed.jpg' WHERE id = 'late'")
    assert _search(journal_path, "arrival") == ([], 0)
    assert _search(journal_path, "renamed") == (["late"], 1)
    with journal.transaction() as db:
        db.execute("DELETE FROM jobs WHERE id = 'late'")
    journal.close()
    assert _search(journal_path, "renamed") == ([], 0)


def test_a_journal_from_before_the_index_is_searched_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    db = sqlite3.connect(path)
    db.executescript(SCHEMA[0])
    db.executescript(SCHEMA[1])
    db.execute("PRAGMA user_version=2")
    db.executemany(
        "INSERT INTO jobs (id, folder, name, chain, state, created, updated)"
        " VALUES (?, '/in', ?, 'web', 'done', 0, 0)",
        [(f"old{i}", name) for i, name in enumerate(NAMES)],
    )
    db.commit()
    db.close()
    before = _search(path, "photo")  # read-only: scanned, the file left at v2
    assert before[1] == 3
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == 2
    Journal(path).close()  # the daemon opens it: migrated, the index built from the rows
    with queries.reading(path) as ro:
        assert queries.use_name_index(ro, "photo")
    assert _search(path, "photo") == before
    assert _search(path, "café") == (_like(path, "café"), 1)
