"""Live updates: ``GET /events``, a server-sent event stream.

Each stream keeps one read-only connection to the journal and looks at ``PRAGMA
data_version`` every ``poll_seconds`` (constant time: it changes whenever another connection
commits). When it changed, or the daemon reloaded its config (SIGHUP), the stream sends
``event: jobs`` with the counts by state; the page's script then fetches its live part again.
A comment line every :data:`KEEPALIVE_SECONDS` keeps proxies from closing an idle stream.
Streams end when the client goes or the server stops.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hotfolder.web.context import Dashboard

KEEPALIVE_SECONDS = 15.0


class JournalWatch:
    """One read-only connection that tells whether the journal changed since the last look.

    Used from one worker thread at a time (``asyncio.to_thread``, never concurrently).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._version: int | None = None

    def changed(self, force: bool = False) -> dict[str, int] | None:
        """The counts by state when the journal changed since the last call (the first call
        always counts as a change, and so does any with ``force``), else None."""
        if self._db is None:
            if not self.path.is_file():
                return None
            self._db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, timeout=30, check_same_thread=False
            )
        version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version and not force:
            return None
        self._version = version
        rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


async def _stream(request: Request, dash: Dashboard) -> AsyncIterator[str]:
    watch = JournalWatch(dash.journal_path)
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    yield "retry: 2000\n\n"
    shown = dash.config
    try:
        while not dash.stopping.is_set():
            counts = await asyncio.to_thread(watch.changed, dash.config is not shown)
            shown = dash.config
            if counts is not None:
                yield f"event: jobs\ndata: {json.dumps({'counts': counts})}\n\n"
                last_sent = loop.time()
            elif loop.time() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = loop.time()
            if await request.is_disconnected():
                break
            try:
                async with asyncio.timeout(dash.poll_seconds):
                    await dash.stopping.wait()
            except TimeoutError:
                pass
    finally:
        await asyncio.to_thread(watch.close)


async def events(request: Request) -> Response:
    dash: Dashboard = request.app.state.dashboard
    return StreamingResponse(
        _stream(request, dash),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
