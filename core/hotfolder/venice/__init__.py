"""The Venice image API: one client per API root and key, shared by a runtime's jobs.

Operations get the client with :func:`get_client`; the CLI's ``--sandbox`` provides its own
up front with ``runtime.set_service(SERVICE, VeniceClient(base_url=..., api_key=...))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotfolder.errors import AuthError

from hotfolder.venice.catalog import Catalog, ModelInfo
from hotfolder.venice.client import ImageInput, ImageResult, VeniceClient
from hotfolder.venice.settings import SecretRef, VeniceSettings

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
    "VeniceSettings",
    "estimate_catalog",
    "get_client",
]

#: The runtime service key of the client.
SERVICE = "venice"


def get_client(runtime: Runtime) -> VeniceClient:
    """The runtime's client, made from ``[venice]`` on first use (AuthError without a key)."""
    return runtime.service(SERVICE, lambda: VeniceClient.from_settings(runtime.config.venice))


def estimate_catalog(runtime: Runtime) -> Catalog:
    """The catalog estimates read (never over the network): the client's when a key is
    set, else one over the disk cache and the bundled price snapshot, so ``--dry-run``
    works without a key."""
    try:
        return get_client(runtime).catalog
    except AuthError:
        return runtime.service(SERVICE + ".catalog", lambda: _offline_catalog(runtime))


def _offline_catalog(runtime: Runtime) -> Catalog:
    settings = runtime.config.venice

    async def no_fetch(type: str) -> list[dict[str, Any]]:
        msg = "no Venice API key: the model list is read from the cache only"
        raise AuthError(msg, hint="export VENICE_API_KEY=...")

    return Catalog(
        no_fetch,
        cache_dir=settings.effective_cache_dir(),
        base_url=settings.effective_base_url(),
        ttl_s=settings.models_ttl_s,
    )
