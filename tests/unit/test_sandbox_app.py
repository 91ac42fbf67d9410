"""The sandbox app in-process: gates, lockout, faults, admin routes, and hostile files."""

from __future__ import annotations

import base64
import functools
import http.server
import io
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from hotfolder_sandbox import SandboxConfig, SimulatedConnectionReset, create_app
from hotfolder_sandbox.state import SandboxState

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
PHOTOS, BAD = CORPUS / "photos", CORPUS / "bad"
CAT = (PHOTOS / "chelsea.png").read_bytes()
KEY = {"Authorization": "Bearer test-key"}
#: Files in bad/ that Pillow decodes to a usable image; Venice would accept them too.
DECODABLE_BAD = {"hopper_bad_exif.jpg"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class InProcess:
    """A blocking client that calls the app through ``httpx.ASGITransport``, no sockets."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.headers = httpx.Headers(KEY)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://sandbox/api/v1", headers=self.headers
            ) as client:
                return await client.request(method, url, **kwargs)

        return anyio.run(send)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


def client_for(config: SandboxConfig | None = None, clock: Clock | None = None) -> InProcess:
    app = create_app(config)
    if clock is not None:
        app.state.sandbox = SandboxState(config or SandboxConfig(), clock=clock)
    return InProcess(app)


def admin(client: InProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return client.request(method, f"http://sandbox/_sandbox{path}", **kwargs)


def upscale(client: InProcess, data: bytes = CAT, **fields: Any) -> httpx.Response:
    return client.post("/image/upscale", json={"image": base64.b64encode(data).decode(), **fields})


def edit_file(client: InProcess, path: Path) -> httpx.Response:
    files = {"image": (path.name, path.read_bytes(), "application/octet-stream")}
    return client.post("/image/edit", data={"prompt": "test"}, files=files)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow complains about hostile files
@pytest.mark.parametrize("path", sorted(BAD.iterdir()), ids=lambda p: p.name)
def test_bad_files_are_a_400_never_a_500(path: Path) -> None:
    response = edit_file(client_for(), path)
    if path.name in DECODABLE_BAD:
        assert response.status_code == 200
    else:
        assert response.status_code == 400, response.text
        assert response.json()["code"] in {"CORRUPTED_IMAGE", "IMAGE_TOO_SMALL", "IMAGE_TOO_LARGE"}


def test_a_decompression_bomb_is_image_too_large_without_decoding() -> None:
    response = edit_file(client_for(), BAD / "decompression_bomb.gif")
    assert response.status_code == 400
    assert response.json()["code"] == "IMAGE_TOO_LARGE"
    assert response.json()["details"]["image"]["_errors"]
    legacy = edit_file(
        client_for(SandboxConfig(max_pixels_status=422)), BAD / "decompression_bomb.gif"
    )
    assert legacy.status_code == 422
    assert legacy.json()["code"] == "IMAGE_TOO_LARGE"


@pytest.mark.parametrize("path", sorted(PHOTOS.iterdir()), ids=lambda p: p.name)
def test_photos_are_edited_unless_below_the_pixel_minimum(path: Path) -> None:
    response = edit_file(client_for(), path)
    with Image.open(path) as original:
        small = original.width * original.height < 65_536
    if small:
        assert response.status_code == 400
        assert response.json()["code"] == "IMAGE_TOO_SMALL"
    else:
        assert response.status_code == 200, response.text
        assert Image.open(io.BytesIO(response.content)).format == "PNG"


TOO_MANY_PIXELS = (
    "Image dimensions exceed the maximum allowed: 451x300 is 135,300 pixels, the maximum is 100,000"
)


def test_too_many_pixels_is_a_400_detailed_error_by_default() -> None:
    response = upscale(client_for(SandboxConfig(max_pixels=100_000)))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == TOO_MANY_PIXELS
    assert body["code"] == "IMAGE_TOO_LARGE"
    assert body["details"] == {"_errors": [], "image": {"_errors": [TOO_MANY_PIXELS]}}


def test_too_many_pixels_can_still_be_the_error_tables_422() -> None:
    response = upscale(client_for(SandboxConfig(max_pixels=100_000, max_pixels_status=422)))
    assert response.status_code == 422
    assert response.json() == {"error": TOO_MANY_PIXELS, "code": "IMAGE_TOO_LARGE"}


def test_byte_limits_are_a_400_detailed_error_by_default() -> None:
    response = upscale(client_for(SandboxConfig(max_image_bytes=100_000)))
    assert response.status_code == 400
    message = "File exceeds the maximum allowed size of 0.1 MB."
    body = response.json()
    assert body["error"] == message
    assert body["code"] == "PAYLOAD_TOO_LARGE"
    assert body["details"] == {"_errors": [], "image": {"_errors": [message]}}
    whole = upscale(client_for(SandboxConfig(max_request_bytes=1000)))
    assert whole.status_code == 400
    assert whole.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert whole.json()["details"]["_errors"] == [
        "The request payload is too large: the limit is 1,000 bytes."
    ]


def test_byte_limits_can_still_be_a_413() -> None:
    response = upscale(client_for(SandboxConfig(max_image_bytes=100_000, max_bytes_status=413)))
    assert response.status_code == 413
    assert response.json() == {
        "code": "PAYLOAD_TOO_LARGE",
        "error": "File exceeds the maximum allowed size of 0.1 MB.",
    }
    whole = upscale(client_for(SandboxConfig(max_request_bytes=1000, max_bytes_status=413)))
    assert whole.status_code == 413
    assert whole.json() == {
        "code": "PAYLOAD_TOO_LARGE",
        "error": "The request payload is too large: the limit is 1,000 bytes.",
    }


def test_size_statuses_can_be_switched_at_run_time() -> None:
    client = client_for(SandboxConfig(max_pixels=100_000))
    patched = admin(client, "PATCH", "/config", json={"max_pixels_status": 422})
    assert patched.json()["max_pixels_status"] == 422
    assert upscale(client).status_code == 422
    assert admin(client, "PATCH", "/config", json={"max_bytes_status": 422}).status_code == 400
    assert admin(client, "PATCH", "/config", json={"max_pixels_status": 413}).status_code == 400
    defaults = admin(client, "GET", "/config").json()
    assert (defaults["max_bytes_status"], defaults["max_pixels_status"]) == (400, 422)


@pytest.mark.parametrize(
    ("path", "field"),
    [("/image/edit", "image"), ("/image/upscale", "image"), ("/image/background-remove", "image")],
)
def test_a_data_url_outside_multi_edit_says_only_multi_edit_takes_it(path: str, field: str) -> None:
    body: dict[str, Any] = {field: "data:image/png;base64," + base64.b64encode(CAT).decode()}
    if path == "/image/edit":
        body["prompt"] = "x"
    response = client_for().post(path, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "data: URLs are accepted only by /image/multi-edit"
    (detail,) = response.json()["details"][field]["_errors"]
    assert detail.startswith(
        f"data: URLs are accepted only by /image/multi-edit; {field} on {path}"
    )
    assert "raw base64" in detail


def test_upscale_ignores_a_model_field_as_the_current_schema_allows() -> None:
    client = client_for()
    response = upscale(client, model="upscaler")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (902, 600)
    assert upscale(client, model="anything-else").status_code == 200
    files = {"image": ("c.png", CAT, "image/png")}
    form = client.post("/image/upscale", data={"model": "upscaler", "scale": "2"}, files=files)
    assert form.status_code == 200
    assert admin(client, "GET", "/stats").json()["charged_usd"] == pytest.approx(0.06)


def test_body_errors() -> None:
    client = client_for()
    assert (
        client.post(
            "/image/edit", content=b"{}", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert client.post("/image/edit", content=b"").status_code == 415  # no content type at all
    broken = client.post(
        "/image/edit", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["details"]["_errors"]
    unbounded = client.post(
        "/image/edit", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert unbounded.status_code == 400


def test_valid_keys_limit_who_gets_in() -> None:
    client = client_for(SandboxConfig(valid_keys=frozenset({"good"})))
    assert upscale(client).status_code == 401
    client.headers["Authorization"] = "Bearer good"
    assert upscale(client).status_code == 200


def test_balance_headers_are_taken_before_the_charge() -> None:
    client = client_for(SandboxConfig(balance_usd=1.0))
    first, second = upscale(client), upscale(client, scale=4)
    assert first.headers["x-venice-balance-usd"] == "1.000000"
    assert second.headers["x-venice-balance-usd"] == "0.980000"
    assert client.get("/billing/balance").json()["balances"]["usd"] == pytest.approx(0.90)
    assert first.headers["x-venice-balance-diem"] == "0.000000"
    staking = upscale(client_for(SandboxConfig(balance_usd=1.0, balance_diem=1.0)))
    assert staking.headers["x-venice-balance-diem"] == "1.000000"
    not_staking = upscale(client_for(SandboxConfig(balance_diem=None)))
    assert "x-venice-balance-diem" not in not_staking.headers


def test_a_charge_above_the_balance_is_402_and_costs_nothing() -> None:
    client = client_for(SandboxConfig(balance_usd=0.03))
    assert upscale(client, scale=4).status_code == 402
    assert upscale(client).status_code == 200  # 0.02 still fits
    assert client.get("/billing/balance").json()["balances"]["usd"] == pytest.approx(0.01)


def test_rate_limit_429_and_retry_after_switch() -> None:
    client = client_for(SandboxConfig(requests_per_minute=2))
    assert [upscale(client).status_code for _ in range(3)] == [200, 200, 429]
    limited = upscale(client)
    assert limited.json() == {"error": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"}
    assert "retry-after" in limited.headers
    quiet = client_for(SandboxConfig(requests_per_minute=1, retry_after=False))
    upscale(quiet)
    assert "retry-after" not in upscale(quiet).headers


def test_lockout_blocks_every_route_for_its_duration_then_lifts() -> None:
    clock = Clock()
    config = SandboxConfig(
        lockout_failures=2, lockout_window_seconds=10, lockout_duration_seconds=5
    )
    client = client_for(config, clock)
    assert [upscale(client, scale=9).status_code for _ in range(3)] == [400, 400, 400]
    locked = upscale(client)
    assert locked.status_code == 429
    assert locked.json()["error"] == (
        "Too many failed attempts (> 2) resulting in a non-success status code. "
        "Please wait 5s and try again."
    )
    assert client.get("/billing/balance").status_code == 429
    other = client.post(
        "/image/upscale", json={"image": "x"}, headers={"Authorization": "Bearer other"}
    )
    assert other.status_code == 400  # other keys are not affected
    clock.now += 5
    assert upscale(client).status_code == 200
    stats = admin(client, "GET", "/stats").json()
    assert stats["lockouts_triggered"] == 1
    assert stats["sent_429"] == 2


def test_seeded_faults_repeat_after_a_reset() -> None:
    client = client_for(SandboxConfig(fault_rates={500: 0.3, 503: 0.3}, seed=3, balance_usd=10))
    first = [upscale(client).status_code for _ in range(12)]
    assert {200, 500, 503} <= set(first)
    admin(client, "POST", "/reset")
    assert [upscale(client).status_code for _ in range(12)] == first
    stats = admin(client, "GET", "/stats").json()
    assert stats["paid_total"] == first.count(200)


def test_a_reset_raises_a_transport_error_in_process_too() -> None:
    client = client_for(SandboxConfig(reset_rate=1.0))
    with pytest.raises(httpx.TransportError) as caught:
        upscale(client)
    assert isinstance(caught.value, SimulatedConnectionReset)
    stats = admin(client, "GET", "/stats").json()
    assert stats["connection_resets"] == 1 and stats["paid_total"] == 0


def test_admin_config_balance_stats_and_reset() -> None:
    client = client_for()
    bad = admin(client, "PATCH", "/config", json={"fault_rates": {"200": 0.5}})
    assert bad.status_code == 400 and bad.json()["details"]
    assert admin(client, "PATCH", "/config", json={"nonsense": 1}).status_code == 400
    patched = admin(client, "PATCH", "/config", json={"requests_per_minute": 1, "latency_ms": 1})
    assert patched.json()["requests_per_minute"] == 1
    assert (
        admin(client, "POST", "/balance", json={"usd": 0.5, "add_usd": 0.25}).json()["balances"][
            "usd"
        ]
        == 0.75
    )
    assert admin(client, "POST", "/balance", json={"usd": -1}).status_code == 400
    upscale(client)
    upscale(client)
    stats = admin(client, "GET", "/stats").json()
    assert stats["requests"]["/image/upscale"] == {"200": 1, "429": 1}
    assert stats["bytes_received"]["/image/upscale"] > 2 * len(CAT)  # base64 inflates
    assert stats["charged_usd"] == pytest.approx(0.02)
    admin(client, "POST", "/reset")
    assert admin(client, "GET", "/stats").json()["requests_total"] == 0
    assert admin(client, "GET", "/balance").json()["balances"]["usd"] == 100.0


def test_edit_success_headers_and_deprecation() -> None:
    client = client_for()
    body = {
        "image": base64.b64encode(CAT).decode(),
        "prompt": "x",
        "model": "sandbox-deprecated-edit",
    }
    response = client.post("/image/edit", json=body)
    assert response.status_code == 200
    assert response.headers["x-venice-deprecated"] == "true"
    assert response.headers["x-venice-deprecated-replacement"] == "firered-image-edit"
    assert response.headers["x-venice-model-deprecation-date"] == "2026-12-31T00:00:00.000Z"
    plain = client.post("/image/edit", json={**body, "model": "firered-image-edit"})
    assert "x-venice-deprecated" not in plain.headers
    assert plain.headers["cf-ray"] != response.headers["cf-ray"]


def test_models_listing() -> None:
    client = client_for()
    client.headers.pop("Authorization")
    assert client.get("/models").json() == {"object": "list", "type": "text", "data": []}
    everything = client.get("/models", params={"type": "all"}).json()["data"]
    assert {"upscaler", "bria-bg-remover", "firered-image-edit"} <= {m["id"] for m in everything}
    inpaint = client.get("/models", params={"type": "inpaint"}).json()["data"]
    assert all(m["model_spec"]["constraints"]["promptCharacterLimit"] == 1500 for m in inpaint)
    assert client.get("/models", params={"type": "bogus"}).status_code == 400


class _PhotoHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the photos by path, also when asked as a proxy (``GET http://host/name``)."""

    def translate_path(self, path: str) -> str:
        return super().translate_path(urllib.parse.urlsplit(path).path)


@pytest.fixture
def photo_server() -> Iterator[str]:
    handler = functools.partial(_PhotoHandler, directory=str(PHOTOS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_image_urls_are_fetched_unless_turned_off(photo_server: str) -> None:
    url = f"{photo_server}/coffee.png"
    response = client_for().post("/image/background-remove", json={"image_url": url})
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (600, 400)
    missing = client_for().post(
        "/image/background-remove", json={"image_url": f"{photo_server}/nope.png"}
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == "Failed to fetch the image URL"
    assert missing.json()["details"]["image_url"]["_errors"] == [
        f"Could not download the image from {photo_server}/nope.png"
    ]
    off = client_for(SandboxConfig(fetch_image_urls=False))
    assert off.post("/image/background-remove", json={"image_url": url}).status_code == 400


def test_loopback_urls_feed_edit_multi_edit_and_background_remove(photo_server: str) -> None:
    client = client_for()
    url = f"{photo_server}/chelsea.png"
    edited = client.post("/image/edit", json={"image": url, "prompt": "x"})
    assert edited.status_code == 200, edited.text
    multi = client.post("/image/multi-edit", json={"images": [url, url], "prompt": "x"})
    assert multi.status_code == 200, multi.text
    cut = client.post("/image/background-remove", json={"image_url": url})
    assert cut.status_code == 200, cut.text
    assert Image.open(io.BytesIO(cut.content)).size == (451, 300)


def _proxy_env(monkeypatch: pytest.MonkeyPatch, proxy: str) -> None:
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy)
    monkeypatch.setenv("HTTP_PROXY", proxy)


def test_loopback_urls_bypass_a_proxy_from_the_environment(
    photo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _proxy_env(monkeypatch, "http://127.0.0.1:9")  # nothing listens there
    url = f"{photo_server}/coffee.png"
    for host in ("127.0.0.1", "localhost"):
        response = client_for().post(
            "/image/background-remove", json={"image_url": url.replace("127.0.0.1", host)}
        )
        assert response.status_code == 200, response.text


def test_other_hosts_still_go_through_the_proxy(
    photo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _proxy_env(monkeypatch, photo_server)  # the file server answers proxy requests by path
    response = client_for().post(
        "/image/background-remove", json={"image_url": "http://images.invalid/coffee.png"}
    )
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (600, 400)


def test_a_fetched_image_over_the_byte_limit_is_a_400_naming_the_field(photo_server: str) -> None:
    client = client_for(SandboxConfig(max_image_bytes=1000))
    response = client.post(
        "/image/background-remove", json={"image_url": f"{photo_server}/coffee.png"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert response.json()["details"]["image_url"]["_errors"] == [
        "File exceeds the maximum allowed size of 0.001 MB."
    ]


def test_x402_discovery_only_without_any_credentials() -> None:
    client = client_for(SandboxConfig(x402_without_credentials=True))
    client.headers.pop("Authorization")
    assert upscale(client).status_code == 402
    assert (
        client.post("/image/upscale", json={}, headers={"SIGN-IN-WITH-X": "e30="}).status_code
        == 401
    )
