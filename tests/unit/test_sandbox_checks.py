"""The sandbox's request checks: strictness, coercion, model rules and per-model constraints."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from hotfolder_sandbox.catalog import load_catalog
from hotfolder_sandbox.checks import (
    check_background_remove,
    check_edit,
    check_multi_edit,
    check_upscale,
)
from hotfolder_sandbox.config import SandboxConfig
from hotfolder_sandbox.errors import ApiError
from hotfolder_sandbox.forms import Form, Upload

PHOTOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "photos"
CATALOG = load_catalog()
CONFIG = SandboxConfig()
PNG = (PHOTOS / "chelsea.png").read_bytes()
B64 = base64.b64encode(PNG).decode()
UPLOAD = Upload("chelsea.png", "image/png", PNG)


def as_json(**fields: Any) -> Form:
    return Form("json", fields, 0)


def as_form(**fields: Any) -> Form:
    return Form("multipart", fields, 0)


def rejected(call: Any, *args: Any) -> dict[str, Any]:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value.body


def test_edit_defaults() -> None:
    job = check_edit(as_json(image=B64, prompt="warm it up"), CATALOG, CONFIG)
    assert job.model.id == "firered-image-edit"
    assert job.images[0].data == PNG
    assert (job.aspect_ratio, job.resolution, job.output_format) == ("auto", "1K", "png")
    assert job.quality is None and job.enhance_prompt is False


def test_edit_reports_every_issue_in_a_zod_tree() -> None:
    body = rejected(
        check_edit, as_json(aspect_ratio="5:4", safe_mode="no", extra=1), CATALOG, CONFIG
    )
    assert body["error"] == "Invalid request parameters"
    details = body["details"]
    assert details["_errors"] == ["Unrecognized key(s) in object: 'extra'"]
    assert details["image"]["_errors"] == ["Required"]
    assert details["prompt"]["_errors"] == ["Required"]
    assert details["safe_mode"]["_errors"] == ["Expected boolean, received string"]
    assert details["aspect_ratio"]["_errors"][0].startswith("Invalid enum value. Expected 'auto'")
    assert {issue["code"] for issue in body["issues"]} == {
        "unrecognized_keys",
        "invalid_type",
        "invalid_enum_value",
    }


def test_edit_multipart_is_strict_and_coerces_strings() -> None:
    form = as_form(image=UPLOAD, prompt="x", enhance_prompt="true", safe_mode="false")
    job = check_edit(form, CATALOG, CONFIG)
    assert job.enhance_prompt is True
    body = rejected(check_edit, as_form(image=UPLOAD, prompt="x", steps="20"), CATALOG, CONFIG)
    assert body["details"]["_errors"] == ["Unrecognized key(s) in object: 'steps'"]


def test_edit_model_alias_and_unknown_models() -> None:
    assert (
        check_edit(
            as_json(image=B64, prompt="x", modelId="qwen-image-2-edit"), CATALOG, CONFIG
        ).model.id
        == "qwen-image-2-edit"
    )
    both = as_json(image=B64, prompt="x", model="seedream-v4-edit", modelId="qwen-image-2-edit")
    assert check_edit(both, CATALOG, CONFIG).model.id == "seedream-v4-edit"
    for model in ("FireRed-Image-Edit", "upscaler", "no-such-model"):
        body = rejected(check_edit, as_json(image=B64, prompt="x", model=model), CATALOG, CONFIG)
        assert body["code"] == "INVALID_MODEL"
        assert "model" in body["details"]


def test_edit_quality_is_accepted_only_where_the_model_has_qualities() -> None:
    job = check_edit(
        as_json(image=B64, prompt="x", model="gpt-image-2-edit", quality="low"), CATALOG, CONFIG
    )
    assert job.quality == "low"
    assert (
        check_edit(
            as_json(image=B64, prompt="x", model="gpt-image-2-edit"), CATALOG, CONFIG
        ).quality
        == "high"
    )
    body = rejected(check_edit, as_json(image=B64, prompt="x", quality="low"), CATALOG, CONFIG)
    assert body["details"]["_errors"] == ["Unrecognized key(s) in object: 'quality'"]


def test_edit_output_format_follows_resolution_and_accepts_jpg() -> None:
    two_k = check_edit(
        as_json(image=B64, prompt="x", model="nano-banana-2-edit", resolution="2K"), CATALOG, CONFIG
    )
    assert two_k.output_format == "jpeg"
    jpg = check_edit(as_json(image=B64, prompt="x", output_format="jpg"), CATALOG, CONFIG)
    assert jpg.output_format == "jpeg"


def test_model_constraints_are_enforced_unless_turned_off() -> None:
    long_prompt = "x" * 1501
    body = rejected(check_edit, as_json(image=B64, prompt=long_prompt), CATALOG, CONFIG)
    assert body["details"]["prompt"]["_errors"] == ["String must contain at most 1500 character(s)"]
    body = rejected(check_edit, as_json(image=B64, prompt="x", resolution="4K"), CATALOG, CONFIG)
    assert "resolution" in body["details"]
    lax = SandboxConfig(enforce_model_constraints=False)
    assert (
        check_edit(as_json(image=B64, prompt=long_prompt, resolution="4K"), CATALOG, lax).prompt
        == long_prompt
    )
    body = rejected(check_edit, as_json(image=B64, prompt="x" * 32769), CATALOG, lax)
    assert body["details"]["prompt"]["_errors"] == [
        "String must contain at most 32768 character(s)"
    ]


DATA_URL = "data:image/png;base64," + B64
ONLY_MULTI_EDIT = "data: URLs are accepted only by /image/multi-edit"


def test_edit_takes_urls_but_not_data_urls() -> None:
    job = check_edit(as_json(image="https://example.com/a.png", prompt="x"), CATALOG, CONFIG)
    assert job.images[0].url == "https://example.com/a.png"
    upper = check_edit(as_json(image="HTTPS://example.com/a.png", prompt="x"), CATALOG, CONFIG)
    assert upper.images[0].url == "HTTPS://example.com/a.png"
    body = rejected(check_edit, as_json(image=DATA_URL, prompt="x"), CATALOG, CONFIG)
    assert body["code"] == "CORRUPTED_IMAGE"
    assert body["error"] == ONLY_MULTI_EDIT
    assert body["details"]["image"]["_errors"] == [
        f"{ONLY_MULTI_EDIT}; image on /image/edit takes raw base64 (without the "
        "'data:image/...;base64,' prefix), an http(s) URL or a file upload"
    ]


@pytest.mark.parametrize(
    ("fields", "field", "remedy"),
    [
        ({"image": DATA_URL}, "image", "or a file upload; send an http(s) URL in image_url"),
        ({"image": " DATA:image/png;base64," + B64}, "image", "raw base64"),
        ({"image_url": DATA_URL}, "image_url", "takes an http(s) URL; send the image itself"),
    ],
)
def test_background_remove_refuses_data_urls_naming_multi_edit(
    fields: dict[str, str], field: str, remedy: str
) -> None:
    body = rejected(check_background_remove, as_json(**fields), CATALOG)
    assert body["error"] == ONLY_MULTI_EDIT
    (detail,) = body["details"][field]["_errors"]
    assert detail.startswith(f"{ONLY_MULTI_EDIT}; {field} on /image/background-remove takes")
    assert remedy in detail


def test_background_remove_takes_urls_only_in_image_url() -> None:
    body = rejected(check_background_remove, as_json(image="https://example.com/a.png"), CATALOG)
    assert body["error"] == "/image/background-remove takes no image URL in image"
    assert "send an http(s) URL in image_url" in body["details"]["image"]["_errors"][0]


def test_multi_edit_json_is_strict_about_model() -> None:
    body = rejected(
        check_multi_edit,
        as_json(images=[B64], prompt="x", model="firered-image-edit"),
        CATALOG,
        CONFIG,
    )
    assert body["details"]["_errors"] == ["Unrecognized key(s) in object: 'model'"]


def test_multi_edit_form_is_lenient_but_files_only() -> None:
    job = check_multi_edit(
        as_form(images=[UPLOAD, UPLOAD], prompt="x", model="ignored"), CATALOG, CONFIG
    )
    assert len(job.images) == 2
    single = check_multi_edit(as_form(images=UPLOAD, prompt="x"), CATALOG, CONFIG)
    assert len(single.images) == 1
    body = rejected(check_multi_edit, as_form(images=[UPLOAD, B64], prompt="x"), CATALOG, CONFIG)
    assert body["details"]["images"]["1"]["_errors"] == [
        "Only file uploads are supported with multipart/form-data"
    ]
    body = rejected(check_multi_edit, as_json(images=[B64, 7], prompt="x"), CATALOG, CONFIG)
    assert body["issues"][0]["path"] == ["images", 1]


def test_multi_edit_images_count_follows_the_model() -> None:
    body = rejected(check_multi_edit, as_json(images=[], prompt="x"), CATALOG, CONFIG)
    assert body["details"]["images"]["_errors"] == ["Array must contain at least 1 element(s)"]
    body = rejected(check_multi_edit, as_json(images=[B64] * 4, prompt="x"), CATALOG, CONFIG)
    assert body["details"]["images"]["_errors"] == ["Array must contain at most 3 element(s)"]
    job = check_multi_edit(
        as_json(images=[B64] * 4, prompt="x", modelId="gpt-image-2-edit"), CATALOG, CONFIG
    )
    assert len(job.images) == 4
    body = rejected(
        check_multi_edit,
        as_json(images=[B64], prompt="x", modelId="luma-uni-1-edit"),
        CATALOG,
        CONFIG,
    )
    assert body["code"] == "INVALID_MODEL"


def test_multi_edit_takes_data_urls_and_links() -> None:
    job = check_multi_edit(
        as_json(images=[DATA_URL, "http://example.com/b.png"], prompt="x"),
        CATALOG,
        CONFIG,
    )
    assert job.images[0].data == PNG
    assert job.images[1].url == "http://example.com/b.png"


def test_multi_edit_data_urls_must_carry_base64() -> None:
    body = rejected(
        check_multi_edit, as_json(images=["data:image/png,%89PNG"], prompt="x"), CATALOG, CONFIG
    )
    assert body["code"] == "CORRUPTED_IMAGE"
    assert body["details"]["images"]["_errors"] == [
        "The image file is corrupted or unreadable: a data: URL must carry base64, "
        "as in data:image/png;base64,..."
    ]


def test_upscale_is_lenient_and_ignores_a_model() -> None:
    job = check_upscale(as_json(image=B64, enhance=True, replication=0.3), CATALOG)
    assert (job.scale, job.creativity) == (2.0, 0.01)
    for model in ("upscaler", "not-a-model", 7):
        job = check_upscale(as_json(image=B64, model=model, scale=4), CATALOG)
        assert (job.model.id, job.scale, job.image.data) == ("upscaler", 4.0, PNG)
    assert check_upscale(as_form(image=UPLOAD, model="upscaler"), CATALOG).model.id == "upscaler"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scale": 1}, "Number must be greater than or equal to 2"),
        ({"scale": 5}, "Number must be less than or equal to 4"),
        ({"scale": "2"}, "Expected number, received string"),
        ({"scale": float("nan")}, "Expected number, received nan"),
    ],
)
def test_upscale_scale_range(fields: dict[str, Any], message: str) -> None:
    body = rejected(check_upscale, as_json(image=B64, **fields), CATALOG)
    assert body["details"]["scale"]["_errors"] == [message]


def test_upscale_clamps_creativity_and_coerces_form_numbers() -> None:
    assert check_upscale(as_json(image=B64, creativity=0.5), CATALOG).creativity == 0.02
    assert check_upscale(as_json(image=B64, creativity=-1), CATALOG).creativity == 0.0
    assert check_upscale(as_json(image=B64, creativity=None), CATALOG).creativity == 0.01
    assert check_upscale(as_form(image=UPLOAD, scale="4"), CATALOG).scale == 4.0


def test_upscale_takes_no_url_and_no_data_url() -> None:
    body = rejected(check_upscale, as_json(image="https://example.com/a.png"), CATALOG)
    assert body["code"] == "CORRUPTED_IMAGE"
    assert body["error"] == "/image/upscale takes no image URL in image"
    body = rejected(check_upscale, as_json(image=DATA_URL), CATALOG)
    assert body["error"] == ONLY_MULTI_EDIT
    assert body["details"]["image"]["_errors"] == [
        f"{ONLY_MULTI_EDIT}; image on /image/upscale takes raw base64 (without the "
        "'data:image/...;base64,' prefix) or a file upload"
    ]


def test_background_remove_inputs() -> None:
    assert check_background_remove(as_json(image=B64), CATALOG).image.data == PNG
    by_url = check_background_remove(as_json(image_url="https://example.com/a.png"), CATALOG)
    assert by_url.image.url == "https://example.com/a.png"
    both = check_background_remove(
        as_json(image=B64, image_url="https://example.com/a.png"), CATALOG
    )
    assert both.image.data == PNG
    assert rejected(check_background_remove, as_json(), CATALOG)["details"]["_errors"]
    assert rejected(check_background_remove, as_json(image_url="a.png"), CATALOG)["details"][
        "image_url"
    ]
    assert (
        rejected(check_background_remove, as_json(model="bria-bg-remover", image=B64), CATALOG)[
            "code"
        ]
        == "INVALID_MODEL"
    )


@pytest.mark.parametrize("payload", [[], "text", 3])
def test_a_json_body_must_be_an_object(payload: Any) -> None:
    body = rejected(check_upscale, Form("json", payload, 0), CATALOG)
    assert body["issues"][0]["code"] == "invalid_type"


def test_invalid_base64_is_a_corrupted_image() -> None:
    body = rejected(check_edit, as_json(image="not base64!", prompt="x"), CATALOG, CONFIG)
    assert body["code"] == "CORRUPTED_IMAGE"
    assert body["details"]["image"]["_errors"]
