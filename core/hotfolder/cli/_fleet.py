"""The composition of a fleet (``[executor] kind = "dramatiq"``): the one place that builds
the Redis-backed parts and hands them to the daemon, the workers and the Venice client.

Nothing below the command line knows Redis is there: the daemon's scheduler gets a
:class:`~hotfolder.daemon.scheduler.ChainRunner`, the Venice client a
:class:`~hotfolder.venice.sharing.SharedAccount`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hotfolder.errors import ConfigError
from hotfolder.fleet.settings import ExecutorSection

if TYPE_CHECKING:
    from hotfolder.config import Config
    from hotfolder.fleet.dispatch import FleetRunner
    from hotfolder.runtime import Runtime

INSTALL_HINT = "pip install 'hotfolder[distributed]' (Dramatiq and redis-py)"


def executor(config: Config) -> ExecutorSection | None:
    """``[executor]`` when it names a fleet, else None (chains run in this process)."""
    section = config.section(ExecutorSection)
    if section.kind != "dramatiq":
        return None
    try:
        import dramatiq  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        msg = f'[executor] kind = "dramatiq" needs Dramatiq and redis-py, not installed: {exc}'
        raise ConfigError(msg, hint=INSTALL_HINT) from exc
    return section


def runner(section: ExecutorSection) -> FleetRunner:
    from hotfolder.fleet.dispatch import FleetRunner

    return FleetRunner(section)


def sharing_account(
    make_runtime: Callable[[Config], Runtime], section: ExecutorSection
) -> Callable[[Config], Runtime]:
    """``make_runtime`` whose runtimes have a Venice client made up front, keeping the rate
    limit, breaker, pause and spend in the fleet's Redis (the watcher then sees and probes a
    pause that any worker met)."""
    from hotfolder.fleet.account import RedisAccount, account_prefix
    from hotfolder.fleet.broker import redis_client
    from hotfolder.venice import SERVICE, VeniceClient, VeniceSection

    client = redis_client(section)

    def make(config: Config) -> Runtime:
        runtime = make_runtime(config)
        settings = config.section(VeniceSection)
        key = settings.api_key.reveal() or ""
        prefix = account_prefix(section.namespace, settings.effective_base_url(), key)
        account = RedisAccount(client, prefix)
        runtime.set_service(SERVICE, VeniceClient.from_settings(settings, shared=account))
        return runtime

    return make
