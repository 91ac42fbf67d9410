"""Venice's four image endpoints as operations, and the ``[venice]`` table they read.

=========================  =====================================================================
``venice.edit``            ``POST /image/edit``: the image changed as the prompt says
``venice.multi-edit``      ``POST /image/multi-edit``: the image plus ``with = [...]`` combined
``venice.upscale``         ``POST /image/upscale``: 2x or 4x larger, within 16,777,216 pixels
``venice.background-remove``  ``POST /image/background-remove``: a PNG with a transparent background
=========================  =====================================================================

Parameters follow Venice's OpenAPI spec (2026-08-22) field for field; a parameter left out is
left out of the request, so Venice's default applies. An operation turns its parameters into a
request (:class:`hotfolder.venice.EditRequest` and its siblings) and hands it to the client,
which checks the input and the request against Venice's limits and the model's constraints
before anything is paid for, prices the call, and sends the input by URL where Venice can
fetch it. ``fit = true`` runs ``fit-to-limits`` first, so that an image outside the pixel or
byte range is scaled into it instead of refused. The step's record gets the cost and the
client's notes (the model, the scale asked, how the input was sent) with the response headers.

An edit's ``prompt`` may contain ``{prompt}``: the text of the job's companion prompt file
(``NAME.prompt.txt`` beside ``NAME.ext``, see :mod:`hotfolder.prompts`) takes its place, and the
step's record keeps the prompt as sent. Without a readable, non-empty prompt file the step
fails before any request.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePath
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
from hotfolder import Artifact, InputError, call_component, prompts, venice
from hotfolder.venice import (
    DEFAULT_EDIT_MODEL,
    SPEC_PROMPT_LIMIT,
    UPSCALE_SCALES,
    BackgroundRemoveRequest,
    EditRequest,
    MultiEditRequest,
    UpscaleRequest,
    UpscaleScale,
    VeniceSection,
    get_client,
)

if TYPE_CHECKING:
    from hotfolder import Register, RuntimeView
    from hotfolder.venice import ImageResult

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

    def request_fields(self) -> dict[str, Any]:
        """The fields of an edit or multi-edit request (see :mod:`hotfolder.venice`)."""
        return self.model_dump(exclude={"fit", "with_"})

    async def sent_fields(self, context: hotfolder.StepContext) -> dict[str, Any]:
        """:meth:`request_fields` with ``{prompt}`` in the prompt replaced by the text of
        the job's prompt file; the step's record then shows the prompt as sent. An
        InputError (no prompt file, an unreadable or empty one) stops the step before any
        request."""
        fields = self.request_fields()
        if prompts.PROMPT_FIELD not in fields["prompt"]:
            return fields
        path = prompts.prompt_file_of(context.job.source)
        if path is None:
            msg = (
                f"step {context.index} ({context.record.op}) uses {{prompt}}, but "
                f"{context.job.display} is no local image file that can have a prompt file"
            )
            hint = "put the prompt in the step (or a manifest's overrides) instead of {prompt}"
            raise InputError(msg, hint=hint)
        text = await asyncio.to_thread(prompts.read_prompt, path)
        # named as it was dropped (the daemon reads it from processing/ under its job's id)
        origin = context.job.origin_name
        name = prompts.companion(PurePath(origin)).name if origin else path.name
        prompt = prompts.render_prompt(fields["prompt"], text)
        if len(prompt) > SPEC_PROMPT_LIMIT:
            msg = (
                f"the prompt made with {path} is {len(prompt):,} characters, over Venice's "
                f"limit of {SPEC_PROMPT_LIMIT:,}"
            )
            raise InputError(msg, hint=f"shorten {name}")
        fields["prompt"] = prompt
        context.record.params = {**context.record.params, "prompt": prompt}
        context.record.notes["prompt_file"] = name
        return fields


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
    """``/image/upscale``: ``scale`` 2 or 4 (a 4x of a large image is reduced by Venice to stay
    within 16,777,216 output pixels, at the 4x price) and ``creativity`` 0-0.02."""

    scale: UpscaleScale | None = None
    creativity: float | None = Field(default=None, ge=0, le=0.02)

    @field_validator("scale", mode="before")
    @classmethod
    def _two_or_four(cls, value: Any) -> Any:
        if value is None:
            return None
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and value in UPSCALE_SCALES:
            return int(value)
        msg = "must be 2 or 4: Venice upscales 2x or 4x"
        raise ValueError(msg)

    @model_validator(mode="before")
    @classmethod
    def _legacy_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            legacy = [name for name in LEGACY_UPSCALE_FIELDS if name in data]
            if legacy:
                msg = (
                    f"{', '.join(legacy)}: legacy upscale field(s) that Venice removed on "
                    "2026-07-09; the current fields are scale (2 or 4) and creativity "
                    "(0 to 0.02)"
                )
                raise ValueError(msg)
        return data


class _VeniceOperation(hotfolder.Operation):
    """What the four share: paid, fit, the client, and the result's record."""

    paid: ClassVar[bool] = True
    params: VeniceParams
    #: The most pixels the endpoint takes in: what ``fit = true`` scales an input into.
    max_input_pixels: ClassVar[int] = venice.MAX_PIXELS

    async def _fit(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        """``image`` scaled into range when ``fit = true``; either way, an image whose colour
        profile is not sRGB is noted in the record (``colour``): the client converts it to
        sRGB for the upload."""
        fitted = await self._fit_to_limits(context, image) if self.params.fit else image
        profile = await asyncio.to_thread(lambda: fitted.foreign_profile)
        if profile is not None:
            converted = f"{fitted.name} ({profile})"
            earlier = context.record.notes.get("colour")
            context.record.notes["colour"] = (
                f"{earlier}, {converted}"
                if earlier
                else f"converted to sRGB for the upload: {converted}"
            )
        return fitted

    async def _fit_to_limits(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        fit_cls = context.runtime.operation("fit-to-limits")
        fit = fit_cls(
            fit_cls.Params.model_validate(
                {
                    "min_pixels": venice.MIN_PIXELS,
                    "max_pixels": self.max_input_pixels,
                    "max_bytes": venice.MAX_UPLOAD_BYTES,
                }
            )
        )
        fitted = await call_component(fit, fit.run, context, image)
        assert isinstance(fitted, Artifact)
        return fitted

    def _finish(
        self, context: hotfolder.StepContext, image: Artifact, result: ImageResult
    ) -> Artifact:
        """Record the call (request id, cost, headers, the client's notes, the output size)
        and make the result the step's output."""
        h = result.headers
        record = context.record
        if h.request_id:
            record.request_ids.append(h.request_id)
        record.cost_usd = result.cost_usd
        found = {
            "endpoint": result.endpoint,
            "model": h.model_id,
            "balance_usd": h.balance_usd,
            "enhanced_prompt": h.enhanced_prompt,
            "content_violation": h.content_violation or None,
            "deprecation": h.deprecation,
            **result.notes,
            "size": f"{result.image.width}x{result.image.height}",
        }
        record.notes.update({k: v for k, v in found.items() if v is not None})
        # the result is not what the input's URL holds
        info = {k: v for k, v in image.info.items() if k not in ("source_url", "source_sha256")}
        if result.simulated:
            info["simulated"] = True
        return image.with_data(result.data, format=result.format, info=info)


class VeniceEdit(_VeniceOperation):
    """Edit the image as the prompt says (``POST /image/edit``).

    With ``quality`` set the request goes to ``/image/multi-edit`` with this one image: the
    spec's edit schema has no ``quality`` field and refuses unknown keys, multi-edit takes it.
    """

    name = "venice.edit"
    summary = "Venice: edit the image as the prompt says (paid)."

    class Params(EditParams):
        pass

    params: Params

    def request(self) -> EditRequest:
        return EditRequest(**self.params.request_fields())

    def estimate_usd(self, runtime: RuntimeView) -> float | None:
        return venice.estimate_usd(runtime, self.request())

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        client = get_client(context.runtime)
        request = EditRequest(**await self.params.sent_fields(context))
        image = await self._fit(context, image)
        result = await client.edit(image, request)
        return self._finish(context, image, result)


class VeniceMultiEdit(_VeniceOperation):
    """Combine the image with others as the prompt says (``POST /image/multi-edit``)."""

    name = "venice.multi-edit"
    summary = "Venice: combine the image with the `with` images as the prompt says (paid)."

    class Params(MultiEditParams):
        pass

    params: Params

    def request(self) -> MultiEditRequest:
        return MultiEditRequest(**self.params.request_fields())

    def estimate_usd(self, runtime: RuntimeView) -> float | None:
        return venice.estimate_usd(runtime, self.request(), images=1 + len(self.params.with_))

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        client = get_client(context.runtime)
        request = MultiEditRequest(**await self.params.sent_fields(context))
        refs = list(self.params.with_) or list(context.job.extra_refs)
        others = [await context.resolve(ref) for ref in refs]
        images = [await self._fit(context, a) for a in [image, *others]]
        result = await client.multi_edit(images, request)
        return self._finish(context, images[0], result)


class VeniceUpscale(_VeniceOperation):
    """Upscale the image 2x or 4x (``POST /image/upscale``)."""

    name = "venice.upscale"
    summary = "Venice: upscale 2x or 4x, within 16,777,216 output pixels (paid)."
    max_input_pixels = venice.MAX_UPSCALE_INPUT_PIXELS

    class Params(UpscaleParams):
        pass

    params: Params

    def request(self) -> UpscaleRequest:
        return UpscaleRequest(scale=self.params.scale, creativity=self.params.creativity)

    def estimate_usd(self, runtime: RuntimeView) -> float | None:
        return venice.estimate_usd(runtime, self.request())

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        client = get_client(context.runtime)
        image = await self._fit(context, image)
        result = await client.upscale(image, self.request())
        return self._finish(context, image, result)


class VeniceBackgroundRemove(_VeniceOperation):
    """Remove the background (``POST /image/background-remove``): a PNG with alpha."""

    name = "venice.background-remove"
    summary = "Venice: remove the background; a PNG with transparency (paid)."

    class Params(VeniceParams):
        pass

    params: Params

    def estimate_usd(self, runtime: RuntimeView) -> float | None:
        return venice.estimate_usd(runtime, BackgroundRemoveRequest())

    async def run(self, context: hotfolder.StepContext, image: Artifact) -> Artifact:
        client = get_client(context.runtime)
        image = await self._fit(context, image)
        result = await client.background_remove(image, BackgroundRemoveRequest())
        return self._finish(context, image, result)


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
