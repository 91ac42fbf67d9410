"""The Venice image API: one client per API root and key, shared by a runtime's jobs.

Operations get the client with :func:`get_client`; the CLI's ``--sandbox`` provides its own
up front with ``runtime.set_service(SERVICE, VeniceClient(base_url=..., api_key=...))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotfolder.errors import AuthError
from hotfolder.secrets import SecretRef
from hotfolder.venice.catalog import Catalog, ModelInfo
from hotfolder.venice.client import ImageInput, ImageResult, VeniceClient
from hotfolder.venice.settings import VeniceSection

if TYPE_CHECKING:
    from hotfolder.runtime import Runtime

__all__ = [
    "SERVICE",
    "Catalog",
    "ImageInput",
    "ImageResult",
    "ModelInfo",
    "SecretRef",
    "VeniceClient",
    "VeniceSection",
    "connect_sandbox",
    "estimate_catalog",
    "get_client",
    "sandbox_client",
    "start_local_sandbox",
]

#: The runtime service key of the client.
SERVICE = "venice"


def get_client(runtime: Runtime) -> VeniceClient:
    """The runtime's client, made from ``[venice]`` on first use (AuthError without a key)."""
    return runtime.service(
        SERVICE, lambda: VeniceClient.from_settings(runtime.section(VeniceSection))
    )


def start_local_sandbox(settings: VeniceSection) -> Any:
    """Start a local sandbox on a free loopback port; returns its handle (``.stop()`` ends it).

    The sandbox allows ``settings.requests_per_minute``, as the account it stands in for would.
    """
    from loguru import logger

    from hotfolder.venice.sandbox import SandboxConfig, start_sandbox

    handle = start_sandbox(SandboxConfig(requests_per_minute=settings.requests_per_minute))
    logger.warning(
        "--sandbox: Venice calls go to the local sandbox at {}; results are simulated",
        handle.base_url,
    )
    return handle


def sandbox_client(handle: Any, settings: VeniceSection) -> VeniceClient:
    """A client for the sandbox behind ``handle``, with ``[venice]``'s other settings."""
    return VeniceClient(base_url=handle.base_url, api_key="sandbox-key", settings=settings)


def connect_sandbox(settings: VeniceSection) -> tuple[Any, VeniceClient]:
    """Start a local sandbox and a client pointed at it: ``(handle, client)``; stop the
    handle once the client is closed."""
    handle = start_local_sandbox(settings)
    return handle, sandbox_client(handle, settings)


def estimate_catalog(runtime: Runtime) -> Catalog:
    """The catalog estimates read: the disk cache of the model list, else the bundled price
    snapshot. It never sends a request and needs no key, so ``--dry-run`` works offline."""
    return runtime.service(
        SERVICE + ".estimates", lambda: _offline_catalog(runtime.section(VeniceSection))
    )


def _offline_catalog(settings: VeniceSection) -> Catalog:
    async def no_fetch(type: str) -> list[dict[str, Any]]:
        msg = "estimates read the cached model list only"
        raise AuthError(msg)

    return Catalog(
        no_fetch,
        cache_dir=settings.effective_cache_dir(),
        base_url=settings.effective_base_url(),
        ttl_s=settings.models_ttl_s,
    )
