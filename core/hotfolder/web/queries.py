"""Read-only questions to the journal, asked by the dashboard.

Each call opens its own read-only SQLite connection (``mode=ro``) and closes it, so it can run
in any worker thread while the daemon writes (WAL lets readers and the writer go on together).
Call these from a thread (``asyncio.to_thread``), never on the event loop.

Lists are newest first, by ``seq`` (the primary key), ``PAGE_SIZE`` rows a page. A state or
folder filter is answered from the journal's ``(folder, state)`` and ``(state, ...)`` indexes;
a name filter (``q``, a substring) from the trigram index ``jobs_names`` (schema v3) when it
matches few rows, then checked with the same ``LIKE`` as before, so the rows are the same; a
filter that matches many rows, is shorter than three characters, or meets a journal from
before v3 scans, newest first (a page fills at once when many rows match). From v4 the index
lags behind the claims (the daemon catches it up when idle): the rows past its mark are all
candidates, checked by the ``LIKE`` alone, so a search right after a burst of claims, or from
``hotfolder web`` with no daemon to catch the index up, still finds every row.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotfolder.daemon.journal import (
    NAME_INDEX_SINCE,
    NAME_MARK_SINCE,
    STATES,
    JobRow,
    JournalError,
)

PAGE_SIZE = 50
#: Longest name filter taken (longer ones are cut).
MAX_QUERY = 200
#: Shortest name filter the trigram index answers (shorter ones scan).
TRIGRAM = 3
#: Most candidates a name filter takes from the index (more: it scans, newest first).
SPARSE = 2000


@dataclass(frozen=True)
class JobFilter:
    """What the jobs list shows: a state, a folder, a substring of the name, a page (from 1)."""

    state: str | None = None
    folder: str | None = None
    q: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Any) -> JobFilter:
        """From query parameters; unknown states, empty values and bad pages are dropped."""
        state = params.get("state") or None
        page = str(params.get("page") or "1")
        return cls(
            state=state if state in STATES else None,
            folder=params.get("folder") or None,
            q=(params.get("q") or "")[:MAX_QUERY] or None,
            page=max(1, min(int(page), 10**6)) if page.isdigit() else 1,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """As query parameters (for links), with ``changes`` applied; empty ones left out."""
        values = {"state": self.state, "folder": self.folder, "q": self.q, "page": self.page}
        values |= changes
        return {
            k: str(v)
            for k, v in values.items()
            if v not in (None, "") and not (k == "page" and v == 1)
        }


@dataclass(frozen=True)
class JobPage:
    """One page of the jobs list."""

    filter: JobFilter
    rows: list[JobRow]
    total: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", max(1, -(-self.total // PAGE_SIZE)))


@contextlib.contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the journal at ``path``, closed on exit."""
    if not path.is_file():
        msg = f"no journal at {path}"
        raise JournalError(msg, hint="start the daemon once (hotfolder run), or pass --state-dir")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        db.execute("PRAGMA busy_timeout=30000")
        yield db
    finally:
        db.close()


def _phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def indexed_to(db: sqlite3.Connection) -> int | None:
    """The largest ``seq`` whose name the trigram index holds (schema v4 on: the daemon
    indexes the rows it claimed in batches, when idle); None when it holds every row (v3). The
    mark only grows, so read once before a search it holds for the whole search."""
    if _version(db) < NAME_MARK_SINCE:
        return None
    return int(db.execute("SELECT seq FROM jobs_names_mark").fetchone()[0])


def use_name_index(db: sqlite3.Connection, q: str | None) -> bool:
    """Whether to find the names matching ``q`` from the trigram index: the journal has one
    (schema v3 on), ``q`` is long enough for it, and it matches at most :data:`SPARSE` rows
    (more, and a scan newest first fills a page at once; the index would only slow it). The
    rows past the index's mark (v4) are not counted: the search takes them all as candidates,
    and there are few (no more than the rows claimed since the daemon was last idle)."""
    if q is None or len(q) < TRIGRAM:
        return False
    if _version(db) < NAME_INDEX_SINCE:
        return False
    sql = "SELECT COUNT(*) FROM (SELECT rowid FROM jobs_names WHERE jobs_names MATCH ? LIMIT ?)"
    return int(db.execute(sql, (_phrase(q), SPARSE + 1)).fetchone()[0]) <= SPARSE


def _where(f: JobFilter, name_index: bool, mark: int | None) -> tuple[str, list[Any]]:
    sql = " WHERE 1"
    args: list[Any] = []
    if f.state:
        sql += " AND state = ?"
        args.append(f.state)
    if f.folder:
        sql += " AND folder = ?"
        args.append(f.folder)
    if f.q:
        if name_index:
            # the index finds the candidates (it folds case beyond ASCII, so they include
            # every row LIKE matches) among the rows it holds, and every row past its mark
            # is one; LIKE below keeps exactly the rows it always kept
            sql += " AND seq IN (SELECT rowid FROM jobs_names WHERE jobs_names MATCH ?"
            args.append(_phrase(f.q))
            if mark is not None:
                sql += " UNION ALL SELECT seq FROM jobs WHERE seq > ?"
                args.append(mark)
            sql += ")"
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql += " AND name LIKE ? ESCAPE '\\'"
        args.append(f"%{escaped}%")
    return sql, args


def jobs(path: Path, f: JobFilter) -> JobPage:
    """One page of jobs matching ``f``, newest first, with the total count."""
    with reading(path) as db:
        where, args = _where(f, use_name_index(db, f.q), indexed_to(db))
        total = int(db.execute("SELECT COUNT(*) FROM jobs" + where, args).fetchone()[0])
        rows = db.execute(
            "SELECT * FROM jobs" + where + " ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*args, PAGE_SIZE, (f.page - 1) * PAGE_SIZE],
        ).fetchall()
    return JobPage(f, [JobRow.from_sql(r) for r in rows], total)


def job(path: Path, job_id: str) -> JobRow | None:
    """The job with this id, or None."""
    with reading(path) as db:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return JobRow.from_sql(row) if row else None


def failed(path: Path, limit: int = 500) -> list[JobRow]:
    """The failed jobs, most recent first (at most ``limit``)."""
    with reading(path) as db:
        rows = db.execute(
            "SELECT * FROM jobs WHERE state = 'failed' ORDER BY updated DESC LIMIT ?", (limit,)
        ).fetchall()
    return [JobRow.from_sql(r) for r in rows]


def folders(path: Path) -> list[str]:
    """Every folder the journal has jobs for (from the ``(folder, state)`` index)."""
    with reading(path) as db:
        return [r[0] for r in db.execute("SELECT DISTINCT folder FROM jobs ORDER BY folder")]
