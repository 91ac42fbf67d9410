"""The dashboard's pages: overview, jobs, one job, failed jobs, and the forms that act (retry,
sign in). Every page works without JavaScript; ``?partial=1`` gives the live part alone, which
the vendored script fetches again when the journal changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hotfolder.daemon.journal import STATES, JobRow, JournalError
from hotfolder.errors import HotfolderError
from hotfolder.localfiles import LocalFilePolicy, read_local
from hotfolder.web import queries
from hotfolder.web.context import Dashboard
from hotfolder.web.render import page
from hotfolder.web.security import CSRF_FIELD, SESSION_COOKIE, csrf_ok, same, session_value
from hotfolder.web.thumbs import Facts, pictures

#: Largest sidecar shown on a job's page.
SIDECAR_MAX_BYTES = 1_000_000


def _dash(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def _partial(request: Request) -> bool:
    return request.query_params.get("partial") == "1"


def _live_src(request: Request) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "partial"}
    return request.url.path + "?" + urlencode({**params, "partial": "1"})


def no_journal(request: Request, exc: JournalError) -> Response:
    """The page shown while the state dir has no journal yet."""
    env = request.app.state.templates
    return page(env, request, "message.html", 503, title="No journal yet", message=str(exc))


def not_found(request: Request, what: str) -> Response:
    env = request.app.state.templates
    return page(env, request, "message.html", 404, title="Not found", message=what)


async def overview(request: Request) -> Response:
    dash = _dash(request)
    status = await asyncio.to_thread(dash.status)
    name = "_overview.html" if _partial(request) else "overview.html"
    return page(
        request.app.state.templates, request, name, status=status, states=STATES,
        budget=dash.max_usd_per_day(), live_src=_live_src(request),
    )  # fmt: skip


async def jobs(request: Request) -> Response:
    dash = _dash(request)
    wanted = queries.JobFilter.parse(request.query_params)
    result = await asyncio.to_thread(queries.jobs, dash.journal_path, wanted)
    known = await asyncio.to_thread(queries.folders, dash.journal_path)
    name = "_jobs_table.html" if _partial(request) else "jobs.html"
    return page(
        request.app.state.templates, request, name, result=result, states=STATES,
        folders=known, live_src=_live_src(request),
    )  # fmt: skip


def _sidecar(row: JobRow) -> dict[str, Any] | None:
    """The job's sidecar record, when one of its outputs is a local JSON file."""
    for output in row.outputs:
        location = output.get("location")
        if output.get("sink") == "sidecar" and isinstance(location, str):
            try:
                data = read_local(Path(location), LocalFilePolicy(max_bytes=SIDECAR_MAX_BYTES))
                record = json.loads(data)
            except (HotfolderError, ValueError):
                return None
            return record if isinstance(record, dict) else None
    return None


def job_view(dash: Dashboard, row: JobRow) -> dict[str, Any]:
    """What a job's page (and ``GET /api/jobs/{id}``) shows; reads files: call in a thread."""
    facts: list[Facts] = []
    for which in pictures(row):
        found = dash.thumbs.facts(row, which)
        if found is not None:
            facts.append(found)
    sidecar = _sidecar(row)
    steps = sidecar.get("steps") if sidecar else None
    return {
        "row": row,
        "pictures": facts,
        "sidecar": sidecar,
        "steps": steps if isinstance(steps, list) else [],
    }


async def job(request: Request) -> Response:
    dash = _dash(request)
    job_id = request.path_params["job_id"]
    row = await asyncio.to_thread(queries.job, dash.journal_path, job_id)
    if row is None:
        return not_found(request, f"no job {job_id!r} in the journal")
    view = await asyncio.to_thread(job_view, dash, row)
    notice = "Queued again." if request.query_params.get("queued") == "1" else None
    return page(request.app.state.templates, request, "job.html", notice=notice, **view)


async def failed(request: Request) -> Response:
    dash = _dash(request)
    rows = await asyncio.to_thread(queries.failed, dash.journal_path)
    name = "_failed_table.html" if _partial(request) else "failed.html"
    queued = request.query_params.get("queued")
    notice = f"Queued again: {queued} job(s)." if queued and queued.isdigit() else None
    return page(
        request.app.state.templates, request, name, rows=rows, notice=notice,
        live_src=_live_src(request),
    )  # fmt: skip


async def retry(request: Request) -> Response:
    """``POST /retry`` (form): ``id`` (one job) or ``all`` (every failed job), with the CSRF
    token; back to the job's page or the failed list."""
    dash = _dash(request)
    form = await request.form()
    submitted = form.get(CSRF_FIELD)
    if not csrf_ok(request, submitted if isinstance(submitted, str) else None, dash.token):
        return _refused(request, "the form's CSRF token is missing or stale; reload the page")
    if dash.readonly:
        return _refused(request, "this is a read-only viewer; retry where the daemon runs")
    job_id = form.get("id")
    if isinstance(job_id, str) and job_id:
        results = await asyncio.to_thread(dash.retry, [job_id])
        if results and results[0]["error"] == "no such job":
            return not_found(request, f"no job {job_id!r} in the journal")
        if not results[0]["queued"]:
            env = request.app.state.templates
            return page(env, request, "message.html", 409, title="Not queued",
                        message=results[0]["error"])  # fmt: skip
        return RedirectResponse(f"/jobs/{job_id}?queued=1", 303)
    if form.get("all"):
        results = await asyncio.to_thread(dash.retry, None)
        queued = sum(1 for r in results if r["queued"])
        return RedirectResponse(f"/failed?queued={queued}", 303)
    env = request.app.state.templates
    return page(env, request, "message.html", 400, title="Nothing to retry",
                message="name a job (id) or all")  # fmt: skip


def _refused(request: Request, why: str) -> Response:
    env = request.app.state.templates
    return page(env, request, "message.html", 403, title="Refused", message=why)


async def login(request: Request) -> Response:
    """``GET /login`` shows the form; ``POST /login`` with the right token sets the session
    cookie and goes to the overview."""
    dash = _dash(request)
    env = request.app.state.templates
    if request.method == "GET" or dash.token is None:
        return page(env, request, "login.html", needed=dash.token is not None)
    form = await request.form()
    given = form.get("token")
    if not isinstance(given, str) or not same(given, dash.token):
        return page(env, request, "login.html", 401, needed=True, wrong=True)
    response = RedirectResponse("/", 303)
    response.set_cookie(
        SESSION_COOKIE, session_value(dash.token), httponly=True, samesite="strict", path="/"
    )
    return response
