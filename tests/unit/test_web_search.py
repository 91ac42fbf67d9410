"""The jobs list's name search (``/jobs?q=``): answered from the journal's trigram index when
few rows match, by a scan otherwise, and the same rows either way, as the plain ``LIKE`` of
before gives them: case folded for ASCII only, ``%``, ``_`` and quotes taken literally, short
filters, rows the index has not caught up with yet (schema v4: right after a burst of claims),
and journals from before (schema v2 without the index, v3 with it kept by triggers), read as
they are."""

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


def _index(path: Path, rows: int | None = None) -> int:
    """Index the names of the next ``rows`` rows (None: all), as the idle daemon does; returns
    the mark (the largest seq indexed)."""
    journal = Journal(path)
    try:
        if rows is None:
            while journal.index_names():
                pass
        else:
            journal.index_names(rows)
    finally:
        journal.close()
    with queries.reading(path) as db:
        mark = queries.indexed_to(db)
    assert mark is not None, f"{path} is not schema v4: index_names has no mark to move"
    return mark


@pytest.fixture
def claimed_path(tmp_path: Path) -> Path:
    """A journal right after its rows were claimed: none of their names is indexed yet."""
    path = tmp_path / JOURNAL_NAME
    journal = Journal(path)
    journal.add([NewJob(f"j{i:03d}", "/in", name, "web") for i, name in enumerate(NAMES)])
    # many rows with one name part: a broad filter scans instead of taking them from the index
    journal.add([NewJob(f"m{i:05d}", "/in", f"many-{i}.jpg", "web") for i in range(2500)])
    journal.close()
    return path


@pytest.fixture
def journal_path(claimed_path: Path) -> Path:
    """The same journal once the idle daemon has indexed every name."""
    _index(claimed_path)
    return claimed_path


@pytest.mark.parametrize("indexed", [None, 6, 0], ids=["all-indexed", "6-indexed", "none-indexed"])
@pytest.mark.parametrize("q", QUERIES)
def test_the_index_gives_the_rows_like_gives(
    claimed_path: Path, q: str, indexed: int | None
) -> None:
    """Whatever part of the names is indexed (the first six rows split ``photo`` across the
    mark), the search gives exactly LIKE's rows."""
    if indexed != 0:
        _index(claimed_path, indexed)
    ids, total = _search(claimed_path, q)
    expected = _like(claimed_path, q)
    assert ids == expected, f"name search {q!r} ({indexed} indexed): {ids} != LIKE's {expected}"
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


def _fts(path: Path, q: str) -> list[str]:
    """The ids the trigram index alone gives for ``q``."""
    with queries.reading(path) as db:
        rows = db.execute(
            "SELECT id FROM jobs WHERE seq IN"
            " (SELECT rowid FROM jobs_names WHERE jobs_names MATCH ?) ORDER BY seq DESC",
            ('"' + q + '"',),
        )
        return [r[0] for r in rows]


def test_a_search_right_after_a_burst_of_claims_finds_every_row(journal_path: Path) -> None:
    """Claims go in without the index (a burst of 3,000 in batches of 1,000, as the intake
    journals them); the search finds them all at once, and again once they are indexed, then
    from the index."""
    with queries.reading(journal_path) as db:
        before = queries.indexed_to(db)
    journal = Journal(journal_path)
    for start in range(0, 3000, 1000):
        journal.add(
            [
                NewJob(f"b{i:05d}", "/in", f"burst-{i:05d}.jpg", "web")
                for i in range(start, start + 1000)
            ]
        )
    journal.add([NewJob("late", "/in", "photo-late.jpg", "web")])
    journal.close()
    with queries.reading(journal_path) as db:
        assert queries.indexed_to(db) == before, "a claim moved the mark: it indexed the name"
        assert queries.use_name_index(db, "photo")
    photos = ["late", *(i for i in _like(journal_path, "photo") if i != "late")]
    assert _fts(journal_path, "photo-late") == [], "a claimed row was indexed at once"
    assert _search(journal_path, "photo") == (photos, 4)
    assert _search(journal_path, "burst-0299") == ([f"b{i:05d}" for i in range(2999, 2989, -1)], 10)
    assert _search(journal_path, "burst-") == (_like(journal_path, "burst-"), 3000)

    assert _index(journal_path) == before + 3001  # type: ignore[operator]
    assert _fts(journal_path, "photo-late") == ["late"]
    assert _fts(journal_path, "burst-0299") == [f"b{i:05d}" for i in range(2999, 2989, -1)]
    assert _search(journal_path, "photo") == (photos, 4)
    assert _search(journal_path, "burst-0299")[1] == 10


def _v3_journal(path: Path) -> None:
    """A journal as hotfolder wrote it at schema v3: every name indexed by triggers."""
    db = sqlite3.connect(path)
    for script in SCHEMA[:3]:
        db.executescript(script)
    db.execute("PRAGMA user_version=3")
    db.executemany(
        "INSERT INTO jobs (id, folder, name, chain, state, created, updated)"
        " VALUES (?, '/in', ?, 'web', 'done', 0, 0)",
        [(f"old{i}", name) for i, name in enumerate(NAMES)],
    )
    db.commit()
    db.close()


def test_a_v3_journal_is_searched_as_it_is_and_after_its_migration(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    _v3_journal(path)
    with queries.reading(path) as ro:  # read-only: left at v3, every row taken as indexed
        assert queries.indexed_to(ro) is None and queries.use_name_index(ro, "photo")
    before = _search(path, "photo")
    assert before == (_like(path, "photo"), 3)
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == 3
    journal = Journal(path)  # the daemon opens it: migrated, every row marked indexed
    journal.add([NewJob("new", "/in", "photo-new.jpg", "web")])
    journal.close()
    with queries.reading(path) as ro:
        assert queries.indexed_to(ro) == len(NAMES)
    assert _search(path, "photo") == (["new", *before[0]], 4)
    assert _search(path, "café") == (_like(path, "café"), 1)
    assert _index(path) == len(NAMES) + 1
    assert _fts(path, "photo") == _like(path, "photo")
