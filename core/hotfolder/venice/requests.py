"""What a Venice image call asks for: one small frozen request type per endpoint.

An operation turns its step's parameters into a request and hands it, with the input image
(a :class:`hotfolder.Artifact`), to the client; the client does the rest of Venice's policy
(:mod:`hotfolder.venice.client`)::

    result = await client.edit(image, EditRequest(prompt="golden hour", resolution="2K"))
    result.cost_usd, result.notes

==========================  =====================================  ==========================
request                     client method                          endpoint
==========================  =====================================  ==========================
``EditRequest``             ``edit(image, request)``               ``/image/edit``; with
                                                                   ``quality``,
                                                                   ``/image/multi-edit``
``MultiEditRequest``        ``multi_edit(images, request)``        ``/image/multi-edit``
``UpscaleRequest``          ``upscale(image, request)``            ``/image/upscale``
``BackgroundRemoveRequest`` ``background_remove(image, request)``  ``/image/background-remove``
==========================  =====================================  ==========================

Field names are the spec's; a field left None is left out of the request, so Venice's default
applies. Both edit requests name their model ``model``: the client sends it as ``model`` to
``/image/edit`` and as ``modelId`` to ``/image/multi-edit``, which takes no other spelling.
The quality tiers are not in ``/image/edit``'s strict schema, so an edit with ``quality`` goes
to ``/image/multi-edit`` with its one image. An upscale is 2x or 4x: the spec's "Must be
either 2 or 4".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from hotfolder.venice.catalog import DEFAULT_EDIT_MODEL, UPSCALE_MODEL, ModelType
from hotfolder.venice.wire import EndpointName

__all__ = [
    "UPSCALE_SCALES",
    "BackgroundRemoveRequest",
    "EditRequest",
    "ImageRequest",
    "MultiEditRequest",
    "UpscaleRequest",
    "UpscaleScale",
]

UpscaleScale = Literal[2, 4]
#: The factors ``/image/upscale`` takes; 2 is its default.
UPSCALE_SCALES: tuple[UpscaleScale, ...] = (2, 4)


@dataclass(frozen=True, kw_only=True)
class _EditFields:
    """The fields edit and multi-edit share."""

    model_type: ClassVar[ModelType | None] = "inpaint"

    prompt: str
    model: str = DEFAULT_EDIT_MODEL
    aspect_ratio: str | None = None
    resolution: str | None = None
    output_format: str | None = None
    safe_mode: bool | None = None
    enhance_prompt: bool | None = None
    disable_prompt_optimization_thinking: bool | None = None
    #: A quality tier, for models that have them (``gpt-image-2-edit``).
    quality: str | None = None

    @property
    def model_id(self) -> str | None:
        """The model whose constraints and prices apply."""
        return self.model

    def wire_fields(self, endpoint: EndpointName) -> dict[str, Any]:
        """The fields set, under ``endpoint``'s names (the model as ``modelId`` on
        ``multi-edit``)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["modelId" if endpoint == "multi-edit" else "model"] = values.pop("model")
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class EditRequest(_EditFields):
    """``/image/edit``: the image changed as the prompt says."""


@dataclass(frozen=True, kw_only=True)
class MultiEditRequest(_EditFields):
    """``/image/multi-edit``: the first image changed with the others as the prompt says."""


@dataclass(frozen=True, kw_only=True)
class UpscaleRequest:
    """``/image/upscale``: ``scale`` 2 or 4 (None: Venice's default, 2) and ``creativity``
    0 to 0.02 (None: Venice's default, 0.01)."""

    model_type: ClassVar[ModelType | None] = "upscale"

    scale: UpscaleScale | None = None
    creativity: float | None = None

    def __post_init__(self) -> None:
        if self.scale is not None and self.scale not in UPSCALE_SCALES:
            msg = f"an upscale is 2x or 4x, not {self.scale}x"
            raise ValueError(msg)

    @property
    def model_id(self) -> str | None:
        """The one upscale model (the endpoint takes no model field)."""
        return UPSCALE_MODEL

    @property
    def factor(self) -> UpscaleScale:
        """The scale asked for, Venice's default filled in."""
        return self.scale or 2

    def wire_fields(self, endpoint: EndpointName) -> dict[str, Any]:
        values = {"scale": self.scale, "creativity": self.creativity}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class BackgroundRemoveRequest:
    """``/image/background-remove``: nothing to choose (a fixed model at a fixed price)."""

    model_type: ClassVar[ModelType | None] = None

    @property
    def model_id(self) -> str | None:
        return None

    def wire_fields(self, endpoint: EndpointName) -> dict[str, Any]:
        return {}


ImageRequest = EditRequest | MultiEditRequest | UpscaleRequest | BackgroundRemoveRequest
