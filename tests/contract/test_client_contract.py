"""Every request hotfolder's Venice client builds validates against Venice's OpenAPI spec.

Requests are captured at an ``httpx.MockTransport`` (nothing is sent), parsed back the way a
server would (JSON, or multipart form fields), and validated with the spec's request schema for
that path and content type; no key outside the schema's properties is ever sent, even where
the schema itself would tolerate one. Both the client's own calls (every endpoint's request
type, JSON and multipart, every optional field present and absent, URL inputs) and the four
operations' calls (their parameters mapped onto the wire) are covered.
"""

from __future__ import annotations

import asyncio
import email.parser
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hotfolder.artifact import Artifact
from hotfolder.components import StepContext
from hotfolder.config import validate_config
from hotfolder.job import Job, StepRecord
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder.venice import (
    SERVICE,
    BackgroundRemoveRequest,
    EditRequest,
    MultiEditRequest,
    UpscaleRequest,
    VeniceClient,
    VeniceSection,
)
from hotfolder_sandbox.catalog import load_catalog
from tests.contract.spec import load_spec, operation, validate_request

BASE = "http://127.0.0.1:9/api/v1"  # never contacted: the transport is a mock
ASPECT_RATIOS = ["auto", "1:1", "3:2", "16:9", "21:9", "9:16", "2:3", "3:4", "4:5"]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (40, 90, 160)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()
#: A public https URL whose host is an address, so that checking it needs no DNS.
URL = "https://93.184.215.14/in.png"
FILE = Artifact.from_bytes(PNG, name="in.png")
FROM_URL = Artifact.from_bytes(PNG, name="in.png")
FROM_URL.info.update(source_url=URL, source_sha256=hashlib.sha256(PNG).hexdigest())


class Capture:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=load_catalog().listing(request.url.params["type"]))
        self.requests.append(request)
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})


def parse(request: httpx.Request) -> tuple[str, dict[str, Any]]:
    """The body as the server sees it: (media type, fields)."""
    content_type = request.headers["content-type"]
    media = content_type.split(";")[0]
    if media == "application/json":
        return media, json.loads(request.content)
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    fields: dict[str, Any] = {}
    for part in email.parser.BytesParser().parsebytes(head + request.content).get_payload():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        data = part.get_payload(decode=True)
        value: Any = (filename, data, part.get_content_type()) if filename else data.decode()
        if name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return media, fields


def declared_properties(path: str, media: str) -> set[str]:
    """The property names the request schema declares, through $ref and allOf."""
    _, op = operation(path, "post")
    spec = load_spec()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = spec
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        return node

    def props(node: dict[str, Any]) -> set[str]:
        node = resolve(node)
        names = set(node.get("properties", {}))
        for part in node.get("allOf", []):
            names |= props(part)
        return names

    return props(op["requestBody"]["content"][media]["schema"])


def check(request: httpx.Request) -> dict[str, Any]:
    path = request.url.path.removeprefix("/api/v1")
    media, fields = parse(request)
    validate_request(path, media, fields, method="post")
    unknown = set(fields) - declared_properties(path, media)
    assert not unknown, f"{path} {media} sent keys the spec does not declare: {unknown}"
    return fields


def send(method: str, *args: Any, **kwargs: Any) -> httpx.Request:
    capture = Capture()

    async def go() -> None:
        settings = VeniceSection(requests_per_minute=10_000, cache_dir=None)
        async with VeniceClient(
            base_url=BASE,
            api_key="sk-contract",
            settings=settings,
            transport=capture.transport,
            persist=False,
        ) as client:
            await getattr(client, method)(*args, **kwargs)

    asyncio.run(go())
    (request,) = capture.requests
    return request


EDIT_OPTIONS: list[dict[str, Any]] = [
    {},
    {"model": "gpt-image-2-edit"},
    *({"aspect_ratio": ratio} for ratio in ASPECT_RATIOS),
    {"model": "nano-banana-2-edit", "resolution": "2K"},
    *({"output_format": f} for f in ("jpeg", "png", "webp")),
    {"safe_mode": False},
    {"safe_mode": True},
    {"enhance_prompt": True},
    {"disable_prompt_optimization_thinking": True},
    {
        "model": "nano-banana-pro-edit",
        "aspect_ratio": "16:9",
        "resolution": "4K",
        "output_format": "webp",
        "safe_mode": False,
        "enhance_prompt": False,
        "disable_prompt_optimization_thinking": False,
    },
]


@pytest.mark.parametrize("image", [FILE, FROM_URL], ids=["multipart", "json-url"])
@pytest.mark.parametrize(
    "options", EDIT_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "none"
)
def test_edit_requests(image, options):
    fields = check(send("edit", image, EditRequest(prompt="turn the sky orange", **options)))
    assert {k: fields[k] for k in options} == {
        k: (str(v).lower() if isinstance(v, bool) and image is FILE else v)
        for k, v in options.items()
    }


MULTI_OPTIONS: list[dict[str, Any]] = [
    {},
    {"model": "gpt-image-2-edit", "quality": "low"},
    {"model": "gpt-image-2-edit", "quality": "medium"},
    {"model": "gpt-image-2-edit", "quality": "high", "resolution": "2K", "aspect_ratio": "1:1"},
    {"output_format": "jpeg", "safe_mode": False, "enhance_prompt": True},
    {"disable_prompt_optimization_thinking": True},
]


@pytest.mark.parametrize(
    "images",
    [[FILE], [FILE, FILE, FILE], [FROM_URL, FROM_URL], [FILE, FROM_URL]],
    ids=["one-file", "three-files", "urls", "files-and-urls"],
)
@pytest.mark.parametrize("options", MULTI_OPTIONS, ids=lambda o: ",".join(o) or "none")
def test_multi_edit_requests(images, options):
    wanted = MultiEditRequest(prompt="put the cat on the sofa", **options)
    request = send("multi_edit", images, wanted)
    fields = check(request)
    media = request.headers["content-type"].split(";")[0]
    by_url = any(image is FROM_URL for image in images)
    assert media == ("application/json" if by_url else "multipart/form-data")
    sent = fields["images"] if isinstance(fields["images"], list) else [fields["images"]]
    assert len(sent) == len(images)
    assert fields["modelId"] == wanted.model and "model" not in fields


@pytest.mark.parametrize("scale", [None, 2, 4])
@pytest.mark.parametrize("creativity", [None, 0.0, 0.01, 0.02])
def test_upscale_requests(scale, creativity):
    fields = check(send("upscale", FILE, UpscaleRequest(scale=scale, creativity=creativity)))
    assert set(fields) == {"image"} | {
        k for k, v in (("scale", scale), ("creativity", creativity)) if v is not None
    }
    if scale is not None:
        assert fields["scale"] == str(scale)  # "Must be either 2 or 4"


@pytest.mark.parametrize("image", [FILE, FROM_URL], ids=["multipart", "json-url"])
def test_background_remove_requests(image):
    fields = check(send("background_remove", image, BackgroundRemoveRequest()))
    assert set(fields) == ({"image"} if image is FILE else {"image_url"})


# --- through the operations ------------------------------------------------------------------

REGISTRY = build_registry(make_plugin_manager(load_entrypoints=False))

OP_CASES: list[tuple[str, dict[str, Any]]] = [
    ("venice.edit", {"prompt": "p"}),
    (
        "venice.edit",
        {"prompt": "p", "model": "gpt-image-2-edit", "quality": "medium", "resolution": "4K"},
    ),
    (
        "venice.edit",
        {
            "prompt": "p",
            "model": "nano-banana-2-edit",
            "aspect_ratio": "9:16",
            "resolution": "2K",
            "output_format": "jpg",
            "safe_mode": False,
            "enhance_prompt": True,
            "disable_prompt_optimization_thinking": True,
        },
    ),
    ("venice.multi-edit", {"prompt": "p", "with": ["layer.png"]}),
    (
        "venice.multi-edit",
        {
            "prompt": "p",
            "model": "gpt-image-2-edit",
            "quality": "high",
            "with": ["layer.png", "layer.png"],
        },
    ),
    ("venice.upscale", {}),
    ("venice.upscale", {"scale": 4, "creativity": 0.02}),
    ("venice.upscale", {"scale": 2, "creativity": 0}),
    ("venice.background-remove", {}),
]


@pytest.mark.parametrize("source", ["file", "url"])
@pytest.mark.parametrize(
    ("op", "params"), OP_CASES, ids=lambda v: v if isinstance(v, str) else ",".join(v)
)
def test_operation_requests(tmp_path: Path, op, params, source):
    (tmp_path / "layer.png").write_bytes(PNG)
    capture = Capture()
    config = validate_config({}, REGISTRY)
    runtime = Runtime(config, make_plugin_manager(load_entrypoints=False), REGISTRY)
    settings = VeniceSection(requests_per_minute=10_000, cache_dir=tmp_path)
    runtime.set_service(
        SERVICE,
        VeniceClient(
            base_url=BASE,
            api_key="sk-contract",
            settings=settings,
            transport=capture.transport,
            persist=False,
        ),
    )
    artifact = Artifact.from_bytes(PNG, name="in.png")
    if source == "url":
        artifact.info.update(source_url=URL, source_sha256=hashlib.sha256(PNG).hexdigest())
    cls = REGISTRY.operation(op)
    step = cls(cls.Params.model_validate(params))
    context = StepContext(
        job=Job(source="in.png", chain="c", base_dir=tmp_path),
        index=0,
        runtime=runtime,
        record=StepRecord(index=0, op=op, params=params),
    )

    async def go() -> None:
        try:
            await step.run(context, artifact)
        finally:
            await runtime.aclose()

    asyncio.run(go())
    (request,) = capture.requests
    fields = check(request)
    assert "model" not in fields or request.url.path.endswith("/image/edit")
    if op == "venice.upscale":
        assert request.headers["content-type"].startswith("multipart/form-data")
    elif source == "url":  # the other three take the job's input as its URL
        body = json.loads(request.content)
        assert (body.get("image") or body.get("image_url") or body["images"][0]) == URL
