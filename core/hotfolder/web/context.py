"""What every route of the dashboard shares: where the journal is, the config (if any), the
token, whether retrying is allowed, the thumbnail and status caches; and the one thing it
changes, retry. A daemon's reload (SIGHUP) hands it the new config (:meth:`Dashboard.reload`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from hotfolder.config import Config
from hotfolder.daemon.journal import JOURNAL_NAME, JobRow, Journal
from hotfolder.errors import HotfolderError
from hotfolder.imaging import ImagingSection
from hotfolder.web.status import StatusCache
from hotfolder.web.thumbs import Thumbnails


@dataclass
class Dashboard:
    """The dashboard over one state dir."""

    state_dir: Path
    config: Config | None = None
    #: The ``[web] token`` requests must carry (None: loopback, no token).
    token: str | None = None
    #: A viewer of a state dir whose daemon runs elsewhere: nothing is changed from here.
    readonly: bool = False
    #: Host names served when no token guards the dashboard (None: any).
    hosts: frozenset[str] | None = None
    #: Seconds between looks at the journal for the live updates.
    poll_seconds: float = 1.0
    thumbs: Thumbnails = field(init=False)
    #: The status shown (computed again only when the journal, the daemon or the config changed).
    statuses: StatusCache = field(init=False)
    #: Set when the server stops, so live-update streams end.
    stopping: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.thumbs = Thumbnails(self.config.imaging if self.config else ImagingSection())
        self.statuses = StatusCache(self.state_dir)

    def reload(self, config: Config) -> None:
        """Show ``config`` from now on (the daemon reloaded it: SIGHUP). The token and the
        trusted hosts are the server's to change (``WebServer.reloaded``)."""
        self.config = config
        self.thumbs = Thumbnails(config.imaging)
        logger.info("dashboard: showing the reloaded config")

    def status(self) -> dict[str, Any]:
        """What ``hotfolder status --json`` says now; call from a worker thread."""
        return self.statuses.get(self.config)

    @property
    def journal_path(self) -> Path:
        return self.state_dir / JOURNAL_NAME

    def max_usd_per_day(self) -> float | None:
        """``[venice] max_usd_per_day`` of the config, if any."""
        if self.config is None:
            return None
        from hotfolder.venice.settings import VeniceSection

        return self.config.section(VeniceSection).max_usd_per_day

    def retry(self, job_ids: list[str] | None) -> list[dict[str, Any]]:
        """Queue failed jobs again, as ``hotfolder retry`` does (``None``: every failed job).

        Returns one ``{"id", "name", "queued", "error"}`` per job; call from a worker thread.
        """
        from hotfolder.daemon.requeue import requeue
        from hotfolder.localfiles import STRICT, policy_for

        policy = policy_for(self.config) if self.config is not None else STRICT
        journal = Journal(self.journal_path)
        results: list[dict[str, Any]] = []
        try:
            pairs: list[tuple[str, JobRow | None]]
            if job_ids is None:
                pairs = [(r.id, r) for r in journal.jobs(states=["failed"])]
            else:
                pairs = [(i, journal.get(i)) for i in job_ids]
            for job_id, row in pairs:
                if row is None:
                    results.append({"id": job_id, "queued": False, "error": "no such job"})
                    continue
                try:
                    requeue(journal, row, policy)
                except HotfolderError as exc:
                    logger.warning("dashboard retry of job {}: {}", row.id, exc)
                    results.append(
                        {"id": row.id, "name": row.name, "queued": False, "error": str(exc)}
                    )
                else:
                    logger.info("dashboard: queued again: {} (job {})", row.name, row.id)
                    results.append({"id": row.id, "name": row.name, "queued": True, "error": None})
        finally:
            journal.close()
        return results
