"""Turning data into replies: the Jinja2 environment, its filters, and HTML/JSON responses
with every registered secret scrubbed (:mod:`hotfolder.redact`) as a last guard."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from hotfolder.redact import scrub
from hotfolder.web.security import CSRF_COOKIE, csrf_cookie, new_csrf

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _usd(value: float | None) -> str:
    return "" if value is None else f"${value:.2f}"


def environment() -> jinja2.Environment:
    """The templates of :data:`TEMPLATES`, HTML-escaped, with the dashboard's filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, size=_size, usd=_usd, query=urlencode)
    return env


def page(
    env: jinja2.Environment, request: Request, name: str, code: int = 200, **data: Any
) -> HTMLResponse:
    """Render template ``name``; sets the CSRF cookie when the browser has none yet."""
    token = csrf_cookie(request)
    fresh = token is None
    if token is None:
        token = new_csrf()
    dashboard = request.app.state.dashboard
    html = env.get_template(name).render(
        request=request, csrf=token, readonly=dashboard.readonly, path=request.url.path, **data
    )
    response = HTMLResponse(scrub(html), code)
    if fresh:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", path="/", max_age=86400 * 30
        )
    response.headers["cache-control"] = "no-store"
    return response


def json_reply(data: Any, status: int = 200) -> Response:
    """``data`` as JSON (dates and paths as strings), never cached."""
    body = scrub(json.dumps(data, default=str, indent=1))
    return Response(
        body, status, media_type="application/json", headers={"cache-control": "no-store"}
    )
