"""The Venice sandbox, driven over real HTTP, answers as Venice's OpenAPI spec declares.

Each test sends requests to a sandbox on loopback and checks every answer against the spec:
the status is one the operation declares, the content type is declared for that status, JSON
bodies match the declared schema, declared headers match their schemas; and the decoded
images are what the request asked for. Size errors are declared 400s by default; the opt-in
413 and 422 (``max_bytes_status``, ``max_pixels_status``) are the documented exceptions,
checked against the spec's global ``PayloadTooLargeError`` and ``StandardError``.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, SandboxHandle, start_sandbox
from tests.contract.spec import validate_request, validate_response, validate_schema

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
LOCKOUT_MESSAGE = (
    "Too many failed attempts (> 20) resulting in a non-success status code. "
    "Please wait 30s and try again."
)


def _read(name: str) -> bytes:
    return (CORPUS / "photos" / name).read_bytes()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _open(response: httpx.Response) -> Image.Image:
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


@pytest.fixture(scope="module")
def chelsea() -> bytes:
    return _read("chelsea.png")


@pytest.fixture(scope="module")
def coffee() -> bytes:
    return _read("coffee.png")


@pytest.fixture(scope="module")
def small_png(chelsea: bytes) -> bytes:
    """A 256x256 crop: exactly the minimum pixel count, cheap to send and render."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(chelsea)).crop((100, 20, 356, 276)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(SandboxConfig()) as handle:
        yield handle


def _client(handle: SandboxHandle, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or uuid.uuid4().hex}"}
    return httpx.Client(base_url=handle.base_url, headers=headers, timeout=30)


@pytest.fixture
def client(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """A client with its own API key, so rate limits and lockouts do not leak across tests."""
    with _client(sandbox) as http:
        yield http


def check(response: httpx.Response, path: str, *, declared_only: bool = True) -> None:
    validate_response(
        path,
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
        headers=response.headers,
        declared_only=declared_only,
    )


def post_json(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    response = client.post(path, json=body)
    check(response, path)
    return response


# --- success -------------------------------------------------------------------------------


def test_edit_json_defaults_to_png_at_1k_with_the_documented_headers(
    client: httpx.Client, chelsea: bytes
) -> None:
    body = {"image": _b64(chelsea), "prompt": "make it a watercolour"}
    validate_request("/image/edit", "application/json", body)
    response = post_json(client, "/image/edit", body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = _open(response)
    assert image.format == "PNG"
    assert max(image.size) == 1024
    assert image.info["hotfolder-sandbox"] == "simulated"
    assert response.headers["x-simulated"] == "true"
    assert response.headers["x-venice-model-id"] == "firered-image-edit"
    assert response.headers["x-venice-model-name"] == "FireRed Edit"
    assert response.headers["x-venice-is-content-violation"] == "false"
    assert "x-venice-enhanced-prompt" not in response.headers
    assert response.headers["cf-ray"]
    assert float(response.headers["x-venice-balance-usd"]) > 0


@pytest.mark.parametrize(
    ("extra", "content_type", "pil_format", "long_side"),
    [
        ({"output_format": "jpeg"}, "image/jpeg", "JPEG", 1024),
        ({"output_format": "webp"}, "image/webp", "WEBP", 1024),
        ({"model": "nano-banana-2-edit", "resolution": "2K"}, "image/jpeg", "JPEG", 2048),
        (
            {"model": "gpt-image-2-edit", "resolution": "2K", "output_format": "png"},
            "image/png",
            "PNG",
            2048,
        ),
    ],
)
def test_edit_honours_output_format_and_resolution(
    client: httpx.Client,
    small_png: bytes,
    extra: dict[str, str],
    content_type: str,
    pil_format: str,
    long_side: int,
) -> None:
    body = {"image": _b64(small_png), "prompt": "film look", **extra}
    validate_request("/image/edit", "application/json", body)
    response = post_json(client, "/image/edit", body)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    image = _open(response)
    assert image.format == pil_format
    assert max(image.size) == long_side


def test_edit_multipart_coerces_form_strings_and_crops_to_the_aspect_ratio(
    client: httpx.Client, chelsea: bytes
) -> None:
    fields = {
        "prompt": "golden hour",
        "aspect_ratio": "1:1",
        "safe_mode": "false",
        "enhance_prompt": "true",
    }
    validate_request("/image/edit", "multipart/form-data", {**fields, "image": chelsea})
    response = client.post(
        "/image/edit", data=fields, files={"image": ("chelsea.png", chelsea, "image/png")}
    )
    check(response, "/image/edit")
    assert response.status_code == 200
    assert _open(response).size == (1024, 1024)
    assert unquote(response.headers["x-venice-enhanced-prompt"]).startswith("golden hour")


def test_multi_edit_json_and_multipart_blend_the_layers(
    client: httpx.Client, chelsea: bytes, coffee: bytes
) -> None:
    body = {"images": [_b64(chelsea), "data:image/png;base64," + _b64(coffee)], "prompt": "merge"}
    validate_request("/image/multi-edit", "application/json", body)
    as_json = post_json(client, "/image/multi-edit", body)
    files = [
        ("images", ("a.png", chelsea, "image/png")),
        ("images", ("b.png", coffee, "image/png")),
    ]
    validate_request(
        "/image/multi-edit", "multipart/form-data", {"images": [chelsea, coffee], "prompt": "merge"}
    )
    as_form = client.post("/image/multi-edit", data={"prompt": "merge"}, files=files)
    check(as_form, "/image/multi-edit")
    assert as_json.status_code == as_form.status_code == 200
    assert as_json.content == as_form.content  # same inputs, same bytes
    assert "x-venice-model-id" not in as_json.headers
    single = post_json(client, "/image/multi-edit", {"images": [_b64(chelsea)], "prompt": "merge"})
    assert single.content != as_json.content  # the second image changed the output


@pytest.mark.parametrize("scale", [2, 4])
def test_upscale_multiplies_the_size_by_the_scale(
    client: httpx.Client, chelsea: bytes, scale: int
) -> None:
    validate_request(
        "/image/upscale", "multipart/form-data", {"image": chelsea, "scale": str(scale)}
    )
    response = client.post(
        "/image/upscale",
        data={"scale": str(scale)},
        files={"image": ("c.png", chelsea, "image/png")},
    )
    check(response, "/image/upscale")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert _open(response).size == (451 * scale, 300 * scale)


def test_background_remove_returns_rgba_with_a_real_alpha(
    client: httpx.Client, coffee: bytes
) -> None:
    body = {"image": _b64(coffee)}
    validate_request("/image/background-remove", "application/json", body)
    response = post_json(client, "/image/background-remove", body)
    assert response.status_code == 200
    image = _open(response)
    assert image.mode == "RGBA"
    assert image.size == (600, 400)
    alpha = image.getchannel("A").histogram()
    assert sum(alpha[:64]) > 0 and alpha[255] > 0  # background cleared, subject kept


@pytest.fixture(scope="module")
def photo_server() -> Iterator[str]:
    """The corpus photos over HTTP on loopback, for URL inputs."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(CORPUS / "photos")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/image/edit", {"image": "{url}", "prompt": "x"}),
        ("/image/multi-edit", {"images": ["{url}"], "prompt": "x"}),
        ("/image/background-remove", {"image_url": "{url}"}),
    ],
)
def test_image_urls_on_loopback_are_fetched(
    client: httpx.Client, photo_server: str, path: str, body: dict[str, Any]
) -> None:
    url = f"{photo_server}/coffee.png"
    filled = {
        key: [url] if isinstance(value, list) else url if value == "{url}" else value
        for key, value in body.items()
    }
    validate_request(path, "application/json", filled)
    response = post_json(client, path, filled)
    assert response.status_code == 200


def test_models_need_no_key_and_the_balance_follows_the_charges(
    sandbox: SandboxHandle, client: httpx.Client, small_png: bytes
) -> None:
    models = httpx.get(f"{sandbox.base_url}/models", params={"type": "inpaint"})
    check(models, "/models")
    ids = {model["id"] for model in models.json()["data"]}
    assert {"firered-image-edit", "gpt-image-2-edit"} <= ids
    before = client.get("/billing/balance")
    check(before, "/billing/balance")
    upscaled = client.post("/image/upscale", json={"image": _b64(small_png), "scale": 2})
    check(upscaled, "/image/upscale")
    after = client.get("/billing/balance")
    spent = before.json()["balances"]["usd"] - after.json()["balances"]["usd"]
    assert spent == pytest.approx(0.02)  # the upscaler's 2x price
    assert float(upscaled.headers["x-venice-balance-usd"]) == pytest.approx(
        before.json()["balances"]["usd"]
    )


# --- errors --------------------------------------------------------------------------------


def test_unknown_key_is_a_400_with_zod_details(client: httpx.Client, small_png: bytes) -> None:
    response = post_json(
        client, "/image/edit", {"image": _b64(small_png), "prompt": "x", "strength": 0.5}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Invalid request parameters"
    assert body["details"]["_errors"] == ["Unrecognized key(s) in object: 'strength'"]
    assert body["issues"][0]["code"] == "unrecognized_keys"


def test_missing_field_is_a_400_naming_the_field(client: httpx.Client, small_png: bytes) -> None:
    response = post_json(client, "/image/edit", {"image": _b64(small_png)})
    assert response.status_code == 400
    assert response.json()["details"]["prompt"] == {"_errors": ["Required"]}


def test_model_on_upscale_is_tolerated_as_the_schema_is_not_strict(
    client: httpx.Client, small_png: bytes
) -> None:
    body = {"image": _b64(small_png), "scale": 2, "model": "upscaler"}
    validate_request("/image/upscale", "application/json", body)
    response = post_json(client, "/image/upscale", body)
    assert response.status_code == 200
    assert _open(response).size == (512, 512)


def test_model_on_background_remove_is_an_invalid_model(
    client: httpx.Client, small_png: bytes
) -> None:
    response = post_json(
        client, "/image/background-remove", {"image": _b64(small_png), "model": "x"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_MODEL"


@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer"])
def test_missing_or_malformed_credentials_are_a_401(
    sandbox: SandboxHandle, small_png: bytes, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(
        f"{sandbox.base_url}/image/upscale", json={"image": _b64(small_png)}, headers=headers
    )
    check(response, "/image/upscale")
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication failed"}


def test_a_low_balance_is_a_402(small_png: bytes) -> None:
    with start_sandbox(SandboxConfig(balance_usd=0.01)) as poor, _client(poor) as http:
        response = post_json(http, "/image/upscale", {"image": _b64(small_png)})
        assert response.status_code == 402
        assert response.json()["code"] == "INSUFFICIENT_BALANCE"
        assert response.json()["error"].startswith("Insufficient USD or Diem balance")
        assert poor.stats()["paid_total"] == 0


def test_no_credentials_can_get_the_x402_discovery_402(small_png: bytes) -> None:
    with start_sandbox(SandboxConfig(x402_without_credentials=True)) as x402:
        response = httpx.post(f"{x402.base_url}/image/upscale", json={"image": _b64(small_png)})
    assert response.status_code == 402
    assert response.headers["payment-required"]
    # The spec's oneOf cannot hold here: the discovery body has "error", so it also matches
    # StandardError. Check it against its own schema instead.
    validate_schema(response.json(), "X402InferencePaymentRequired")
    assert response.json()["x402Version"] == 2


BIG = b"\x89PNG\r\n\x1a\n" + bytes(25_000_001)


def test_a_file_over_25_mb_is_a_declared_400(client: httpx.Client) -> None:
    response = client.post("/image/upscale", files={"image": ("big.png", BIG, "image/png")})
    check(response, "/image/upscale")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"] == "File exceeds the maximum allowed size of 25 MB."
    assert body["details"]["image"]["_errors"] == [body["error"]]


def test_a_file_over_25_mb_can_still_be_a_413() -> None:
    with (
        start_sandbox(SandboxConfig(max_bytes_status=413)) as legacy,
        _client(legacy) as http,
    ):
        response = http.post("/image/upscale", files={"image": ("big.png", BIG, "image/png")})
    check(response, "/image/upscale", declared_only=False)  # 413 is global, not per operation
    assert response.status_code == 413
    assert response.json() == {
        "code": "PAYLOAD_TOO_LARGE",
        "error": "File exceeds the maximum allowed size of 25 MB.",
    }


@pytest.mark.parametrize(("status", "declared"), [(400, True), (422, False)])
def test_too_many_pixels_is_a_declared_400_or_the_opt_in_422(
    chelsea: bytes, status: int, declared: bool
) -> None:
    config = SandboxConfig(max_pixels=100_000, max_pixels_status=status)
    with start_sandbox(config) as strict, _client(strict) as http:
        response = http.post("/image/edit", json={"image": _b64(chelsea), "prompt": "x"})
    check(response, "/image/edit", declared_only=declared)
    assert response.status_code == status
    assert response.json()["code"] == "IMAGE_TOO_LARGE"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/image/edit", {"prompt": "x"}),
        ("/image/upscale", {}),
        ("/image/background-remove", {}),
    ],
)
def test_a_data_url_outside_multi_edit_is_a_declared_400_naming_multi_edit(
    client: httpx.Client, small_png: bytes, path: str, body: dict[str, Any]
) -> None:
    response = post_json(
        client, path, {**body, "image": "data:image/png;base64," + _b64(small_png)}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "data: URLs are accepted only by /image/multi-edit"


def test_another_content_type_is_a_415(client: httpx.Client) -> None:
    response = client.post(
        "/image/edit", content=b"prompt=x", headers={"Content-Type": "text/plain"}
    )
    check(response, "/image/edit")
    assert response.status_code == 415


def test_the_21st_request_in_a_minute_is_a_429_with_rate_limit_headers(
    client: httpx.Client, small_png: bytes
) -> None:
    body = {"image": _b64(small_png), "scale": 2}
    remaining = [
        client.post("/image/upscale", json=body).headers["x-ratelimit-remaining-requests"]
        for _ in range(20)
    ]
    assert remaining[0] == "19" and remaining[-1] == "0"
    response = post_json(client, "/image/upscale", body)
    assert response.status_code == 429
    assert response.headers["x-ratelimit-limit-requests"] == "20"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    reset = int(float(response.headers["x-ratelimit-reset-requests"]))
    assert reset > 1_700_000_000  # a Unix timestamp, not seconds to wait
    assert int(response.headers["retry-after"]) >= 1


def test_more_than_20_failures_lock_the_key_out(client: httpx.Client, small_png: bytes) -> None:
    bad = {"image": _b64(small_png), "prompt": "x", "strength": 1}  # an unknown key: 400
    statuses = [client.post("/image/edit", json=bad).status_code for _ in range(21)]
    assert statuses[:20] == [400] * 20
    assert statuses[20] == 429  # over the rate limit: the 21st failure
    response = post_json(client, "/image/background-remove", {"image": _b64(small_png)})
    assert response.status_code == 429
    assert response.json() == {"error": LOCKOUT_MESSAGE}
    balance = client.get("/billing/balance")  # the lockout covers every route
    check(balance, "/billing/balance", declared_only=False)
    assert balance.status_code == 429


@pytest.mark.parametrize(("status", "code"), [(500, "UPSCALE_FAILED"), (503, "MODEL_AT_CAPACITY")])
def test_injected_faults_use_declared_statuses(small_png: bytes, status: int, code: str) -> None:
    with (
        start_sandbox(SandboxConfig(fault_rates={status: 1.0}, seed=1)) as faulty,
        _client(faulty) as http,
    ):
        response = post_json(http, "/image/upscale", {"image": _b64(small_png)})
        assert response.status_code == status
        assert response.json()["code"] == code
        assert faulty.stats()["paid_total"] == 0


def test_an_injected_reset_drops_the_connection(small_png: bytes) -> None:
    with start_sandbox(SandboxConfig(reset_rate=1.0)) as flaky, _client(flaky) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/image/upscale", json={"image": _b64(small_png)})
        assert flaky.stats()["connection_resets"] == 1
