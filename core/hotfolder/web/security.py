"""The dashboard's guards: the token, the Host check, CSRF and the security headers.

- **Token** (``[web] token``, required off loopback): every request but the login page and
  static files carries it, as ``Authorization: Bearer <token>`` or as the session cookie the
  login page sets (an HMAC of the token, never the token itself); others get 401. The guard
  reads the token at each request, so a daemon's reload (SIGHUP) changes it at once, and
  the sessions signed in with the old one end.
- **Host**: on loopback without a token, only requests naming a loopback host (or the
  listen host) are served, so a page elsewhere cannot reach the dashboard by DNS rebinding.
- **CSRF**: every state-changing request is a POST carrying the double-submit token: the
  ``hf_csrf`` cookie (SameSite=Strict) repeated in a hidden ``csrf`` field or an
  ``X-CSRF-Token`` header. A request with the bearer token needs none (a browser cannot add
  that header cross-site).
- **Headers** on every response: a CSP without inline scripts or styles, nosniff,
  ``frame-ancestors 'none'``, no referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Protocol

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "hf_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "hf_session"
#: Paths served without the token.
OPEN_PATHS = ("/login", "/static/")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hotfolder: sign in</title><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main class="narrow"><h1>hotfolder</h1><p>This dashboard needs its token
(<code>[web] token</code>).</p><form method="post" action="/login">
<label>Token <input type="password" name="token" autocomplete="current-password" required>
</label> <button type="submit">Sign in</button></form></main></body></html>"""


def session_value(token: str) -> str:
    """What the session cookie holds for ``token``: an HMAC, so the cookie is not the token."""
    return hmac.new(token.encode(), b"hotfolder-web-session", hashlib.sha256).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two strings (False when either is missing)."""
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def bearer(headers: Headers) -> str | None:
    """The bearer token of the ``Authorization`` header, if any."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def has_bearer(request: Request, token: str | None) -> bool:
    """Whether the request carries the right bearer token."""
    return token is not None and same(bearer(request.headers), token)


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_cookie(request: Request) -> str | None:
    value = request.cookies.get(CSRF_COOKIE)
    return value if value and len(value) < 100 else None


def csrf_ok(request: Request, submitted: str | None, token: str | None) -> bool:
    """Whether a state-changing request may go on: the bearer token, or the CSRF cookie
    repeated in the form field or header."""
    if has_bearer(request, token):
        return True
    submitted = submitted or request.headers.get(CSRF_HEADER)
    return same(csrf_cookie(request), submitted)


class Access(Protocol):
    """Who may use the dashboard, as it is now (:class:`hotfolder.web.context.Dashboard`)."""

    #: The token requests must carry (None: none needed).
    token: str | None
    #: Host names served (None: any, when a token guards the dashboard).
    hosts: frozenset[str] | None


class Guard:
    """ASGI middleware: the Host check, the token, and the security headers on every reply;
    the token and the hosts are ``access``'s at the time of each request."""

    def __init__(self, app: ASGIApp, *, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        headers = Headers(scope=scope)
        token, hosts = self.access.token, self.access.hosts
        if hosts is not None and _host_name(headers.get("host", "")) not in hosts:
            refused = PlainTextResponse("unknown Host; open the dashboard by its address", 421)
            await refused(scope, receive, send_with_headers)
            return
        path: str = scope.get("path", "")
        if (
            token is not None
            and not path.startswith(OPEN_PATHS)
            and not _signed_in(Request(scope), token)
        ):
            reply = HTMLResponse(_LOGIN_PAGE, 401, headers={"www-authenticate": "Bearer"})
            await reply(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _signed_in(request: Request, token: str) -> bool:
    if same(bearer(request.headers), token):
        return True
    return same(request.cookies.get(SESSION_COOKIE), session_value(token))


def _host_name(host: str) -> str:
    """``Host`` without its port: ``127.0.0.1:8484`` -> ``127.0.0.1``, ``[::1]:80`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
