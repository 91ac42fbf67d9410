"""Per-endpoint work: check the form, load the images, price the call, and prepare the render.

Each ``prepare_*`` returns a :class:`Prepared`: the charge, a render function to run in a
worker thread, the response media type and the endpoint's success headers. Nothing is
charged or rendered here; the pipeline in ``app.py`` decides whether it runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from urllib.parse import quote

from hotfolder_sandbox import render
from hotfolder_sandbox.billing import background_price, edit_price, upscale_price
from hotfolder_sandbox.catalog import Model
from hotfolder_sandbox.checks import (
    check_background_remove,
    check_edit,
    check_multi_edit,
    check_upscale,
)
from hotfolder_sandbox.config import SandboxConfig
from hotfolder_sandbox.forms import Form
from hotfolder_sandbox.images import PixelLimits, load_image
from hotfolder_sandbox.state import SandboxState

__all__ = ["PREPARERS", "Prepared", "Preparer", "deprecation_headers", "enhanced_prompt"]


@dataclass(frozen=True)
class Prepared:
    """A checked request, ready to be paid for and rendered."""

    price: Decimal
    render: Callable[[], bytes]
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


def _limits(config: SandboxConfig, max_pixels: int | None = None) -> PixelLimits:
    return PixelLimits(
        max_bytes=config.max_image_bytes,
        min_pixels=config.min_pixels,
        max_pixels=config.max_pixels if max_pixels is None else max_pixels,
        max_pixels_status=config.max_pixels_status,
        max_bytes_status=config.max_bytes_status,
    )


def deprecation_headers(model: Model) -> dict[str, str]:
    """The ``x-venice-*deprecat*`` headers for a model the list marks deprecated."""
    info = model.deprecation
    if not info:
        return {}
    headers = {
        "x-venice-deprecated": "true",
        "x-venice-model-deprecation-date": str(info["date"]),
        "x-venice-model-deprecation-warning": (
            f"The model {model.id} is deprecated and will be removed on {info['removesAt']}."
        ),
    }
    replacement = info.get("replacementModelId")
    if replacement:
        headers["x-venice-deprecated-replacement"] = str(replacement)
        headers["x-venice-model-deprecation-warning"] += f" Use {replacement} instead."
    return headers


def enhanced_prompt(prompt: str) -> str:
    """The sandbox's stand-in for Venice's vision-aware prompt rewrite."""
    return f"{prompt.strip()}, keeping the original composition, natural light and fine detail"


async def _prepare_edit(form: Form, state: SandboxState, *, multi: bool) -> Prepared:
    config = state.config
    if multi:
        job = check_multi_edit(form, state.catalog, config)
    else:
        job = check_edit(form, state.catalog, config)
    limits = _limits(config)
    images = [
        await load_image(ref, limits, fetch_urls=config.fetch_image_urls) for ref in job.images
    ]
    price = edit_price(
        job.model,
        resolution=job.resolution,
        quality=job.quality,
        images=len(images),
        enhance_prompt=job.enhance_prompt,
    )
    prompt = enhanced_prompt(job.prompt) if job.enhance_prompt else job.prompt
    draw = partial(
        render.edit,
        images,
        prompt=prompt,
        aspect_ratio=job.aspect_ratio,
        resolution=job.resolution,
        output_format=job.output_format,
        keep_input_size=len(images) == 1 and not job.model.single_image_aspect_ratio,
    )
    headers = {"x-venice-is-content-violation": "false", **deprecation_headers(job.model)}
    if not multi:
        headers["x-venice-model-id"] = job.model.id
        headers["x-venice-model-name"] = job.model.name
    if job.enhance_prompt:
        headers["x-venice-enhanced-prompt"] = quote(prompt, safe="")
    return Prepared(price, draw, f"image/{job.output_format}", headers)


async def prepare_edit(form: Form, state: SandboxState) -> Prepared:
    return await _prepare_edit(form, state, multi=False)


async def prepare_multi_edit(form: Form, state: SandboxState) -> Prepared:
    return await _prepare_edit(form, state, multi=True)


async def prepare_upscale(form: Form, state: SandboxState) -> Prepared:
    config = state.config
    job = check_upscale(form, state.catalog)
    limits = _limits(config, max_pixels=min(config.max_pixels, config.max_upscale_output_pixels))
    image = await load_image(job.image, limits, fetch_urls=False)
    draw = partial(
        render.upscale,
        image,
        scale=job.scale,
        creativity=job.creativity,
        max_pixels=config.max_upscale_output_pixels,
    )
    return Prepared(upscale_price(job.model, job.scale), draw, "image/png")


async def prepare_background_remove(form: Form, state: SandboxState) -> Prepared:
    config = state.config
    job = check_background_remove(form, state.catalog)
    image = await load_image(job.image, _limits(config), fetch_urls=config.fetch_image_urls)
    return Prepared(
        background_price(job.model), partial(render.remove_background, image), "image/png"
    )


Preparer = Callable[[Form, SandboxState], Awaitable[Prepared]]

#: Endpoint path (under /api/v1) → its preparer.
PREPARERS: dict[str, Preparer] = {
    "/image/edit": prepare_edit,
    "/image/multi-edit": prepare_multi_edit,
    "/image/upscale": prepare_upscale,
    "/image/background-remove": prepare_background_remove,
}
