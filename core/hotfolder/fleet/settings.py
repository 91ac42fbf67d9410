"""``[executor]``: where chains run — in the daemon's process (``local``, the default) or on
Dramatiq workers over Redis (``dramatiq``; ``pip install 'hotfolder[distributed]'``).

This module is also the built-in plugin that registers the table with the config loader; it
imports neither Dramatiq nor Redis, so a local install validates ``[executor]`` too.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import model_validator

from hotfolder.errors import ConfigError
from hotfolder.hookspecs import hookimpl
from hotfolder.schema import Section
from hotfolder.secrets import SecretRef

if TYPE_CHECKING:
    from hotfolder.registry import Register

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class ExecutorSection(Section):
    """``[executor]``: see docs/scale-out.md."""

    table = "executor"

    kind: Literal["local", "dramatiq"] = "local"
    #: The Redis every process of the fleet shares: a plain ``redis://`` (or ``rediss://``)
    #: URL, or ``{ env = ... }`` / ``{ file = ... }`` when it carries a password (an inline URL
    #: with a password is refused, like an inline API key).
    redis_url: str | SecretRef = DEFAULT_REDIS_URL
    #: The prefix of every Redis key and queue of this fleet (several fleets, one Redis).
    namespace: str = "hotfolder"
    #: Jobs sent to the workers and not yet answered, at most (``[daemon] concurrency`` is
    #: the limit of the local executor).
    jobs_out: int = 64
    #: Seconds without a sign of life after which a worker counts as dead and its job goes to
    #: another worker (Dramatiq's heartbeat).
    heartbeat_seconds: float = 5.0
    #: How often one job may stop the worker that runs it (killed, crashed) before it is
    #: failed as a poison message.
    max_deliveries: int = 3
    #: The watcher's paths -> this machine's: ``{ "/srv/share" = "/Volumes/share" }``, for
    #: workers that mount the shared storage elsewhere.
    path_map: dict[str, str] = {}

    @model_validator(mode="after")
    def _no_inline_password(self) -> ExecutorSection:
        if isinstance(self.redis_url, str):
            check_redis_url(self.redis_url, inline=True)
        return self

    def effective_redis_url(self) -> str:
        """The Redis URL, revealed from its reference when it is one."""
        if isinstance(self.redis_url, str):
            return self.redis_url
        url = self.redis_url.reveal()
        if not url:
            msg = f"[executor] redis_url: {self.redis_url.describe()} is not set"
            raise ConfigError(msg, hint="set it to the fleet's redis:// URL")
        check_redis_url(url, inline=False)
        return url

    def local_path(self, path: str) -> str:
        """``path`` as the watcher named it, on this machine (``path_map``)."""
        for theirs, ours in sorted(self.path_map.items(), key=lambda kv: -len(kv[0])):
            if PurePath(path).is_relative_to(theirs):
                return str(PurePath(ours) / PurePath(path).relative_to(theirs))
        return path


def check_redis_url(url: str, *, inline: bool) -> None:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL; inline only without a password."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        msg = f"redis_url must be a redis://, rediss:// or unix:// URL, not {url.split(':')[0]!r}"
        raise ValueError(msg)
    if inline and parts.password:
        msg = (
            "a redis_url with a password is a secret: give it by reference, "
            '{ env = "HOTFOLDER_REDIS_URL" } or { file = "/run/secrets/redis-url" }'
        )
        raise ValueError(msg)


@hookimpl
def hotfolder_register_sections(register: Register) -> None:
    register(ExecutorSection)
