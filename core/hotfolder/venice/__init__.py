"""The Venice image API: one client per API root and key, shared by a runtime's jobs.

This package is public: the names below are what operations use (the built-in
``hotfolder_plugins.venice_ops`` among them); its modules are private.

Operations get the client with :func:`get_client`, made from ``[venice]`` on first use; a
caller may provide one up front with ``runtime.set_service(SERVICE, client)`` (the command
line does, for ``--sandbox``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotfolder.errors import AuthError
from hotfolder.secrets import SecretRef
from hotfolder.venice.catalog import (
    DEFAULT_EDIT_MODEL,
    SPEC_PROMPT_LIMIT,
    UPSCALE_MODEL,
    Catalog,
    ModelInfo,
)
from hotfolder.venice.cost import BACKGROUND_REMOVE_USD, edit_usd, upscale_usd
from hotfolder.venice.preflight import (
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    MAX_UPSCALE_OUTPUT_PIXELS,
    MIN_PIXELS,
    check_options,
    check_pixels,
    check_prompt,
    upload_input,
    upscale_scale,
)
from hotfolder.venice.settings import VeniceSection
from hotfolder.venice.wire import ImageInput

if TYPE_CHECKING:
    from hotfolder.components import RuntimeView
    from hotfolder.venice.client import ImageResult, VeniceClient


def __getattr__(name: str) -> Any:
    # The client (httpx, tenacity) is imported on first use, so that loading the built-in
    # Venice operations, as every command does, stays cheap.
    if name in ("ImageResult", "VeniceClient"):
        from hotfolder.venice import client

        return getattr(client, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "BACKGROUND_REMOVE_USD",
    "DEFAULT_EDIT_MODEL",
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "MAX_UPSCALE_OUTPUT_PIXELS",
    "MIN_PIXELS",
    "SERVICE",
    "SPEC_PROMPT_LIMIT",
    "UPSCALE_MODEL",
    "Catalog",
    "ImageInput",
    "ImageResult",
    "ModelInfo",
    "SecretRef",
    "VeniceClient",
    "VeniceSection",
    "check_options",
    "check_pixels",
    "check_prompt",
    "edit_usd",
    "estimate_catalog",
    "get_client",
    "upload_input",
    "upscale_scale",
    "upscale_usd",
]

#: The runtime service key of the client.
SERVICE = "venice"


def get_client(runtime: RuntimeView) -> VeniceClient:
    """The runtime's client, made from ``[venice]`` on first use (AuthError without a key)."""
    from hotfolder.venice.client import VeniceClient

    return runtime.service(
        SERVICE, lambda: VeniceClient.from_settings(runtime.section(VeniceSection))
    )


def estimate_catalog(runtime: RuntimeView) -> Catalog:
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
        ttl_seconds=settings.models_ttl_seconds,
    )
