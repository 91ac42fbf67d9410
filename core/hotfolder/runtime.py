"""What a run shares between its jobs: config, plugins, resolvers and long-lived services."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pluggy
from loguru import logger

from hotfolder.components import JobInput, Operation, ResolveContext, Resolver
from hotfolder.config import Config
from hotfolder.errors import ConfigError, HotfolderError, PluginError
from hotfolder.imaging import ImagingSection
from hotfolder.registry import Registry
from hotfolder.schema import PluginSettings, Section

T = TypeVar("T")
S = TypeVar("S", bound=Section)
P = TypeVar("P", bound=PluginSettings)


class Runtime:
    """Shared state for one ``process`` run or one daemon.

    ``service(key, factory)`` gives components one instance of a long-lived helper (the Venice
    client with its connection pool and rate limiter, an HTTP client) per runtime; anything
    with an ``aclose()`` or ``close()`` is closed by :meth:`aclose`.
    """

    def __init__(
        self, config: Config, pm: pluggy.PluginManager, registry: Registry, *, dry_run: bool = False
    ) -> None:
        self.config = config
        self.pm = pm
        self.registry = registry
        self.dry_run = dry_run
        self._services: dict[str, Any] = {}
        self.resolvers: list[Resolver] = sorted(
            (
                entry.cls(config.resolver_params.get(name))
                for name, entry in registry.resolvers.items()
            ),
            key=lambda r: -r.priority,
        )

    @property
    def limits(self) -> ImagingSection:
        return self.config.imaging

    def operation(self, name: str) -> type[Operation]:
        """The operation class registered as ``name``."""
        return self.registry.operation(name)

    def section(self, cls: type[S]) -> S:
        """The config table ``cls`` validates, typed (``runtime.section(VeniceSection)``)."""
        return self.config.section(cls)

    def plugin_settings(self, cls: type[P]) -> P:
        """A plugin's own table, ``[plugins.NAME]``, typed (its defaults when left out)."""
        return self.config.plugin_settings(cls)

    def service(self, key: str, factory: Callable[[], T]) -> T:
        """The runtime's one instance of a service, made by ``factory`` on first use."""
        if key not in self._services:
            self._services[key] = factory()
        return self._services[key]  # type: ignore[no-any-return]

    def services(self) -> list[Any]:
        """The services made so far (a pause watch looks for :class:`~hotfolder.pauses.Pausable`
        ones among them)."""
        return list(self._services.values())

    def set_service(self, key: str, value: Any) -> None:
        """Provide a service up front (the command line's ``--sandbox`` provides a Venice
        client for the sandbox; tests provide fakes)."""
        self._services[key] = value

    async def resolve(
        self, ref: str, *, base_dir: Path | None = None, origin: Path | None = None
    ) -> JobInput:
        """Resolve ``ref`` with the first resolver that accepts it (``origin``: see
        :attr:`ResolveContext.origin`)."""
        for resolver in self.resolvers:
            if resolver.accepts(ref):
                context = ResolveContext(runtime=self, base_dir=base_dir, origin=origin)
                job_input: JobInput = await call_component(resolver, resolver.resolve, ref, context)
                return job_input
        names = ", ".join(r.name for r in self.resolvers) or "none"
        msg = f"no resolver accepts {ref!r} (installed: {names})"
        raise ConfigError(msg, hint="give a file path, an https:// URL or a data: URI")

    async def aclose(self) -> None:
        for key, service in reversed(list(self._services.items())):
            try:
                if hasattr(service, "aclose"):
                    await service.aclose()
                elif hasattr(service, "close"):
                    service.close()
            except Exception:
                logger.exception("closing service {!r} failed", key)
        self._services.clear()


async def call_component(component: object, method: Callable[..., Any], *args: Any) -> Any:
    """Call a component's method: coroutines on the loop, plain functions in a worker thread.

    Anything but a HotfolderError that escapes is a bug in that component; it becomes a
    PluginError naming the component, so that one job fails and the host goes on.
    """
    try:
        if inspect.iscoroutinefunction(method):
            return await method(*args)
        result = await asyncio.to_thread(method, *args)
        if inspect.isawaitable(result):
            return await result
        return result
    except HotfolderError:
        raise
    except Exception as exc:
        name = getattr(component, "name", type(component).__name__)
        msg = f"{type(component).__name__} {name!r} failed unexpectedly: {exc!r}"
        raise PluginError(
            msg, hint="this is a bug in that plugin; report it to its authors"
        ) from exc
