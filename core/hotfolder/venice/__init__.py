"""The Venice image API: one client per API root and key, shared by a runtime's jobs.

This package is public: the names below are what operations use (the built-in
``hotfolder_plugins.venice_ops`` among them); its modules are private.

Operations get the client with :func:`get_client`, made from ``[venice]`` on first use; a
caller may provide one up front with ``runtime.set_service(SERVICE, client)`` (the command
line does, for ``--sandbox``). An operation turns its step's parameters into a request
(``EditRequest``, ``MultiEditRequest``, ``UpscaleRequest``, ``BackgroundRemoveRequest``) and
calls the client with its input image(s)::

    result = await get_client(runtime).upscale(image, UpscaleRequest(scale=4))
    result.data, result.cost_usd, result.notes

The client owns Venice's policy: the model lookup, the checks before a paid call, the price,
the upload (by URL where Venice can fetch it) and the daily budget. :func:`estimate_usd`
prices a request the same way for ``--dry-run``, offline. The pixel and byte limits below are
what ``fit = true`` scales an input into.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotfolder.errors import AuthError
from hotfolder.venice.catalog import (
    DEFAULT_EDIT_MODEL,
    SPEC_PROMPT_LIMIT,
    Catalog,
    ModelInfo,
)
from hotfolder.venice.cost import BACKGROUND_REMOVE_USD, request_usd
from hotfolder.venice.pausing import SERVICE_NAME
from hotfolder.venice.preflight import (
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    MAX_UPSCALE_INPUT_PIXELS,
    MIN_PIXELS,
)
from hotfolder.venice.requests import (
    UPSCALE_SCALES,
    BackgroundRemoveRequest,
    EditRequest,
    ImageRequest,
    MultiEditRequest,
    UpscaleRequest,
    UpscaleScale,
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
    "MAX_UPSCALE_INPUT_PIXELS",
    "MIN_PIXELS",
    "SERVICE",
    "SPEC_PROMPT_LIMIT",
    "UPSCALE_SCALES",
    "BackgroundRemoveRequest",
    "Catalog",
    "EditRequest",
    "ImageInput",
    "ImageRequest",
    "ImageResult",
    "ModelInfo",
    "MultiEditRequest",
    "UpscaleRequest",
    "UpscaleScale",
    "VeniceClient",
    "VeniceSection",
    "estimate_catalog",
    "estimate_usd",
    "get_client",
    "offline_catalog",
]

#: The runtime service key of the client (also the ``service`` its pauses name).
SERVICE = SERVICE_NAME


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
        SERVICE + ".estimates", lambda: offline_catalog(runtime.section(VeniceSection))
    )


def estimate_usd(runtime: RuntimeView, request: ImageRequest, *, images: int = 1) -> float | None:
    """What ``request`` with ``images`` inputs would cost, priced as the client prices a call
    but from :func:`estimate_catalog`: no request, no key. None when the price is not known."""
    model = None
    if request.model_type is not None and request.model_id is not None:
        model = estimate_catalog(runtime).cached_model(request.model_id, request.model_type)
    return request_usd(request, model, images=images)


def offline_catalog(settings: VeniceSection) -> Catalog:
    """A catalog that never sends a request: the cached model list, else the bundled
    snapshot (``hotfolder models`` without a key, ``--dry-run`` estimates)."""

    async def no_fetch(type: str) -> list[dict[str, Any]]:
        msg = "estimates read the cached model list only"
        raise AuthError(msg)

    return Catalog(
        no_fetch,
        cache_dir=settings.effective_cache_dir(),
        base_url=settings.effective_base_url(),
        ttl_seconds=settings.models_ttl_seconds,
    )
