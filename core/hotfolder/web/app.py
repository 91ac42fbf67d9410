"""The dashboard's Starlette app: its routes, the guard around them, the vendored static
files. :func:`create_app` is all a server (or a test's ``TestClient``) needs."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hotfolder.daemon.journal import JournalError
from hotfolder.web import api, events, views
from hotfolder.web.context import Dashboard
from hotfolder.web.render import STATIC, environment
from hotfolder.web.security import Guard


async def _no_journal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JournalError)
    if request.url.path.startswith("/api/"):
        from hotfolder.web.render import json_reply

        return json_reply({"error": str(exc)}, 503)
    return views.no_journal(request, exc)


def create_app(dashboard: Dashboard) -> Starlette:
    """The dashboard over ``dashboard.state_dir``."""
    routes = [
        Route("/", views.overview),
        Route("/jobs", views.jobs),
        Route("/jobs/{job_id}", views.job),
        Route("/failed", views.failed),
        Route("/retry", views.retry, methods=["POST"]),
        Route("/login", views.login, methods=["GET", "POST"]),
        Route("/events", events.events),
        Route("/thumbs/{job_id}/{which}", api.thumbnail),
        Route("/api/status", api.status),
        Route("/api/jobs", api.jobs),
        Route("/api/jobs/{job_id}", api.job),
        Route("/api/retry", api.retry, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    guard = Middleware(Guard, access=dashboard)
    app = Starlette(
        routes=routes, middleware=[guard], exception_handlers={JournalError: _no_journal}
    )
    app.state.dashboard = dashboard
    app.state.templates = environment()
    return app
