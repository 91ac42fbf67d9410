"""The Venice client's requests and responses, against an httpx.MockTransport.

The four image methods take an Artifact and a request; the transport answers the model list
from the sandbox's catalog, so the client's own model lookup and checks run for real.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from loguru import logger
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hotfolder.artifact import Artifact
from hotfolder.errors import AuthError, InputError, OperationError, Rejected, Unavailable
from hotfolder.localfiles import LocalFile
from hotfolder.venice import (
    BackgroundRemoveRequest,
    EditRequest,
    MultiEditRequest,
    UpscaleRequest,
    VeniceClient,
    VeniceSection,
)
from hotfolder.venice.errors import error_from_response
from hotfolder_sandbox.catalog import load_catalog

KEY = "sk-venice-test-0123456789abcdef"
BASE = "https://api.venice.test/api/v1"


def png(
    size: tuple[int, int] = (300, 300), mode: str = "RGB", *, text: dict[str, str] | None = None
) -> bytes:
    buffer = io.BytesIO()
    info = PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    Image.new(mode, size, (10, 120, 200) if mode == "RGB" else (10, 120, 200, 128)).save(
        buffer, "PNG", pnginfo=info
    )
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (300, 300)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, "JPEG")
    return buffer.getvalue()


def artifact(data: bytes, name: str = "in.png", *, source_url: str | None = None) -> Artifact:
    """An input image; ``source_url``: fetched from that URL, as the URL resolver records."""
    found = Artifact.from_bytes(data, name=name)
    if source_url is not None:
        found.info.update(source_url=source_url, source_sha256=hashlib.sha256(data).hexdigest())
    return found


#: A public https URL whose host is an address, so that checking it needs no DNS.
PUBLIC_URL = "https://93.184.215.14/cat.png"


def with_models(
    handler: Callable[[httpx.Request], httpx.Response],
) -> Callable[..., httpx.Response]:
    """``handler`` for the image endpoints; the model lists from the sandbox's catalog."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=load_catalog().listing(request.url.params["type"]))
        return handler(request)

    return handle


def image_response(data: bytes, media_type: str = "image/png", **headers: str) -> httpx.Response:
    return httpx.Response(200, content=data, headers={"content-type": media_type, **headers})


def parse_multipart(request: httpx.Request) -> dict[str, Any]:
    """Form fields as a dict: text parts as str, file parts as (filename, bytes, type);
    a repeated name becomes a list."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + request.content)
    fields: dict[str, Any] = {}
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        payload = part.get_payload(decode=True)
        value: Any = (filename, payload, part.get_content_type()) if filename else payload.decode()
        if name in fields:
            fields[name] = (
                [*fields[name], value] if isinstance(fields[name], list) else [fields[name], value]
            )
        else:
            fields[name] = value
    return fields


class Recorder:
    """A MockTransport that records every request and answers with ``handler``."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self._handler(request)

    @property
    def image_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if "/image/" in r.url.path]


REMOVE = BackgroundRemoveRequest()


def make_client(recorder: Recorder, tmp_path: Any, **settings: Any) -> VeniceClient:
    defaults = {"cache_dir": tmp_path, "backoff_base_seconds": 0.0, "requests_per_minute": 10_000}
    return VeniceClient(
        base_url=BASE,
        api_key=KEY,
        settings=VeniceSection(**{**defaults, **settings}),
        transport=recorder.transport,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def call(client: VeniceClient, method: str, *args: Any, **kwargs: Any) -> Any:
    async with client:
        return await getattr(client, method)(*args, **kwargs)


def test_local_bytes_go_as_multipart_files_with_string_values(tmp_path):
    data = png()
    rec = Recorder(with_models(lambda r: image_response(png((1024, 1024)))))
    client = make_client(rec, tmp_path)
    request = EditRequest(
        prompt="make it blue", model="qwen-image-2-edit", safe_mode=False, enhance_prompt=True
    )
    result = run(call(client, "edit", artifact(data, "cat.png"), request))
    (request,) = rec.image_requests
    assert request.url.path == "/api/v1/image/edit"
    assert request.headers["content-type"].startswith("multipart/form-data")
    fields = parse_multipart(request)
    assert fields["image"] == ("cat.png", data, "image/png")  # the raw bytes, no base64
    assert fields["prompt"] == "make it blue"
    assert fields["model"] == "qwen-image-2-edit"
    assert fields["safe_mode"] == "false"
    assert fields["enhance_prompt"] == "true"
    assert set(fields) == {"image", "prompt", "model", "safe_mode", "enhance_prompt"}
    assert len(request.content) < len(data) + 1024  # form overhead only: no base64 inflation
    assert result.cost_usd == pytest.approx(0.05 + 0.04)  # qwen-image-2-edit + enhance_prompt
    assert result.notes == {"model": "qwen-image-2-edit", "input_sent_as": "bytes"}


def test_a_local_file_is_streamed_from_the_file_and_sent_whole_again_on_a_retry(tmp_path):
    """An input read from a local file keeps no copy of its bytes: the upload streams them
    from the file, in chunks, and a retry after a 503 sends them all again."""
    path = tmp_path / "cat.png"
    path.write_bytes(png((700, 700)))
    file, data = LocalFile.read(path)
    image = Artifact.from_file(file, data, name="cat.png")
    del data
    assert image.file is file
    answers = iter([httpx.Response(503, json={"error": "busy"}), image_response(png((1024, 1024)))])
    rec = Recorder(with_models(lambda r: next(answers)))
    result = run(call(make_client(rec, tmp_path), "edit", image, EditRequest(prompt="blue")))
    first, second = rec.image_requests
    for request in (first, second):
        assert parse_multipart(request)["image"] == ("cat.png", path.read_bytes(), "image/png")
        assert int(request.headers["content-length"]) == len(request.content)
    assert result.notes["input_sent_as"] == "bytes"


def test_a_file_changed_before_its_upload_is_an_input_error_and_nothing_is_sent(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(png((300, 300)))
    file, data = LocalFile.read(path)
    image = Artifact.from_file(file, data, name="cat.png")
    path.write_bytes(png((300, 300), "RGBA"))
    rec = Recorder(with_models(lambda r: image_response(png((1024, 1024)))))
    with pytest.raises(InputError) as caught:
        run(call(make_client(rec, tmp_path), "edit", image, EditRequest(prompt="blue")))
    assert caught.value.message == f"{path} changed while hotfolder was working on it"
    assert rec.image_requests == []


def test_multi_edit_repeats_the_images_part(tmp_path):
    rec = Recorder(with_models(lambda r: image_response(png())))
    images = [artifact(png(), f"{i}.png") for i in range(3)]
    request = MultiEditRequest(prompt="combine", model="flux-2-max-edit")
    result = run(call(make_client(rec, tmp_path), "multi_edit", images, request))
    fields = parse_multipart(rec.image_requests[0])
    assert [f[0] for f in fields["images"]] == ["0.png", "1.png", "2.png"]
    assert fields["modelId"] == "flux-2-max-edit"
    assert "model" not in fields
    assert result.cost_usd == pytest.approx(0.12 + 2 * 0.0345)  # two images beyond the first
    assert result.notes["images"] == 3


def test_url_inputs_go_as_json_in_each_endpoints_own_field(tmp_path):
    rec = Recorder(with_models(lambda r: image_response(png())))
    from_url = artifact(png(), "cat.png", source_url=PUBLIC_URL)
    local = artifact(png((400, 300)))

    async def calls() -> list[Any]:
        async with make_client(rec, tmp_path) as client:
            return [
                await client.edit(from_url, EditRequest(prompt="p")),
                await client.background_remove(from_url, BackgroundRemoveRequest()),
                await client.multi_edit([local, from_url], MultiEditRequest(prompt="p")),
                await client.upscale(from_url, UpscaleRequest()),
            ]

    results = run(calls())
    *by_url, upscale = rec.image_requests
    bodies = [json.loads(r.content) for r in by_url]
    assert all(r.headers["content-type"] == "application/json" for r in by_url)
    assert bodies[0] == {"prompt": "p", "model": "firered-image-edit", "image": PUBLIC_URL}
    assert bodies[1] == {"image_url": PUBLIC_URL}
    assert bodies[2]["modelId"] == "firered-image-edit"
    assert bodies[2]["images"][1] == PUBLIC_URL
    assert bodies[2]["images"][0].startswith("data:image/png;base64,")
    assert base64.b64decode(bodies[2]["images"][0].split(",", 1)[1]) == local.data
    assert parse_multipart(upscale)["image"][1] == from_url.data  # upscale takes no URL: bytes
    assert [r.notes["input_sent_as"] for r in results] == ["url", "url", "url", "bytes"]


def test_a_request_is_typed_and_the_wire_refuses_what_an_endpoint_does_not_take():
    from hotfolder.venice.wire import ENDPOINTS, ImageInput, build_body

    with pytest.raises(ValueError, match="2x or 4x, not 3x"):
        UpscaleRequest(scale=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="takes no URL"):
        build_body(ENDPOINTS["upscale"], {}, [ImageInput(url=PUBLIC_URL)])
    with pytest.raises(ValueError, match="does not take quality"):
        build_body(ENDPOINTS["edit"], {"prompt": "p", "quality": "high"}, [ImageInput(data=png())])
    # quality on an edit goes to multi-edit, whose schema has it; model becomes modelId there
    assert EditRequest(prompt="p", quality="low").wire_fields("multi-edit") == {
        "prompt": "p",
        "modelId": "firered-image-edit",
        "quality": "low",
    }


def test_the_format_comes_from_content_type_and_the_bytes_must_match(tmp_path):
    rec = Recorder(with_models(lambda r: image_response(jpeg(), "image/jpeg")))
    result = run(call(make_client(rec, tmp_path), "edit", artifact(png()), EditRequest(prompt="p")))
    assert (result.format, result.media_type, result.image.size) == (
        "JPEG",
        "image/jpeg",
        (300, 300),
    )

    for body, media in (
        (png(), "image/jpeg"),
        (b"not an image at all", "image/png"),
        (b"{}", "application/json"),
    ):
        rec = Recorder(with_models(lambda r, b=body, m=media: image_response(b, m)))
        with pytest.raises(OperationError, match="answered 200"):
            run(call(make_client(rec, tmp_path), "edit", artifact(png()), EditRequest(prompt="p")))
        assert len(rec.image_requests) == 1  # a paid 200 is never sent again


def test_the_x_simulated_header_makes_the_result_simulated(tmp_path):
    def remove(rec: Recorder) -> Any:
        image = artifact(png())
        return run(call(make_client(rec, tmp_path), "background_remove", image, REMOVE))

    assert remove(Recorder(lambda r: image_response(png(), **{"X-Simulated": "true"}))).simulated
    assert not remove(Recorder(lambda r: image_response(png()))).simulated
    # the sandbox's metadata mark is for people; the client goes by the header alone
    marked = png(text={"hotfolder-sandbox": "simulated"})
    assert not remove(Recorder(lambda r: image_response(marked))).simulated


def test_headers_are_read_and_warnings_logged_once_per_model(tmp_path):
    headers = {
        "cf-ray": "8f00-AMS",
        "x-venice-model-id": "old-edit-model",
        "x-venice-balance-usd": "12.500000",
        "x-venice-is-content-violation": "true",
        "x-venice-enhanced-prompt": "a%20red%20cat%2C%20sunlit",
        "x-venice-deprecated": "true",
        "x-venice-deprecated-replacement": "firered-image-edit",
    }
    rec = Recorder(with_models(lambda r: image_response(png(), **headers)))
    lines: list[str] = []
    sink = logger.add(lines.append, level="INFO", format="{level} {message}")
    try:

        async def twice() -> Any:
            async with make_client(rec, tmp_path) as client:
                await client.edit(artifact(png()), EditRequest(prompt="p"))
                return await client.edit(artifact(png()), EditRequest(prompt="p"))

        result = run(twice())
    finally:
        logger.remove(sink)
    h = result.headers
    assert (h.request_id, h.model_id, h.balance_usd) == ("8f00-AMS", "old-edit-model", 12.5)
    assert h.enhanced_prompt == "a red cat, sunlit"
    assert h.content_violation
    assert sum("content violation" in line and line.startswith("WARNING") for line in lines) == 2
    assert sum("is deprecated" in line for line in lines) == 1
    assert any(
        "8f00-AMS" in line and "old-edit-model" in line and "$12.50" in line for line in lines
    )
    assert result.notes["model"] == "old-edit-model"  # the model Venice says it used


@pytest.mark.parametrize(
    ("body", "status", "kind", "code", "text"),
    [
        (
            {
                "error": "Invalid request parameters",
                "details": {"_errors": [], "prompt": {"_errors": ["Required"]}},
            },
            400,
            Rejected,
            None,
            "prompt: Required",
        ),
        (
            {"error": {"message": "model gone", "code": "MODEL_NOT_FOUND"}},
            404,
            Rejected,
            "MODEL_NOT_FOUND",
            "model gone",
        ),
        (
            {
                "code": "PAYLOAD_TOO_LARGE",
                "error": "File exceeds the maximum allowed size of 25 MB.",
            },
            413,
            Rejected,
            "PAYLOAD_TOO_LARGE",
            "25 MB",
        ),
        ({"error": "Rate limit exceeded"}, 429, Unavailable, None, "Rate limit"),
        ({"error": "Authentication failed"}, 401, AuthError, None, "Authentication failed"),
        (
            {"x402Version": 2, "error": "Payment required", "accepts": [{"scheme": "exact"}]},
            402,
            AuthError,
            None,
            "x402",
        ),
        (
            {
                "error": "Payment required",
                "code": "PAYMENT_REQUIRED",
                "reason": "insufficient_balance",
            },
            402,
            AuthError,
            "PAYMENT_REQUIRED",
            "x402",
        ),
    ],
)
def test_both_error_body_shapes_and_the_x402_body_are_mapped(body, status, kind, code, text):
    request = httpx.Request("POST", BASE + "/image/edit")
    response = httpx.Response(status, json=body, request=request, headers={"cf-ray": "r1"})
    error = error_from_response(response)
    assert type(error) is kind
    assert (error.status, error.code, error.request_id) == (status, code, "r1")
    assert text in str(error)
    if body.get("x402Version") or body.get("code") == "PAYMENT_REQUIRED":
        assert "x402 wallet payment flow" in error.hint
        assert "set VENICE_API_KEY" in error.hint


def test_the_key_is_never_in_a_repr_a_message_or_a_log_line(tmp_path):
    echo = {"error": f"Authentication failed for Bearer {KEY}"}
    rec = Recorder(with_models(lambda r: httpx.Response(401, json=echo)))
    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG", format="{message}")
    try:
        client = make_client(rec, tmp_path)
        assert KEY not in repr(client)
        with pytest.raises(AuthError) as caught:
            run(call(client, "edit", artifact(png()), EditRequest(prompt="p")))
    finally:
        logger.remove(sink)
    assert rec.image_requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.to_dict())
    assert lines and not any(KEY in line for line in lines)
    assert KEY not in repr(rec.requests[0].headers)


def test_models_and_balance(tmp_path):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            assert request.url.params["type"] == "inpaint"
            return httpx.Response(
                200, json={"object": "list", "type": "inpaint", "data": [{"id": "m"}]}
            )
        body = {
            "canConsume": True,
            "consumptionCurrency": "USD",
            "balances": {"usd": 3.5, "diem": None},
            "diemEpochAllocation": 0,
        }
        return httpx.Response(200, json=body)

    rec = Recorder(handler)

    async def both() -> tuple[Any, Any]:
        async with make_client(rec, tmp_path) as client:
            return await client.list_models("inpaint"), await client.balance()

    models, balance = run(both())
    assert models == [{"id": "m"}]
    assert balance["balances"]["usd"] == 3.5


@pytest.mark.parametrize("status", [400, 413])
def test_a_too_large_upload_says_to_fit_whatever_the_status(status):
    """The spec declares 400 for a too-large image (the sandbox's default); some servers
    answer 413. Either way the hint names the fix."""
    body = {"code": "PAYLOAD_TOO_LARGE", "error": "File exceeds the maximum allowed size."}
    request = httpx.Request("POST", "https://api.venice.test/api/v1/image/edit")
    error = error_from_response(httpx.Response(status, json=body, request=request))
    assert isinstance(error, Rejected)
    assert "fit = true" in (error.hint or "")
