"""Venice's four image endpoints as operations, and the ``[venice]`` table they read.

=========================  =====================================================================
``venice.edit``            ``POST /image/edit``: the image changed as the prompt says
``venice.multi-edit``      ``POST /image/multi-edit``: the image plus ``with = [...]`` combined
``venice.upscale``         ``POST /image/upscale``: 2x to 4x larger, within 16,777,216 pixels
``venice.background-remove``  ``POST /image/background-remove``: a PNG with a transparent background
=========================  =====================================================================

Parameters follow Venice's OpenAPI spec (2026-08-22) field for field; a parameter left out is
left out of the request, so Venice's default applies. Every step checks its input and its
parameters against Venice's limits and the model's constraints before anything is paid for;
``fit = true`` runs ``fit-to-limits`` first so that an image outside the pixel or byte range
is scaled into it instead of refused.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

import hotfolder
from hotfolder import Artifact, call_component, venice
from hotfolder.venice import (
    DEFAULT_EDIT_MODEL,
    SPEC_PROMPT_LIMIT,
    UPSCALE_MODEL,
    ImageInput,
    ModelInfo,
    VeniceSection,
    estimate_catalog,
    get_client,
)

if TYPE_CHECKING:
    from hotfolder import Register, RuntimeView
    from hotfolder.venice import ImageResult, VeniceClient

AspectRatio = Literal["auto", "1:1", "3:2", "16:9", "21:9", "9:16", "2:3", "3:4", "4:5"]
Quality = Literal["low", "medium", "high"]
LEGACY_UPSCALE_FIELDS = ("enhance", "enhanceCreativity", "enhancePrompt", "replication")


def _output_format(value: object) -> object:
    if isinstance(value, str):
        value = value.strip().lower()
        return "jpeg" if value == "jpg" else value
    return value


OutputFormat = Annotated[Literal["jpeg", "png", "webp"] | None, BeforeValidator(_output_format)]


class VeniceParams(hotfolder.Params):
    """What every Venice step takes."""

    #: Run ``fit-to-limits`` first: scale and re-encode the image into Venice's limits.
    fit: bool = False


class EditParams(VeniceParams):
    """``/image/edit`` (and multi-edit): the spec's fields; None leaves one out."""

    prompt: str = Field(min_length=1, max_length=SPEC_PROMPT_LIMIT)
    model: str = Field(default=DEFAULT_EDIT_MODEL, min_length=1)
    aspect_ratio: AspectRatio | None = None
    resolution: str | None = Field(default=None, min_length=1, max_length=10)
    output_format: OutputFormat = None
    safe_mode: bool | None = None
    enhance_prompt: bool | None = None
    disable_prompt_optimization_thinking: bool | None = None
    #: For models with quality tiers (see ``hotfolder models``).
    quality: Quality | None = None

    def wire_fields(self) -> dict[str, Any]:
        """The request fields shared by edit and multi-edit (the model is named apart)."""
        return self.model_dump(
            exclude={"fit", "model", "quality", "prompt", "with_"}, exclude_none=True
        )


class MultiEditParams(EditParams):
    """``/image/multi-edit``: the current image first, then ``with = [...]``."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    #: Other images: paths (relative to the config file's folder), URLs or data URIs; when
    #: empty, the images a job manifest names beyond the first.
    with_: list[str] = Field(default_factory=list, alias="with")

    @field_validator("with_")
    @classmethod
    def _from_config_folder(cls, refs: list[str], info: ValidationInfo) -> list[str]:
        """Relative paths written in a config are taken from its folder (a manifest's own
        overrides, validated without one, stay relative to the manifest)."""
        base = (info.context or {}).get("base_dir")
        if base is None:
            return refs
        return [
            os.path.abspath(Path(base) / ref) if _is_relative_path(ref) else ref for ref in refs
        ]


def _is_relative_path(ref: str) -> bool:
    if ref.startswith("data:") or "://" in ref:
        return False
    return not Path(ref).expanduser().is_absolute() and not ref.startswith("~")


class UpscaleParams(VeniceParams):
    """``/image/upscale``: ``scale`` 2-4 (reduced when the output would pass 16,777,216
    pixels) and ``creativity`` 0-0.02."""

    scale: float | None = Field(default=None, ge=2, le=4)
    creativity: float | None = Field(default=None, ge=0, le=0.02)

    @model_validator(mode="before")
    @classmethod
    def _legacy_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            legacy = [name for name in LEGACY_UPSCALE_FIELDS if name in data]
            if legacy:
                msg = (
                    f"{', '.join(legacy)}: legacy upscale field(s) that Venice removed on "
                    "2026-07-09; the current fields are scale (2 to 4) and creativity "
                    "(0 to 0.02)"
                )
                raise ValueError(msg)
        return data


class _VeniceOperation(hotfolder.Operation):
    """What the four share: paid, fit, the client, and the result's record."""

    paid: ClassVar[bool] = True
    params: VeniceParams

    async def _fit(
        self, context: hotfolder.StepContext, image: Artifact, *, max_pixels: int
    ) -> Artifact:
        if not self.params.fit:
            return image
        fit_cls = context.runtime.operation("fit-to-limits")
        fit = fit_cls(
            fit_cls.Params.model_validate(
                {
                    "min_pixels": venice.MIN_PIXELS,
                    "max_pixels": max_pixels,
                    "max_bytes": venice.MAX_UPLOAD_BYTES,
                }
            )
        )
        fitted = await call_component(fit, fit.run, context, image)
        assert isinstance(fitted, Artifact)
        return fitted

    def _finish(
        self,
        context: hotfolder.StepContext,
        image: Artifact,
        result: ImageResult,
        cost_usd: float | None,
        **notes: Any,
    ) -> Artifact:
        h = result.headers
        record = context.record
        if h.request_id:
            record.request_ids.append(h.request_id)
        record.cost_usd = cost_usd
        found = {
            "endpoint": result.endpoint,
            "model": h.model_id,
            "balance_usd": h.balance_usd,
            "enhanced_prompt": h.enhanced_prompt,
            "content_violation": h.content_violation or None,
            "deprecation": h.deprecation,
            "size": f"{result.image.width}x{result.image.height}",
        }
        record.notes.update({k: v for k, v in {**found, **notes}.items() if v is not None})
        info = {k: v for k, v in image.info.items() if k not in ("source_url", "source_sha256")}
        if result.simulated:
            info["simulated"] = True
        return image.with_data(result.data, format=result.format, info=info)


async def _prepare(image: Artifact, *, what: str, url_ok: bool, max_pixels: int) -> ImageInput:
    """Decode-check, pixel-check and package one input, off the event loop."""

    def work() -> ImageInput:
        venice.check_pixels(image, what=what, max_pixels=max_pixels)
        return venice.upload_input(image, url_ok=url_ok)

    return await asyncio.to_thread(work)


class _EditFamily(_VeniceOperation):
    """Edit and multi-edit: the model's constraints checked against the step's choices."""

    params: EditParams

    async def _model(self, client: VeniceClient, *, images: int, multi: bool) -> ModelInfo:
        p = self.params
        model = await client.catalog.model(p.model)
        venice.check_prompt(p.prompt, model, op=self.name)
        venice.check_options(
            model,
            op=self.name,
            aspect_ratio=p.aspect_ratio,
            resolution=p.resolution,
            quality=p.quality,
            images=images,
        )
        if multi and not model.constraints.combine_images:
            msg = (
                f"{self.name}: /image/multi-edit refuses {p.model}, which edits one image at a time"
            )
            hint = "choose a model that combines images (see 'hotfolder models')"
            if not isinstance(p, MultiEditParams):
                hint = "leave quality out (it goes through /image/multi-edit), or " + hint
            raise hotfolder.ConfigError(msg, hint=hint)
        return model

    def estimate_usd(self, runtime: RuntimeView) -> float | None:
        p = self.params
        model = estimate_catalog(runtime).cached_model(p.model)
        if model is None:
            return None
        images = 1 + len(p.with_) if isinstance(p, MultiEditParams) else 1
        return venice.edit_usd(
            model,
            images=images,
            resolution=p.resolution,
            quality=p.quality,
            enhance_prompt=bool(p.enhance_prompt),
        )


class VeniceEdit(_EditFamily):
    """Edit the image as the prompt says (``POST /image/edit``).

    With ``quality`` set the request goes to ``/image/multi-edit`` with this one image: the
    spec's edit schema has no ``quality`` field and refuses unknown keys, multi-edit takes it.
    """

    name = "venice.edit"
    summary = "Venice: edit the image as the prompt says (paid)."

    class Params(EditParams):
        pass

    params: Params

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        p = self.params
        client = get_client(context.runtime)
        image = await self._fit(context, image, max_pixels=venice.MAX_PIXELS)
        upload = await _prepare(
            image, what=self.name, url_ok=p.quality is None, max_pixels=venice.MAX_PIXELS
        )
        model = await self._model(client, images=1, multi=p.quality is not None)
        cost = venice.edit_usd(
            model, resolution=p.resolution, quality=p.quality, enhance_prompt=bool(p.enhance_prompt)
        )
        fields = p.wire_fields()
        if p.quality is None:
            result = await client.edit(
                upload,
                prompt=p.prompt,
                model=p.model,
                cost_usd=cost,
                limits=image.limits,
                **fields,
            )
        else:
            result = await client.multi_edit(
                [upload],
                prompt=p.prompt,
                modelId=p.model,
                quality=p.quality,
                cost_usd=cost,
                limits=image.limits,
                **fields,
            )
        return self._finish(context, image, result, cost, model=result.headers.model_id or p.model)


class VeniceMultiEdit(_EditFamily):
    """Combine the image with others as the prompt says (``POST /image/multi-edit``)."""

    name = "venice.multi-edit"
    summary = "Venice: combine the image with the `with` images as the prompt says (paid)."

    class Params(MultiEditParams):
        pass

    params: Params

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        p = self.params
        client = get_client(context.runtime)
        refs = list(p.with_) or list(context.job.extra_refs)
        others = [await context.resolve(ref) for ref in refs]
        images = [
            await self._fit(context, a, max_pixels=venice.MAX_PIXELS) for a in [image, *others]
        ]
        uploads = [
            await _prepare(a, what=self.name, url_ok=True, max_pixels=venice.MAX_PIXELS)
            for a in images
        ]
        model = await self._model(client, images=len(uploads), multi=True)
        cost = venice.edit_usd(
            model,
            images=len(uploads),
            resolution=p.resolution,
            quality=p.quality,
            enhance_prompt=bool(p.enhance_prompt),
        )
        result = await client.multi_edit(
            uploads,
            prompt=p.prompt,
            modelId=p.model,
            quality=p.quality,
            cost_usd=cost,
            limits=image.limits,
            **p.wire_fields(),
        )
        return self._finish(context, images[0], result, cost, model=p.model, images=len(uploads))


class VeniceUpscale(_VeniceOperation):
    """Upscale the image 2x to 4x (``POST /image/upscale``)."""

    name = "venice.upscale"
    summary = "Venice: upscale 2x-4x, within 16,777,216 output pixels (paid)."

    class Params(UpscaleParams):
        pass

    params: Params

    def estimate_usd(self, runtime: RuntimeView) -> float | None:
        model = estimate_catalog(runtime).cached_model(UPSCALE_MODEL, "upscale")
        return venice.upscale_usd(model, self.params.scale or 2)

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        p = self.params
        client = get_client(context.runtime)
        wanted = p.scale or 2
        most = int(venice.MAX_UPSCALE_OUTPUT_PIXELS / (wanted * wanted))
        image = await self._fit(context, image, max_pixels=min(venice.MAX_PIXELS, most))

        def work() -> tuple[float, ImageInput, str]:
            width, height = venice.check_pixels(image, what=self.name)
            scale = venice.upscale_scale(image.name, width, height, p.scale)
            return scale, venice.upload_input(image, url_ok=False), f"{width}x{height}"

        scale, upload, input_size = await asyncio.to_thread(work)
        listing = await client.catalog.models("upscale")
        model = listing.models.get(UPSCALE_MODEL) or next(iter(listing.models.values()), None)
        cost = venice.upscale_usd(model, scale)
        sent = scale if (p.scale is not None or scale != 2) else None
        result = await client.upscale(
            upload, scale=sent, creativity=p.creativity, cost_usd=cost, limits=image.limits
        )
        reduced = wanted if scale != wanted else None
        return self._finish(
            context,
            image,
            result,
            cost,
            scale=scale,
            scale_reduced_from=reduced,
            input_size=input_size,
        )


class VeniceBackgroundRemove(_VeniceOperation):
    """Remove the background (``POST /image/background-remove``): a PNG with alpha."""

    name = "venice.background-remove"
    summary = "Venice: remove the background; a PNG with transparency (paid)."

    class Params(VeniceParams):
        pass

    params: Params

    def estimate_usd(self, runtime: RuntimeView) -> float | None:
        return venice.BACKGROUND_REMOVE_USD

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        client = get_client(context.runtime)
        image = await self._fit(context, image, max_pixels=venice.MAX_PIXELS)
        upload = await _prepare(image, what=self.name, url_ok=True, max_pixels=venice.MAX_PIXELS)
        cost = venice.BACKGROUND_REMOVE_USD
        result = await client.background_remove(upload, cost_usd=cost, limits=image.limits)
        return self._finish(context, image, result, cost)


OPERATIONS: tuple[type[hotfolder.Operation], ...] = (
    VeniceEdit,
    VeniceMultiEdit,
    VeniceUpscale,
    VeniceBackgroundRemove,
)


@hotfolder.hookimpl
def hotfolder_register_operations(register: Register) -> None:
    for op in OPERATIONS:
        register(op)


@hotfolder.hookimpl
def hotfolder_register_sections(register: Register) -> None:
    register(VeniceSection)
