"""What ``hotfolder status`` reports, read from the journal (never from the daemon's memory):
per folder the jobs by state, those in flight (and what they wait for: a Venice rate slot)
and the last errors; why Venice work is paused, since when, the next check and the fix; what
was spent today; a fleet's workers and queue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hotfolder.config import Config
from hotfolder.daemon import fates
from hotfolder.daemon.folders import plan_folder
from hotfolder.daemon.journal import JOURNAL_NAME, STATES, JobRow, Journal
from hotfolder.daemon.lock import running_pid
from hotfolder.daemon.settings import FolderSection
from hotfolder.pauses import iso_time


def collect(state_dir: Path, config: Config | None) -> dict[str, Any]:
    """The status as JSON-ready data."""
    journal = Journal(state_dir / JOURNAL_NAME, readonly=True)
    try:
        counts = journal.counts()
        running = journal.jobs(states=["running"])
        pid = running_pid(state_dir)
        waits = (journal.meta("waits") or {}) if pid is not None else {}
        plans = {
            p.key: p
            for p in (plan_folder(f) for f in (config.sections(FolderSection) if config else []))
        }
        folders = []
        for key in list(plans) + sorted(k for k in counts if k not in plans):
            plan = plans.get(key)
            by_state = {state: counts.get(key, {}).get(state, 0) for state in STATES}
            folders.append(
                {
                    "path": key,
                    "chain": plan.chain if plan else None,
                    "routes": [r.model_dump() for r in plan.section.routes] if plan else [],
                    "configured": plan is not None if config else None,
                    "archive": str(plan.archive) if plan else None,
                    "failed": str(plan.failed) if plan else None,
                    "counts": by_state,
                    "in_flight": [_brief(r, waits) for r in running if r.folder == key],
                    "last_errors": [_error(r) for r in journal.last_errors(key)],
                    **folder_fates(journal, key, running=pid is not None),
                }
            )
        midnight = dt.datetime.combine(dt.date.today(), dt.time()).timestamp()
        return {
            "state_dir": str(state_dir),
            "daemon": {"running": pid is not None, "pid": pid},
            "paused": journal.meta("pause") if pid is not None else None,
            "held": (journal.meta("held") or {}) if pid is not None else {},
            "fleet": journal.meta("fleet") if pid is not None else None,
            "services": (journal.meta("services") or []) if pid is not None else [],
            "spent_today_usd": round(journal.spent_since(midnight), 6),
            "simulated_today_usd": round(journal.simulated_since(midnight), 6),
            "folders": folders,
        }
    finally:
        journal.close()


def folder_fates(journal: Journal, folder: str, *, running: bool) -> dict[str, Any]:
    """The files of ``folder`` the running daemon does not take (``ignored``: name, reason,
    fix) or that wait (``waiting``: name, reason, since), at most ``fates.LIST_CAP`` each,
    with their whole counts."""
    lists = fates.read(journal, folder) if running else {}
    ignored = lists.get("ignored") or {"count": 0, "files": []}
    waiting = lists.get("waiting") or {"count": 0, "files": []}
    return {
        "ignored": ignored["files"],
        "ignored_count": ignored["count"],
        "waiting": waiting["files"],
        "waiting_count": waiting["count"],
    }


def _brief(row: JobRow, waits: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "attempts": row.attempts,
        "started": _iso(row.started),
        "waiting": waits.get(row.id),
    }


def _error(row: JobRow) -> dict[str, Any]:
    error = row.error or {}
    return {
        "id": row.id,
        "name": row.name,
        "state": row.state,
        "class": error.get("class"),
        "message": error.get("message"),
        "hint": error.get("hint"),
        "time": _iso(row.updated),
    }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso_time(ts)


def _simulated_spend(status: dict[str, Any]) -> str:
    """`` (and $6.75 simulated)`` when simulated paid calls would have cost something today."""
    simulated = status.get("simulated_today_usd") or 0.0
    return f" (and ${simulated:.2f} simulated)" if simulated > 0 else ""


def _fate_lines(folder: dict[str, Any], shown: int = 5) -> list[str]:
    """``  3 ignored: readme.txt (not in include: add '*.txt' to include), ...`` and the
    same for the files that wait."""
    lines = []
    for part, detail in (("ignored", "fix"), ("waiting", "since")):
        files, count = folder.get(part) or [], folder.get(f"{part}_count") or 0
        if not count:
            continue
        named = "; ".join(
            f"{f['name']} ({f['reason']}{', since ' if part == 'waiting' else ': '}{f[detail]})"
            for f in files[:shown]
        )
        listed = min(shown, len(files))
        more = f"; and {count - listed} more" if count > listed else ""
        lines.append(f"  {count} {part}: {named}{more}")
    return lines


def _service_lines(services: list[dict[str, Any]]) -> list[str]:
    """``venice: 3 of 20 image requests in the last minute; a slot is free now``."""
    lines = []
    for service in services:
        rate = service.get("rate") or {}
        if rate.get("sent") is None:
            continue
        free = rate.get("free_in_seconds") or 0
        when = "a slot is free now" if free <= 0 else f"the next slot is free in {free:g}s"
        fleet = " (the fleet's, shared)" if service.get("shared") else ""
        lines.append(
            f"{service['service']}: {rate['sent']} of {rate['limit']} image requests in the "
            f"last minute{fleet}; {when}"
        )
    return lines


def _fleet_lines(fleet: dict[str, Any] | None) -> list[str]:
    """The workers of a fleet (``[executor] kind = "dramatiq"``) seen recently, and the
    queue; as the watcher last checked them."""
    if not fleet:
        return []
    workers = fleet.get("workers") or []
    lines = [
        f"fleet: {len(workers)} worker(s) seen, {fleet.get('queued', 0)} job(s) queued in "
        f"Redis, {fleet.get('jobs_out', 0)} out (checked {_iso(fleet.get('checked'))})"
    ]
    for worker in workers:
        lines.append(
            f"  {worker['host']} pid {worker['pid']}: {worker['done']} done, "
            f"{worker['failed']} failed, {worker['running']} running, last seen "
            f"{_iso(worker['last_seen'])}"
        )
    return lines


def render(status: dict[str, Any]) -> str:
    """The status as a few readable lines."""
    daemon = status["daemon"]
    lines = [
        f"daemon: {'running, pid ' + str(daemon['pid']) if daemon['running'] else 'not running'}"
        f" (state in {status['state_dir']})",
        f"spent today: ${status['spent_today_usd']:.2f}" + _simulated_spend(status),
    ]
    for folder, held in (status.get("held") or {}).items():
        lines.append(
            f"{folder}: jobs WAIT since {held['since']}: an output cannot be written "
            f"({held['reason']})"
        )
    if pause := status["paused"]:
        lines.append(
            f"Venice work PAUSED ({pause['kind']}) since {pause['since']}: {pause['reason']}"
        )
        if pause.get("hint"):
            lines.append(f"  fix: {pause['hint']}")
        if pause.get("not_before"):
            lines.append(f"  can go on from: {pause['not_before']}")
        if pause.get("lifts_by_probe") is False:
            lines.append("  goes on after: a reload (SIGHUP) or a restart with the fix")
        elif pause.get("next_probe"):
            lines.append(f"  next check: {pause['next_probe']}")
    lines.extend(_service_lines(status.get("services") or []))
    lines.extend(_fleet_lines(status.get("fleet")))
    for folder in status["folders"]:
        counts = ", ".join(f"{n} {s}" for s, n in folder["counts"].items() if n) or "no jobs"
        note = " (not in the config)" if folder["configured"] is False else ""
        lines.append(f"{folder['path']}{note}: {counts}")
        for job in folder["in_flight"]:
            wait = job.get("waiting")
            doing = f"waiting for {wait['what']} since {wait['since']}" if wait else "running"
            if wait and wait.get("worker"):
                doing += f" on worker {wait['worker']}"
            lines.append(f"  {doing}: {job['name']} (job {job['id']}, attempt {job['attempts']})")
        for err in folder["last_errors"]:
            lines.append(f"  {err['state']}: {err['name']} (job {err['id']}): {err['message']}")
            if err.get("hint"):
                lines.append(f"    fix: {err['hint']}")
        lines.extend(_fate_lines(folder))
    return "\n".join(lines)
