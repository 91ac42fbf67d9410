"""Request checks for the four image endpoints, as Venice's zod schemas make them.

Each ``check_*`` function takes a parsed :class:`~hotfolder_sandbox.forms.Form` and
returns a job to run, or raises :class:`ApiError` (400 with a ``DetailedError`` body). What
is strict and what is lenient follows ``CONTRACT.md``: unknown keys are refused on edit (JSON
and multipart), multi-edit JSON and background-remove; upscale (whose current schema is not
strict, so a ``model`` field is ignored too) and the multi-edit multipart form ignore them.
Multipart text values are coerced: ``"true"``/``"false"`` and numbers.

Image inputs follow the spec's forms: ``data:`` URLs only in multi-edit JSON, http(s) URLs in
edit's ``image``, multi-edit's ``images`` and background-remove's ``image_url``. Any other
form in an image field is a 400 that names the forms the field takes.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger

from hotfolder_sandbox.catalog import (
    BACKGROUND_MODEL,
    DEFAULT_EDIT_MODEL,
    UPSCALE_MODEL,
    Model,
    SandboxCatalog,
)
from hotfolder_sandbox.config import SandboxConfig
from hotfolder_sandbox.errors import ApiError, Issue, image_error, invalid_request
from hotfolder_sandbox.forms import Form, Upload
from hotfolder_sandbox.render import OutputFormat

__all__ = [
    "BackgroundJob",
    "EditJob",
    "ImageRef",
    "UpscaleJob",
    "check_background_remove",
    "check_edit",
    "check_multi_edit",
    "check_upscale",
]

ASPECT_RATIOS = ("auto", "1:1", "3:2", "16:9", "21:9", "9:16", "2:3", "3:4", "4:5")
#: The spec's enum plus ``jpg``, which its description accepts.
OUTPUT_FORMATS: dict[str, OutputFormat] = {
    "jpeg": "jpeg",
    "png": "png",
    "webp": "webp",
    "jpg": "jpeg",
}
QUALITIES = ("low", "medium", "high")
MAX_PROMPT = 32768
CREATIVITY_RANGE = (0.0, 0.02)
_CORRUPTED = "The image file is corrupted or unreadable"


@dataclass(frozen=True)
class ImageRef:
    """An input image: its bytes, or the http(s) URL to fetch them from."""

    field: str
    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class EditJob:
    """A checked edit or multi-edit request."""

    model: Model
    images: tuple[ImageRef, ...]
    prompt: str
    aspect_ratio: str
    resolution: str
    output_format: OutputFormat
    quality: str | None
    enhance_prompt: bool


@dataclass(frozen=True)
class UpscaleJob:
    model: Model
    image: ImageRef
    scale: float
    creativity: float


@dataclass(frozen=True)
class BackgroundJob:
    model: Model
    image: ImageRef


@dataclass(frozen=True)
class _Field:
    kind: Literal["string", "enum", "boolean", "number", "image", "images"]
    options: tuple[str, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False


_STRING_ID = _Field("string", min_length=1)
_BOOL = _Field("boolean")
_EDIT_COMMON: dict[str, _Field] = {
    "prompt": _Field("string", min_length=1, max_length=MAX_PROMPT),
    "aspect_ratio": _Field("enum", ASPECT_RATIOS),
    "resolution": _Field("string", min_length=1, max_length=10),
    "output_format": _Field("enum", tuple(OUTPUT_FORMATS)),
    "safe_mode": _BOOL,
    "enhance_prompt": _BOOL,
    "disable_prompt_optimization_thinking": _BOOL,
}
_EDIT = {"image": _Field("image"), "model": _STRING_ID, "modelId": _STRING_ID, **_EDIT_COMMON}
_QUALITY = _Field("enum", QUALITIES)
_MULTI_EDIT = {
    "images": _Field("images"),
    "modelId": _STRING_ID,
    "quality": _QUALITY,
    **_EDIT_COMMON,
}
_UPSCALE = {
    "image": _Field("image"),
    "scale": _Field("number", minimum=2, maximum=4),
    "creativity": _Field("number", nullable=True),
}
_BACKGROUND = {"image": _Field("image"), "image_url": _Field("string", min_length=1)}


def _coerce(value: Any, spec: _Field, multipart: bool) -> Any:
    """Multipart text into the field's type, as the API's form handling does."""
    if not multipart or not isinstance(value, str):
        return value
    if spec.kind == "boolean" and value in ("true", "false"):
        return value == "true"
    if spec.kind == "number":
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _check_value(name: str, value: Any, spec: _Field, multipart: bool) -> list[Issue]:
    """Issues with one provided value (already coerced)."""
    kind = spec.kind
    if value is None and spec.nullable:
        return []
    if kind in ("string", "enum"):
        if not isinstance(value, str):
            return [Issue.wrong_type(name, "string", value)]
        if kind == "enum" and value not in spec.options:
            return [Issue.bad_enum(name, spec.options, value)]
        if spec.min_length is not None and len(value) < spec.min_length:
            return [Issue.too_small(name, "string", spec.min_length)]
        if spec.max_length is not None and len(value) > spec.max_length:
            return [Issue.too_big(name, "string", spec.max_length)]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [Issue.wrong_type(name, "boolean", value)]
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return [Issue.wrong_type(name, "number", value)]
        if spec.minimum is not None and value < spec.minimum:
            return [Issue.too_small(name, "number", spec.minimum)]
        if spec.maximum is not None and value > spec.maximum:
            return [Issue.too_big(name, "number", spec.maximum)]
        return []
    if kind == "image":
        ok = isinstance(value, str) or (multipart and isinstance(value, Upload))
        return [] if ok else [Issue.wrong_type(name, "string", value)]
    items = value
    if not isinstance(items, list):
        return [Issue.wrong_type(name, "array", value)]
    if not items:
        return [Issue.too_small(name, "array", 1)]
    if multipart:
        files_only = "Only file uploads are supported with multipart/form-data"
        return [
            Issue.custom((name, index), files_only)
            for index, item in enumerate(items)
            if not isinstance(item, Upload)
        ]
    return [
        Issue.wrong_type((name, index), "string", item)
        for index, item in enumerate(items)
        if not isinstance(item, str)
    ]


def _fields(
    form: Form, fields: Mapping[str, _Field], *, strict: bool, required: tuple[str, ...]
) -> dict[str, Any]:
    """The provided, known values, coerced and checked; raises 400 listing every issue."""
    if not isinstance(form.payload, dict):
        raise invalid_request(
            [Issue((), "invalid_type", "Expected object", {"expected": "object"})]
        )
    multipart = form.kind == "multipart"
    issues: list[Issue] = []
    unknown = sorted(set(form.payload) - set(fields))
    if unknown and strict:
        issues.append(Issue.unrecognized(unknown))
    elif unknown:
        logger.debug("sandbox: ignoring unknown field(s) {}", ", ".join(unknown))
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in form.payload:
            if name in required:
                issues.append(Issue.required(name, "array" if spec.kind == "images" else "string"))
            continue
        value = _coerce(form.payload[name], spec, multipart)
        if spec.kind == "images" and multipart and not isinstance(value, list):
            value = [value]
        problems = _check_value(name, value, spec, multipart)
        issues.extend(problems)
        if not problems:
            values[name] = value
    if issues:
        raise invalid_request(issues)
    return values


def _invalid_model(model_id: object, name: str) -> ApiError:
    message = (
        f"Invalid model id: {model_id!r}. List the models with GET /api/v1/models?type=inpaint."
    )
    return invalid_request(
        [Issue.custom(name, message)], error="Invalid model specified", code="INVALID_MODEL"
    )


def _no_model_field(form: Form, endpoint: str) -> None:
    if isinstance(form.payload, dict) and "model" in form.payload:
        message = f"Invalid model id: {endpoint} takes no model field; remove it."
        raise invalid_request(
            [Issue.custom("model", message)], error="Invalid model id", code="INVALID_MODEL"
        )


_DATA_URLS_ONLY = "data: URLs are accepted only by /image/multi-edit"
_RAW_BASE64 = "raw base64 (without the 'data:image/...;base64,' prefix)"
#: What each image field that takes no ``data:`` URL does take, per endpoint.
_TAKES = {
    ("/image/edit", "image"): f"{_RAW_BASE64}, an http(s) URL or a file upload",
    ("/image/upscale", "image"): f"{_RAW_BASE64} or a file upload",
    ("/image/background-remove", "image"): (
        f"{_RAW_BASE64} or a file upload; send an http(s) URL in image_url instead"
    ),
    ("/image/background-remove", "image_url"): (
        f"an http(s) URL; send the image itself as {_RAW_BASE64} or a file upload in image"
    ),
}


def _wrong_form(field: str, endpoint: str, problem: str) -> ApiError:
    """A 400 for an image input in a form its field does not take, naming the forms it does.

    The code is ``CORRUPTED_IMAGE``, as the API's own base64 decoding would fail on it.
    """
    message = f"{problem}; {field} on {endpoint} takes {_TAKES[endpoint, field]}"
    return invalid_request([Issue.custom(field, message)], error=problem, code="CORRUPTED_IMAGE")


def _image_ref(
    field: str, value: str | Upload, *, endpoint: str, urls: bool, data_urls: bool
) -> ImageRef:
    """Bytes for a file or a base64 string, or the URL to fetch."""
    if isinstance(value, Upload):
        return ImageRef(field, data=value.data)
    text = value.strip()
    scheme = text[:8].lower()
    if scheme.startswith(("http://", "https://")):
        if urls:
            return ImageRef(field, url=text)
        raise _wrong_form(field, endpoint, f"{endpoint} takes no image URL in {field}")
    if scheme.startswith("data:"):
        if not data_urls:
            raise _wrong_form(field, endpoint, _DATA_URLS_ONLY)
        header, _, text = text.partition(",")
        if not header.lower().endswith(";base64"):
            message = (
                f"{_CORRUPTED}: a data: URL must carry base64, as in data:image/png;base64,..."
            )
            raise image_error(400, "CORRUPTED_IMAGE", message, field)
    try:
        return ImageRef(field, data=base64.b64decode("".join(text.split()), validate=True))
    except (binascii.Error, ValueError) as exc:
        message = f"{_CORRUPTED}: it is not valid base64"
        raise image_error(400, "CORRUPTED_IMAGE", message, field) from exc


def _constraint_issues(
    model: Model, values: Mapping[str, Any], config: SandboxConfig
) -> list[Issue]:
    if not config.enforce_model_constraints:
        return []
    issues: list[Issue] = []
    limit = model.prompt_limit
    if limit is not None and len(values["prompt"]) > limit:
        issues.append(Issue.too_big("prompt", "string", limit))
    ratio = values.get("aspect_ratio")
    if ratio is not None and model.aspect_ratios is not None and ratio not in model.aspect_ratios:
        issues.append(Issue.bad_enum("aspect_ratio", model.aspect_ratios, ratio))
    resolution = values.get("resolution")
    if resolution is not None and resolution not in model.resolutions:
        issues.append(Issue.bad_enum("resolution", model.resolutions, resolution))
    quality = values.get("quality")
    if quality is not None and model.qualities and quality not in model.qualities:
        issues.append(Issue.bad_enum("quality", model.qualities, quality))
    return issues


def _edit_job(model: Model, images: tuple[ImageRef, ...], values: Mapping[str, Any]) -> EditJob:
    resolution = values.get("resolution", model.default_resolution)
    output = values.get("output_format") or ("png" if resolution == "1K" else "jpeg")
    quality = values.get("quality", model.default_quality) if model.qualities else None
    return EditJob(
        model=model,
        images=images,
        prompt=values["prompt"],
        aspect_ratio=values.get("aspect_ratio", "auto"),
        resolution=resolution,
        output_format=OUTPUT_FORMATS[output],
        quality=quality,
        enhance_prompt=bool(values.get("enhance_prompt", False)),
    )


def check_edit(form: Form, catalog: SandboxCatalog, config: SandboxConfig) -> EditJob:
    """``POST /image/edit``: ``model`` (default firered-image-edit) or the alias ``modelId``."""
    payload = form.payload if isinstance(form.payload, dict) else {}
    named = payload.get("model", payload.get("modelId", DEFAULT_EDIT_MODEL))
    chosen = catalog.get(named) if isinstance(named, str) else None
    # quality is missing from the strict schema, but the docs accept it where the model has it
    fields = {**_EDIT, "quality": _QUALITY} if chosen and chosen.qualities else _EDIT
    values = _fields(form, fields, strict=True, required=("image", "prompt"))
    field = "model" if "model" in values else "modelId"
    if chosen is None or chosen.type != "inpaint":
        raise _invalid_model(named, field)
    issues = _constraint_issues(chosen, values, config)
    if issues:
        raise invalid_request(issues)
    image = _image_ref("image", values["image"], endpoint="/image/edit", urls=True, data_urls=False)
    return _edit_job(chosen, (image,), values)


def check_multi_edit(form: Form, catalog: SandboxCatalog, config: SandboxConfig) -> EditJob:
    """``POST /image/multi-edit``: ``modelId`` only; JSON strict, multipart lenient."""
    multipart = form.kind == "multipart"
    values = _fields(form, _MULTI_EDIT, strict=not multipart, required=("prompt", "images"))
    named = values.get("modelId", DEFAULT_EDIT_MODEL)
    model = catalog.get(named)
    if model is None or model.type != "inpaint" or not model.combine_images:
        raise _invalid_model(named, "modelId")
    issues = _constraint_issues(model, values, config)
    if len(values["images"]) > model.max_input_images:
        issues.append(Issue.too_big("images", "array", model.max_input_images))
    if issues:
        raise invalid_request(issues)
    images = tuple(
        _image_ref("images", item, endpoint="/image/multi-edit", urls=True, data_urls=True)
        for item in values["images"]
    )
    return _edit_job(model, images, values)


def check_upscale(form: Form, catalog: SandboxCatalog) -> UpscaleJob:
    """``POST /image/upscale``: ``image``, ``scale`` 2-4, ``creativity`` clamped; lenient.

    The current schema has no ``model`` field and is not strict, so a ``model`` (which the
    official CLI sends) is ignored like any unknown key; the one upscale model is used.
    """
    values = _fields(form, _UPSCALE, strict=False, required=("image",))
    creativity = values.get("creativity")
    low, high = CREATIVITY_RANGE
    creativity = 0.01 if creativity is None else min(high, max(low, float(creativity)))
    image = _image_ref(
        "image", values["image"], endpoint="/image/upscale", urls=False, data_urls=False
    )
    scale = float(values.get("scale", 2))
    return UpscaleJob(catalog.require(UPSCALE_MODEL), image, scale, creativity)


def check_background_remove(form: Form, catalog: SandboxCatalog) -> BackgroundJob:
    """``POST /image/background-remove``: ``image`` (file/base64) or ``image_url``; strict."""
    _no_model_field(form, "/image/background-remove")
    values = _fields(form, _BACKGROUND, strict=True, required=())
    model = catalog.require(BACKGROUND_MODEL)
    endpoint = "/image/background-remove"
    if "image" in values:
        image = _image_ref("image", values["image"], endpoint=endpoint, urls=False, data_urls=False)
        return BackgroundJob(model, image)
    url = values.get("image_url")
    if url is None:
        raise invalid_request([Issue.custom(None, "Provide either image or image_url")])
    if url.strip()[:5].lower() == "data:":
        error = _wrong_form("image_url", endpoint, _DATA_URLS_ONLY)
        raise error
    if not url.startswith(("http://", "https://")):
        issue = Issue(("image_url",), "invalid_string", "Invalid url", {"validation": "url"})
        raise invalid_request([issue])
    return BackgroundJob(model, ImageRef("image_url", url=url))
