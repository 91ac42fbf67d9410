"""The JSON API behind the pages.

- ``GET /api/status``: the same data as ``hotfolder status --json``.
- ``GET /api/jobs?state=&folder=&q=&page=``: one page of jobs, newest first.
- ``GET /api/jobs/{id}``: one job, with its pictures (facts and thumbnail URLs) and sidecar.
- ``POST /api/retry``: ``{"id": "..."}`` or ``{"all": true}``, with the CSRF token
  (``X-CSRF-Token``) or the bearer token.
- ``GET /thumbs/{id}/{which}``: a job's thumbnail (``input`` or ``output-N``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from hotfolder.daemon.journal import JobRow
from hotfolder.web import queries
from hotfolder.web.context import Dashboard
from hotfolder.web.render import json_reply
from hotfolder.web.security import csrf_ok
from hotfolder.web.views import job_view


def _dash(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def _row(row: JobRow) -> dict[str, Any]:
    return row.to_dict() | {"url": f"/jobs/{row.id}"}


async def status(request: Request) -> Response:
    return json_reply(await asyncio.to_thread(_dash(request).status))


async def jobs(request: Request) -> Response:
    dash = _dash(request)
    wanted = queries.JobFilter.parse(request.query_params)
    result = await asyncio.to_thread(queries.jobs, dash.journal_path, wanted)
    return json_reply(
        {
            "page": wanted.page,
            "pages": result.pages,
            "per_page": queries.PAGE_SIZE,
            "total": result.total,
            "filter": {"state": wanted.state, "folder": wanted.folder, "q": wanted.q},
            "jobs": [_row(r) for r in result.rows],
        }
    )


async def job(request: Request) -> Response:
    dash = _dash(request)
    job_id = request.path_params["job_id"]
    row = await asyncio.to_thread(queries.job, dash.journal_path, job_id)
    if row is None:
        return json_reply({"error": f"no job {job_id!r}"}, 404)
    view = await asyncio.to_thread(job_view, dash, row)
    pictures = [
        asdict(f) | {"thumbnail": f"/thumbs/{row.id}/{f.which}" if not f.problem else None}
        for f in view["pictures"]
    ]
    return json_reply(
        _row(row) | {"pictures": pictures, "sidecar": view["sidecar"], "steps": view["steps"]}
    )


async def retry(request: Request) -> Response:
    dash = _dash(request)
    if not csrf_ok(request, None, dash.token):
        return json_reply(
            {"error": "CSRF token missing: send X-CSRF-Token or the bearer token"}, 403
        )
    if dash.readonly:
        return json_reply({"error": "read-only viewer: retry where the daemon runs"}, 403)
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        results = await asyncio.to_thread(dash.retry, [body["id"]])
        if results[0]["error"] == "no such job":
            return json_reply({"error": f"no job {body['id']!r}", "results": results}, 404)
        return json_reply({"results": results}, 200 if results[0]["queued"] else 409)
    if isinstance(body, dict) and body.get("all") is True:
        return json_reply({"results": await asyncio.to_thread(dash.retry, None)})
    return json_reply({"error": 'send {"id": "JOB"} or {"all": true}'}, 400)


async def thumbnail(request: Request) -> Response:
    dash = _dash(request)
    job_id, which = request.path_params["job_id"], request.path_params["which"]
    row = await asyncio.to_thread(queries.job, dash.journal_path, job_id)
    picture = await asyncio.to_thread(dash.thumbs.picture, row, which) if row else None
    if picture is None:
        return Response("no such picture", 404, media_type="text/plain")
    headers = {"etag": f'"{picture.etag}"', "cache-control": "private, max-age=300"}
    if request.headers.get("if-none-match") == headers["etag"]:
        return Response(status_code=304, headers=headers)
    return Response(picture.data, media_type=picture.media_type, headers=headers)
