"""The contract tests' spec oracle (tests/contract/spec.py) reads the spec right and can fail."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.spec import SpecMismatch, load_spec, validate_request, validate_response

PNG_MAGIC = b"\x89PNG\r\n\x1a\n" + b"rest"


def test_bare_yaml_scalars_stay_strings() -> None:
    spec = load_spec()
    ratios = spec["components"]["schemas"]["EditImageRequest"]["properties"]["aspect_ratio"]["enum"]
    assert ratios == ["auto", "1:1", "3:2", "16:9", "21:9", "9:16", "2:3", "3:4", "4:5"]
    assert spec["info"]["version"] == "20260821.193530"
    schema = spec["components"]["schemas"]["EditImageRequest"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["prompt"]["maxLength"] == 32768


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        (
            "/image/edit",
            "application/json",
            {"image": "aGk=", "prompt": "x", "aspect_ratio": "16:9"},
        ),
        (
            "/image/edit",
            "multipart/form-data",
            {"image": b"...", "prompt": "x", "safe_mode": "false"},
        ),
        (
            "/image/multi-edit",
            "multipart/form-data",
            {"images": [b"a", b"b"], "prompt": "x", "extra": "ok"},
        ),
        (
            "/image/upscale",
            "multipart/form-data",
            {"image": ("a.png", b"...", "image/png"), "scale": "4"},
        ),
        (
            "/image/upscale",
            "application/json",
            {"image": "aGk=", "creativity": None, "enhance": True},
        ),
        (
            "/image/background-remove",
            "application/json",
            {"image_url": "https://example.com/a.png"},
        ),
    ],
)
def test_valid_requests_pass(path: str, content_type: str, body: dict[str, Any]) -> None:
    validate_request(path, content_type, body)


@pytest.mark.parametrize(
    ("path", "content_type", "body", "complaint"),
    [
        (
            "/image/edit",
            "application/json",
            {"image": "a", "prompt": "x", "strength": 1},
            "strength",
        ),
        ("/image/edit", "application/json", {"image": "a"}, "prompt"),
        (
            "/image/edit",
            "application/json",
            {"image": "a", "prompt": "x", "aspect_ratio": "5:4"},
            "5:4",
        ),
        (
            "/image/edit",
            "multipart/form-data",
            {"image": b"a", "prompt": "x", "safe_mode": "yes"},
            "boolean",
        ),
        (
            "/image/multi-edit",
            "application/json",
            {"images": ["a"], "prompt": "x", "model": "m"},
            "model",
        ),
        ("/image/multi-edit", "multipart/form-data", {"images": [], "prompt": "x"}, "non-empty"),
        ("/image/upscale", "multipart/form-data", {"image": b"a", "scale": "8"}, "maximum"),
        ("/image/edit", "text/plain", {"image": "a", "prompt": "x"}, "text/plain"),
    ],
)
def test_invalid_requests_fail(
    path: str, content_type: str, body: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(SpecMismatch, match=complaint):
        validate_request(path, content_type, body)


def test_nullable_becomes_json_schema_null() -> None:
    body = {
        "canConsume": True,
        "consumptionCurrency": None,
        "balances": {"diem": None, "usd": 1.5},
        "diemEpochAllocation": 0,
    }
    validate_response("/billing/balance", 200, "application/json", body)
    with pytest.raises(SpecMismatch, match="diem"):
        validate_response(
            "/billing/balance",
            200,
            "application/json",
            {**body, "balances": {"diem": "1", "usd": 1}},
        )
    with pytest.raises(SpecMismatch, match="surplus"):
        validate_response("/billing/balance", 200, "application/json", {**body, "surplus": 1})


def test_responses_must_be_declared() -> None:
    validate_response(
        "/api/v1/image/edit", 400, "application/json; charset=utf-8", b'{"error": "x"}'
    )
    with pytest.raises(SpecMismatch, match="not declared"):
        validate_response("/image/edit", 413, "application/json", {"error": "x"})
    validate_response(
        "/image/edit",
        413,
        "application/json",
        {"error": "x", "code": "PAYLOAD_TOO_LARGE"},
        declared_only=False,
    )
    with pytest.raises(SpecMismatch, match="code"):
        validate_response(
            "/image/edit", 413, "application/json", {"error": "x"}, declared_only=False
        )
    with pytest.raises(SpecMismatch, match="error"):
        validate_response("/image/edit", 400, "application/json", {"details": {}})
    with pytest.raises(SpecMismatch, match="content type"):
        validate_response("/image/upscale", 200, "image/jpeg", b"\xff\xd8\xff")


def test_image_bodies_and_headers_are_checked() -> None:
    validate_response(
        "/image/edit",
        200,
        "image/png",
        PNG_MAGIC,
        headers={"x-venice-is-content-violation": "false"},
    )
    with pytest.raises(SpecMismatch, match="not a image/png"):
        validate_response("/image/edit", 200, "image/png", b"GIF89a")
    with pytest.raises(SpecMismatch, match="x-venice-deprecated"):
        validate_response(
            "/image/edit", 200, "image/png", PNG_MAGIC, headers={"x-venice-deprecated": "false"}
        )
