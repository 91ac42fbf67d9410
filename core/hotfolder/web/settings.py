"""``[web]``: where the dashboard listens and the token that guards it off loopback.

This module is also the built-in plugin that registers the table; it stays light (no
Starlette, no uvicorn), because every config load imports it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import field_validator

from hotfolder.errors import ConfigError
from hotfolder.hookspecs import hookimpl
from hotfolder.schema import Section
from hotfolder.secrets import SecretRef

if TYPE_CHECKING:
    from hotfolder.registry import Register

DEFAULT_LISTEN = "127.0.0.1:8484"


class WebSection(Section):
    """``[web]``: the dashboard served by ``hotfolder run`` (off unless ``listen`` is set or
    ``--web`` is given)."""

    table = "web"

    #: ``HOST:PORT`` to serve the dashboard on (``[::1]:8484`` for IPv6); None: not served
    #: unless ``hotfolder run --web HOST:PORT``.
    listen: str | None = None
    #: Needed to listen on anything but loopback: requests must carry it (``Authorization:
    #: Bearer ...`` or the cookie set by the login page). Given by reference, like the API key.
    token: SecretRef | None = None

    @field_validator("listen")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value


@dataclass(frozen=True)
class Listen:
    """A parsed ``HOST:PORT``."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect (127.0.0.0/8, ::1, ``localhost``)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_listen(value: str) -> Listen:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a :class:`Listen`; ValueError when it is not."""
    host, sep, port = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        msg = f"expected HOST:PORT, such as {DEFAULT_LISTEN} (got {value!r})"
        raise ValueError(msg)
    return Listen(host, int(port))


def checked_listen(value: str, section: WebSection) -> tuple[Listen, str | None]:
    """The address to bind and the token requests must carry (None on loopback without one).

    Binding to anything but loopback without ``[web] token`` is a :class:`ConfigError`
    (exit 2), as is a token whose variable or file is empty.
    """
    try:
        listen = parse_listen(value)
    except ValueError as exc:
        msg = f"web listen address: {exc}"
        raise ConfigError(msg, hint="e.g. --web 127.0.0.1:8484") from None
    return listen, token_for(listen, section)


def token_for(listen: Listen, section: WebSection) -> str | None:
    """The token a dashboard on ``listen`` needs under ``section`` (None on loopback without
    one); a ConfigError when it would listen off loopback without one, or when its variable
    or file is empty."""
    token = section.token.reveal() if section.token is not None else None
    if section.token is not None and token is None:
        msg = f"[web] token: {section.token.describe()} is not set"
        raise ConfigError(msg, hint="set it, or remove [web] token to serve on loopback only")
    if not listen.loopback and token is None:
        msg = (
            f"the dashboard would listen on {listen.host}, which is not loopback, without "
            "[web] token"
        )
        hint = (
            'set [web] token = { env = "HOTFOLDER_WEB_TOKEN" } (or { file = ... }), '
            "or listen on 127.0.0.1"
        )
        raise ConfigError(msg, hint=hint)
    return token


@hookimpl
def hotfolder_register_sections(register: Register) -> None:
    register(WebSection)
