"""The sandbox's model list: ``models.json``, served by ``GET /models`` and used for checks.

``models.json`` holds Venice's edit (``inpaint``), ``upscale`` and background-removal models
with their real prices; its ``_source`` names where they come from and ``_assumptions`` lists
the constraint values nobody has published (they follow the spec's schema and examples).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["MODEL_TYPES", "Model", "SandboxCatalog", "load_catalog"]

#: The ``type`` query values ``GET /models`` accepts.
MODEL_TYPES = (
    "asr", "embedding", "image", "music", "text", "tts", "upscale", "inpaint", "video", "all",
    "code",
)  # fmt: skip
DEFAULT_EDIT_MODEL = "firered-image-edit"
UPSCALE_MODEL = "upscaler"
BACKGROUND_MODEL = "bria-bg-remover"
_DEFAULT_MAX_INPUT_IMAGES = 3


@dataclass(frozen=True)
class Model:
    """One entry of the list, with the parts the sandbox acts on pulled out."""

    id: str
    type: str
    name: str
    constraints: Mapping[str, Any]
    pricing: Mapping[str, Any]
    deprecation: Mapping[str, Any] | None
    raw: Mapping[str, Any]

    @property
    def combine_images(self) -> bool:
        return bool(self.constraints.get("combineImages", False))

    @property
    def max_input_images(self) -> int:
        """``maxInputImages``; absent means 3, or 1 when the model cannot combine images."""
        default = _DEFAULT_MAX_INPUT_IMAGES if self.combine_images else 1
        return int(self.constraints.get("maxInputImages", default))

    @property
    def prompt_limit(self) -> int | None:
        limit = self.constraints.get("promptCharacterLimit")
        return int(limit) if limit is not None else None

    @property
    def aspect_ratios(self) -> tuple[str, ...] | None:
        ratios = self.constraints.get("aspectRatios")
        return tuple(ratios) if ratios is not None else None

    @property
    def resolutions(self) -> tuple[str, ...]:
        """Resolution tiers; a model without the field offers only the default ``1K``."""
        return tuple(self.constraints.get("resolutions", ("1K",)))

    @property
    def default_resolution(self) -> str:
        return str(self.constraints.get("defaultResolution", "1K"))

    @property
    def qualities(self) -> tuple[str, ...]:
        return tuple(self.constraints.get("qualities", ()))

    @property
    def default_quality(self) -> str | None:
        quality = self.constraints.get("defaultQuality")
        return str(quality) if quality is not None else None

    @property
    def single_image_aspect_ratio(self) -> bool:
        return bool(self.constraints.get("singleImageAspectRatio", True))


@dataclass(frozen=True)
class SandboxCatalog:
    """The models by id, in file order."""

    models: tuple[Model, ...]

    def get(self, model_id: str) -> Model | None:
        """The model with exactly this id (ids are case-sensitive), or None."""
        return next((model for model in self.models if model.id == model_id), None)

    def require(self, model_id: str) -> Model:
        model = self.get(model_id)
        if model is None:
            msg = f"model {model_id!r} is missing from the sandbox's models.json"
            raise LookupError(msg)
        return model

    def listing(self, model_type: str) -> dict[str, Any]:
        """The ``GET /models?type=`` body."""
        data = [dict(model.raw) for model in self.models if model_type in ("all", model.type)]
        return {"object": "list", "type": model_type, "data": data}


def _model(raw: Mapping[str, Any]) -> Model:
    spec = raw["model_spec"]
    return Model(
        id=raw["id"],
        type=raw["type"],
        name=spec["name"],
        constraints=spec.get("constraints", {}),
        pricing=spec.get("pricing", {}),
        deprecation=spec.get("deprecation"),
        raw=raw,
    )


@cache
def load_catalog() -> SandboxCatalog:
    """The packaged ``models.json``, parsed once."""
    text = resources.files(__package__).joinpath("models.json").read_text(encoding="utf-8")
    return SandboxCatalog(tuple(_model(raw) for raw in json.loads(text)["models"]))
