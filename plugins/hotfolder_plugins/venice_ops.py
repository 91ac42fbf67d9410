"""Venice's four image endpoints as operations, and the ``models`` and ``balance`` commands.

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
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import click
from pydantic import BeforeValidator, ConfigDict, Field, model_validator

import hotfolder
from hotfolder.artifact import Artifact
from hotfolder.runtime import call_component
from hotfolder.venice import VeniceClient, VeniceSettings, estimate_catalog, get_client
from hotfolder.venice import cost as pricing
from hotfolder.venice import preflight
from hotfolder.venice.catalog import DEFAULT_EDIT_MODEL, SPEC_PROMPT_LIMIT, UPSCALE_MODEL, ModelInfo
from hotfolder.venice.client import ImageResult
from hotfolder.venice.wire import ImageInput

if TYPE_CHECKING:
    from hotfolder.registry import Register
    from hotfolder.runtime import Runtime

AspectRatio = Literal["auto", "1:1", "3:2", "16:9", "21:9", "9:16", "2:3", "3:4", "4:5"]
Quality = Literal["low", "medium", "high"]
LEGACY_UPSCALE_FIELDS = ("enhance", "enhanceCreativity", "enhancePrompt", "replication")


def _output_format(value: object) -> object:
    if isinstance(value, str):
        value = value.strip().lower()
        return "jpeg" if value == "jpg" else value
    return value


OutputFormat = Annotated[
    Literal["jpeg", "png", "webp"] | None, BeforeValidator(_output_format)
]


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

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    #: Other images (paths relative to the job's input folder, URLs, data URIs); when empty,
    #: the images a job manifest names beyond the first.
    with_: list[str] = Field(default_factory=list, alias="with")


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
        fit_cls = context.runtime.registry.operation("fit-to-limits")
        fit = fit_cls(
            fit_cls.Params.model_validate(
                {
                    "min_pixels": preflight.MIN_PIXELS,
                    "max_pixels": max_pixels,
                    "max_bytes": preflight.MAX_UPLOAD_BYTES,
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
        preflight.check_pixels(image, what=what, max_pixels=max_pixels)
        return preflight.upload_input(image, url_ok=url_ok)

    return await asyncio.to_thread(work)


class VeniceEdit(_VeniceOperation):
    """Edit the image as the prompt says (``POST /image/edit``).

    With ``quality`` set the request goes to ``/image/multi-edit`` with this one image: the
    spec's edit schema has no ``quality`` field and refuses unknown keys, multi-edit takes it.
    """

    name = "venice.edit"
    summary = "Venice: edit the image as the prompt says (paid)."
    Params = EditParams
    params: EditParams

    def estimate_usd(self, runtime: Runtime) -> float | None:
        p = self.params
        model = estimate_catalog(runtime).cached_model(p.model)
        if model is None:
            return None
        return pricing.edit_usd(
            model,
            resolution=p.resolution,
            quality=p.quality,
            enhance_prompt=bool(p.enhance_prompt),
        )

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        p = self.params
        client = get_client(context.runtime)
        image = await self._fit(context, image, max_pixels=preflight.MAX_PIXELS)
        upload = await _prepare(
            image, what=self.name, url_ok=p.quality is None, max_pixels=preflight.MAX_PIXELS
        )
        model = await client.catalog.model(p.model)
        preflight.check_prompt(p.prompt, model, op=self.name)
        preflight.check_options(
            model, op=self.name, aspect_ratio=p.aspect_ratio, resolution=p.resolution,
            quality=p.quality,
        )  # fmt: skip
        if p.quality is not None and not model.constraints.combine_images:
            msg = f"{self.name}: quality needs a model that /image/multi-edit takes; {p.model} is not one"
            raise hotfolder.ConfigError(msg, hint="leave quality out, or choose another model")
        cost = pricing.edit_usd(
            model, resolution=p.resolution, quality=p.quality, enhance_prompt=bool(p.enhance_prompt)
        )
        fields = p.wire_fields()
        if p.quality is None:
            result = await client.edit(
                upload, prompt=p.prompt, model=p.model, cost_usd=cost, limits=image.limits,
                **fields,
            )  # fmt: skip
        else:
            result = await client.multi_edit(
                [upload], prompt=p.prompt, modelId=p.model, quality=p.quality, cost_usd=cost,
                limits=image.limits, **fields,
            )  # fmt: skip
        return self._finish(
            context, image, result, cost, model=result.headers.model_id or p.model
        )


class VeniceMultiEdit(_VeniceOperation):
    """Combine the image with others as the prompt says (``POST /image/multi-edit``)."""

    name = "venice.multi-edit"
    summary = "Venice: combine the image with the `with` images as the prompt says (paid)."
    Params = MultiEditParams
    params: MultiEditParams

    def estimate_usd(self, runtime: Runtime) -> float | None:
        p = self.params
        model = estimate_catalog(runtime).cached_model(p.model)
        if model is None:
            return None
        return pricing.edit_usd(
            model,
            images=1 + len(p.with_),
            resolution=p.resolution,
            quality=p.quality,
            enhance_prompt=bool(p.enhance_prompt),
        )

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        p = self.params
        client = get_client(context.runtime)
        refs = list(p.with_) or list(context.job.extra_refs)
        others = [await context.resolve(ref) for ref in refs]
        images = [
            await self._fit(context, a, max_pixels=preflight.MAX_PIXELS) for a in [image, *others]
        ]
        uploads = [
            await _prepare(a, what=self.name, url_ok=True, max_pixels=preflight.MAX_PIXELS)
            for a in images
        ]
        model = await client.catalog.model(p.model)
        preflight.check_prompt(p.prompt, model, op=self.name)
        preflight.check_options(
            model, op=self.name, aspect_ratio=p.aspect_ratio, resolution=p.resolution,
            quality=p.quality, images=len(uploads),
        )  # fmt: skip
        if not model.constraints.combine_images:
            msg = f"{self.name}: model {p.model} edits one image at a time; /image/multi-edit refuses it"
            raise hotfolder.ConfigError(msg, hint="use venice.edit, or a model that combines images")
        cost = pricing.edit_usd(
            model, images=len(uploads), resolution=p.resolution, quality=p.quality,
            enhance_prompt=bool(p.enhance_prompt),
        )  # fmt: skip
        result = await client.multi_edit(
            uploads, prompt=p.prompt, modelId=p.model, quality=p.quality, cost_usd=cost,
            limits=image.limits, **p.wire_fields(),
        )  # fmt: skip
        return self._finish(context, images[0], result, cost, model=p.model, images=len(uploads))


class VeniceUpscale(_VeniceOperation):
    """Upscale the image 2x to 4x (``POST /image/upscale``)."""

    name = "venice.upscale"
    summary = "Venice: upscale 2x-4x, within 16,777,216 output pixels (paid)."
    Params = UpscaleParams
    params: UpscaleParams

    def estimate_usd(self, runtime: Runtime) -> float | None:
        model = estimate_catalog(runtime).cached_model(UPSCALE_MODEL, "upscale")
        return pricing.upscale_usd(model, self.params.scale or 2)

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        p = self.params
        client = get_client(context.runtime)
        wanted = p.scale or 2
        most = int(preflight.MAX_UPSCALE_OUTPUT_PIXELS / (wanted * wanted))
        image = await self._fit(context, image, max_pixels=min(preflight.MAX_PIXELS, most))

        def work() -> tuple[float, ImageInput]:
            width, height = preflight.check_pixels(image, what=self.name)
            scale = preflight.upscale_scale(image.name, width, height, p.scale)
            return scale, preflight.upload_input(image, url_ok=False)

        scale, upload = await asyncio.to_thread(work)
        listing = await client.catalog.models("upscale")
        model = listing.models.get(UPSCALE_MODEL) or next(iter(listing.models.values()), None)
        cost = pricing.upscale_usd(model, scale)
        sent = scale if (p.scale is not None or scale != 2) else None
        result = await client.upscale(
            upload, scale=sent, creativity=p.creativity, cost_usd=cost, limits=image.limits
        )
        reduced = wanted if scale != wanted else None
        return self._finish(
            context, image, result, cost, scale=scale, scale_reduced_from=reduced,
            input_size=f"{image.image.width}x{image.image.height}",
        )  # fmt: skip


class VeniceBackgroundRemove(_VeniceOperation):
    """Remove the background (``POST /image/background-remove``): a PNG with alpha."""

    name = "venice.background-remove"
    summary = "Venice: remove the background; a PNG with transparency (paid)."
    Params = VeniceParams

    def estimate_usd(self, runtime: Runtime) -> float | None:
        return pricing.BACKGROUND_REMOVE_USD

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        client = get_client(context.runtime)
        image = await self._fit(context, image, max_pixels=preflight.MAX_PIXELS)
        upload = await _prepare(image, what=self.name, url_ok=True, max_pixels=preflight.MAX_PIXELS)
        cost = pricing.BACKGROUND_REMOVE_USD
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


# --- commands ----------------------------------------------------------------------------------


def _client(sandbox: bool) -> tuple[VeniceClient, Any, Any]:
    """The client for a command: the config's runtime client (``--config``), a sandbox's
    (``--sandbox``), or, with no config file, one from the defaults and ``$VENICE_API_KEY``.
    Also the runtime and the sandbox to close."""
    from hotfolder.config import find_config

    state = click.get_current_context().obj
    runtime = None
    if state is not None and hasattr(state, "runtime"):
        try:
            find_config(state.config_path)
        except hotfolder.ConfigError:
            pass  # no config file: the defaults will do
        else:
            runtime = state.runtime()
    settings = runtime.config.venice if runtime is not None else VeniceSettings()
    if sandbox:
        from hotfolder.venice.sandbox import SandboxConfig, start_sandbox

        handle = start_sandbox(SandboxConfig())
        client = VeniceClient(base_url=handle.base_url, api_key="sandbox-key", settings=settings)
        return client, runtime, handle
    if runtime is not None:
        return get_client(runtime), runtime, None
    return VeniceClient.from_settings(settings), None, None


async def _close(client: VeniceClient, runtime: Any, sandbox: Any) -> None:
    await client.aclose()
    if runtime is not None:
        await runtime.aclose()
    if sandbox is not None:
        sandbox.stop()


def _price(model: ModelInfo) -> str:
    p = model.pricing
    if "upscale" in p:
        tiers = p["upscale"]
        return " / ".join(f"{k} ${v['usd']:g}" for k, v in tiers.items() if "usd" in v)
    tiers = p.get("resolutions") or {}
    if tiers:
        return " / ".join(f"{k} ${v['usd']:g}" for k, v in tiers.items())
    usd = (p.get("inpaint") or {}).get("usd")
    return f"${usd:g}" if usd is not None else "-"


def _models_rows(models: Sequence[ModelInfo], kind: str) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "type": kind,
            "name": m.name,
            "price": _price(m),
            "constraints": m.constraints.describe() if kind == "inpaint" else "",
            "deprecated": bool(m.deprecation),
            "pricing": dict(m.pricing),
        }
        for m in models
    ]


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--refresh", is_flag=True, help="Fetch the list now instead of using the cache.")
@click.option("--sandbox", is_flag=True, help="Ask a local sandbox started for this command.")
def models_command(as_json: bool, refresh: bool, sandbox: bool) -> None:
    """List Venice's edit and upscale models: id, name, price and constraints."""

    async def fetch() -> tuple[list[dict[str, Any]], str]:
        client, runtime, handle = _client(sandbox)
        try:
            inpaint = await client.catalog.models("inpaint", refresh=refresh)
            upscale = await client.catalog.models("upscale", refresh=refresh)
        finally:
            await _close(client, runtime, handle)
        rows = _models_rows(list(inpaint.models.values()), "inpaint")
        rows += _models_rows(list(upscale.models.values()), "upscale")
        return rows, inpaint.source

    rows, source = asyncio.run(fetch())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "name", "price (USD)", "constraints", title=f"Venice models ({source})")
    for row in rows:
        name = row["name"] + (" (deprecated)" if row["deprecated"] else "")
        table.add_row(row["id"], name, row["price"], row["constraints"])
    table.add_row("(background-remove)", "fixed model", f"${pricing.BACKGROUND_REMOVE_USD:g}", "")
    Console().print(table)


@click.command("balance")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
@click.option("--sandbox", is_flag=True, help="Ask a local sandbox started for this command.")
def balance_command(as_json: bool, sandbox: bool) -> None:
    """Show the Venice account balance and whether it can pay for requests."""

    async def fetch() -> dict[str, Any]:
        client, runtime, handle = _client(sandbox)
        try:
            return await client.balance()
        finally:
            await _close(client, runtime, handle)

    body = asyncio.run(fetch())
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    balances = body.get("balances") or {}
    usd, diem = balances.get("usd"), balances.get("diem")
    click.echo(f"can pay:   {'yes' if body.get('canConsume') else 'NO'}")
    click.echo(f"currency:  {body.get('consumptionCurrency') or '-'}")
    click.echo(f"USD:       {'-' if usd is None else f'{usd:.2f}'}")
    click.echo(f"DIEM:      {'-' if diem is None else f'{diem:.2f}'}")


@hotfolder.hookimpl
def hotfolder_register_commands(cli: click.Group) -> None:
    cli.add_command(models_command)
    cli.add_command(balance_command)
