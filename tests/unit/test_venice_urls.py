"""Which inputs go to Venice as URLs: what the URL resolver records, the client's rule (public
https, or a host in ``[venice] send_urls_from``; bytes unchanged; a format Venice takes as it
is), and the one retry with the bytes when Venice says it could not use the URL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hotfolder.artifact import Artifact
from hotfolder.config import validate_config
from hotfolder.errors import ConfigError, Rejected
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder.venice import EditRequest, VeniceClient, VeniceSection
from hotfolder.venice.preflight import sendable_url
from hotfolder.venice.wire import url_refused
from hotfolder_sandbox.catalog import load_catalog
from tests.helpers.corpus import PHOTOS
from tests.helpers.image_server import image_server

PUBLIC = "https://93.184.215.14/photo.png"  # a public address: checking it needs no DNS
REGISTRY = build_registry(make_plugin_manager(load_entrypoints=False))


def from_url(path: Path, url: str) -> Artifact:
    """``path``'s bytes as the URL resolver leaves them when it fetched them from ``url``."""
    data = path.read_bytes()
    found = Artifact.from_bytes(data, name=path.name)
    found.info.update(source_url=url, source_sha256=hashlib.sha256(data).hexdigest())
    return found


# --- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "listed", "sent"),
    [
        (PUBLIC, (), True),
        ("http://93.184.215.14/photo.png", (), False),  # public, but not https
        ("https://10.0.0.5/photo.png", (), False),  # a private address Venice cannot reach
        ("https://127.0.0.1:8443/photo.png", (), False),
        ("https://10.0.0.5/photo.png", ("10.0.0.5",), True),  # listed: any port
        ("http://127.0.0.1:8080/photo.png", ("127.0.0.1:8080",), True),
        ("http://127.0.0.1:8081/photo.png", ("127.0.0.1:8080",), False),  # another port
        ("http://[::1]:8080/photo.png", ("[::1]:8080",), True),
        ("https://cdn.internal/photo.png", ("cdn.internal",), True),
        ("https://cdn.internal/photo.png", (), False),  # does not resolve: not public
    ],
)
def test_a_url_is_sent_when_public_https_or_listed(url, listed, sent):
    found = from_url(PHOTOS / "logo.png", url)
    assert sendable_url(found, listed) == (url if sent else None)


def test_a_url_is_not_sent_once_the_bytes_changed_or_need_converting():
    changed = from_url(PHOTOS / "logo.png", PUBLIC)
    changed = changed.with_image(changed.image.rotate(90))
    assert sendable_url(changed) is None
    for name in ("hopper.tif", "hopper_orientation_6.jpg", "iss634.gif"):  # TIFF, turned, animated
        assert sendable_url(from_url(PHOTOS / name, PUBLIC)) is None, name
    assert sendable_url(Artifact.from_bytes((PHOTOS / "logo.png").read_bytes(), name="x")) is None


def test_send_urls_from_takes_hosts_and_host_ports_in_one_spelling():
    section = VeniceSection(send_urls_from=("CDN.Example.com.", "127.0.0.1:08080", "[::1]:9000"))
    assert section.send_urls_from == ("cdn.example.com", "127.0.0.1:8080", "[::1]:9000")
    for bad in ("http://cdn.example.com", "cdn example", "::1", "host:99999", "[nonsense]:1"):
        raw = {"venice": {"send_urls_from": [bad]}}
        with pytest.raises(ConfigError, match="send_urls_from"):
            validate_config(raw, REGISTRY)
    assert VeniceSection().send_urls_from == ()  # empty by default: only public https URLs


# --- the URL resolver records where the bytes came from --------------------------------------


def test_the_url_resolver_records_the_final_url_and_the_digest():
    data = (PHOTOS / "logo.png").read_bytes()
    with image_server({"logo.png": data}) as server:
        raw = {"resolvers": {"url": {"allow_private": ["127.0.0.1"]}}}
        runtime = Runtime(
            validate_config(raw, REGISTRY), make_plugin_manager(load_entrypoints=False), REGISTRY
        )
        found = asyncio.run(runtime.resolve(server.url("redirect/logo.png"))).artifact
    assert found.info == {
        "source_url": server.url("logo.png"),  # after the redirect: what holds these bytes
        "source_sha256": hashlib.sha256(data).hexdigest(),
    }


# --- Venice could not use the URL: the bytes, once -------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "message", "refused"),
    [
        (400, "CORRUPTED_IMAGE", "Venice /image/edit answered 400: The image file is", True),
        (400, None, "answered 400: Image is invalid or corrupt", True),
        (
            400,
            None,
            "answered 400: Failed to fetch the image URL (image: Could not download)",
            True,
        ),
        (400, None, "answered 400: Invalid request parameters (prompt: Required)", False),
        (400, "IMAGE_TOO_SMALL", "answered 400: Image dimensions are too small", False),
        (500, None, "answered 500: could not fetch", False),
    ],
)
def test_which_answers_mean_venice_could_not_use_the_url(status, code, message, refused):
    assert url_refused(status, code, message) is refused


def run_edit(image: Artifact, answers: list[httpx.Response]) -> tuple[Any, list[httpx.Request]]:
    """One ``client.edit`` against a transport that answers the image requests in turn."""
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=load_catalog().listing(request.url.params["type"]))
        sent.append(request)
        return answers[len(sent) - 1]

    async def go() -> Any:
        settings = VeniceSection(requests_per_minute=10_000, max_attempts=1)
        async with VeniceClient(
            base_url="https://api.venice.test/api/v1",
            api_key="sk-urls",
            settings=settings,
            transport=httpx.MockTransport(handle),
            persist=False,
        ) as client:
            try:
                return await client.edit(image, EditRequest(prompt="p"))
            except Rejected as exc:
                return exc

    return asyncio.run(go()), sent


def png_answer() -> httpx.Response:
    return httpx.Response(
        200, content=(PHOTOS / "logo.png").read_bytes(), headers={"content-type": "image/png"}
    )


def refusal(message: str) -> httpx.Response:
    return httpx.Response(400, json={"error": message})


def test_a_refused_url_is_sent_once_more_as_bytes_and_only_once():
    image = from_url(PHOTOS / "logo.png", PUBLIC)
    result, sent = run_edit(image, [refusal("Image is invalid or corrupt"), png_answer()])
    assert [r.headers["content-type"].split(";")[0] for r in sent] == [
        "application/json",
        "multipart/form-data",
    ]
    assert json.loads(sent[0].content)["image"] == PUBLIC
    assert image.data in sent[1].content
    assert result.notes["input_sent_as"] == "bytes, after Venice could not fetch the URL"
    with Image.open(PHOTOS / "logo.png") as logo:
        assert result.image.size == logo.size

    again, sent = run_edit(image, [refusal("Image is invalid or corrupt")] * 2)
    assert isinstance(again, Rejected) and len(sent) == 2  # the bytes were refused too: done


def test_other_refusals_and_refusals_of_bytes_are_not_sent_again():
    by_url = from_url(PHOTOS / "logo.png", PUBLIC)
    result, sent = run_edit(by_url, [refusal("Invalid request parameters"), png_answer()])
    assert isinstance(result, Rejected) and len(sent) == 1
    as_bytes = Artifact.from_bytes((PHOTOS / "logo.png").read_bytes(), name="logo.png")
    result, sent = run_edit(as_bytes, [refusal("Image is invalid or corrupt"), png_answer()])
    assert isinstance(result, Rejected) and len(sent) == 1
