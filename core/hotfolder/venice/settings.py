"""``[venice]``: where the API is, how to authenticate, and how hard to push it."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import platformdirs
from pydantic import Field, field_validator

from hotfolder.errors import AuthError
from hotfolder.schema import ConfigPath, Section
from hotfolder.secrets import SecretRef

DEFAULT_BASE_URL = "https://api.venice.ai/api/v1"
BASE_URL_ENV = "VENICE_BASE_URL"
CACHE_DIR_ENV = "HOTFOLDER_CACHE_DIR"


class VeniceSection(Section):
    """``[venice]`` in the config.

    Only ``api_key`` usually needs setting. The rest tune the client: the defaults follow
    Venice's published limits (20 image requests a minute; more than 20 failed requests in
    30 s lock the key for 30 s) and keep well inside them.
    """

    table = "venice"
    #: The names before every duration ended in ``_seconds``; accepted for one release.
    renamed = {
        "models_ttl_s": "models_ttl_seconds",
        "timeout_s": "timeout_seconds",
        "connect_timeout_s": "connect_timeout_seconds",
        "max_retry_s": "max_retry_seconds",
        "backoff_base_s": "backoff_base_seconds",
        "backoff_cap_s": "backoff_cap_seconds",
        "max_rate_wait_s": "max_rate_wait_seconds",
        "breaker_window_s": "breaker_window_seconds",
    }
    #: Keys that went when a 402 stopped waiting inside the call.
    removed = dict.fromkeys(
        (
            "balance_wait_s",
            "balance_wait_seconds",
            "balance_poll_s",
            "balance_poll_seconds",
            "balance_poll_max_s",
            "balance_poll_max_seconds",
        ),
        "a 402 now pauses Venice work without failing a job; [daemon] reprobe_seconds sets "
        "how often the balance is checked",
    )

    api_key: SecretRef = SecretRef(env="VENICE_API_KEY")
    #: The API root; ``$VENICE_BASE_URL`` overrides it (a sandbox, a proxy).
    base_url: str = DEFAULT_BASE_URL
    #: The account's image limit; the client stays under it and follows x-ratelimit headers.
    requests_per_minute: int = Field(default=20, ge=1, le=10_000)
    #: Venice work pauses for the rest of the (local) day once this much has been spent.
    max_usd_per_day: float | None = Field(default=None, gt=0)

    #: Where the model list and the daily spend ledger are kept (relative to the config
    #: file's folder); default ``$HOTFOLDER_CACHE_DIR``, else the user cache folder.
    cache_dir: ConfigPath | None = None
    #: How long a fetched model list is trusted before it is fetched again.
    models_ttl_seconds: float = Field(default=24 * 3600, ge=0)

    #: Seconds to wait for a response once the upload is sent (edits take tens of seconds).
    timeout_seconds: float = Field(default=180, gt=0)
    #: Seconds to wait for a connection.
    connect_timeout_seconds: float = Field(default=10, gt=0)
    #: Requests in flight at once (and pooled connections); each holds an upload in memory.
    max_connections: int = Field(default=4, ge=1, le=64)

    #: Tries per request for 429, 5xx, timeouts and resets (the first try included).
    max_attempts: int = Field(default=6, ge=1, le=100)
    #: Seconds one request may spend retrying before it gives up.
    max_retry_seconds: float = Field(default=600, gt=0)
    #: Full-jitter backoff: a random wait up to
    #: ``min(backoff_cap_seconds, backoff_base_seconds * 2**n)``.
    backoff_base_seconds: float = Field(default=1.0, ge=0)
    backoff_cap_seconds: float = Field(default=60.0, ge=0)
    #: The longest a 429's reset or Retry-After is honoured before trying again.
    max_rate_wait_seconds: float = Field(default=120.0, ge=0)

    #: Failed responses allowed in ``breaker_window_seconds`` before sending stops until the
    #: window clears. Venice locks a key out after more than 20 in 30 s; keep this well below.
    breaker_failures: int = Field(default=10, ge=1, le=19)
    breaker_window_seconds: float = Field(default=31.0, ge=1)

    #: Hosts whose URL inputs are sent to Venice as URLs although they are not public https
    #: addresses, for a proxy or CDN that Venice can reach: ``"cdn.internal"`` (any port) or
    #: ``"127.0.0.1:8080"``, IPv6 in brackets. Empty: only public https URLs are sent as URLs;
    #: every other input is uploaded as bytes.
    send_urls_from: tuple[str, ...] = ()

    @field_validator("send_urls_from")
    @classmethod
    def _host_entries(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_host_entry(entry) for entry in entries)

    def effective_base_url(self) -> str:
        return os.environ.get(BASE_URL_ENV) or self.base_url

    def effective_cache_dir(self) -> Path:
        """``cache_dir``, else ``$HOTFOLDER_CACHE_DIR``, else the platform's user cache."""
        if self.cache_dir is not None:
            return self.cache_dir.expanduser()
        if env := os.environ.get(CACHE_DIR_ENV):
            return Path(env).expanduser()
        return Path(platformdirs.user_cache_dir("hotfolder"))

    def require_api_key(self) -> str:
        """The API key, or an AuthError that says where it was looked for."""
        key = self.api_key.reveal()
        if not key:
            msg = f"no Venice API key: {self.api_key.describe()} is not set"
            raise AuthError(
                msg,
                hint="export VENICE_API_KEY=... (https://venice.ai/settings/api), "
                "or run with --sandbox to try hotfolder against the local sandbox",
            )
        return key


_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def _host_entry(entry: str) -> str:
    """``entry`` as ``host`` or ``host:port``, lower case, IPv6 in brackets; ValueError else."""
    text = entry.strip().lower()
    host, port = text, ""
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        host, port = f"[{inside}]", rest.removeprefix(":")
        valid = rest in ("", f":{port}") and _is_ipv6(inside)
    else:
        if text.count(":") == 1:
            host, port = text.split(":")
        host = host.rstrip(".")
        valid = ":" not in host and bool(_HOST_NAME.fullmatch(host))
    if not valid or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        msg = f"{entry!r} is not a host or host:port (like 'cdn.internal' or '127.0.0.1:8080')"
        raise ValueError(msg)
    return f"{host}:{int(port)}" if port else host


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
