"""URL inputs through the real CLI against the sandbox: an image named by URL goes to Venice as
that URL (Venice fetches it; hotfolder does not upload it again), only from hosts Venice can
reach, and once more as bytes when Venice cannot fetch it.

The image server and the sandbox both run on loopback, which is never a public address: the
config lets hotfolder fetch from it (``[resolvers.url] allow_private``) and send its URLs to
Venice (``[venice] send_urls_from``). What Venice received is read from the sandbox's
counters (``GET /_sandbox/stats``) and the image server's.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hotfolder_sandbox import SandboxConfig, start_sandbox
from tests.helpers.cli import hotfolder
from tests.helpers.image_server import ImageServer, image_server

pytestmark = pytest.mark.e2e

SECRET = "vk-test-urls-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SIZE = (640, 480)


def noise_png() -> bytes:
    """A PNG that does not compress (about 900 KB): an upload of it cannot hide."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", SIZE, os.urandom(SIZE[0] * SIZE[1] * 3)).save(buffer, "PNG")
    return buffer.getvalue()


PHOTO = noise_png()


def config(server: ImageServer, *, send_urls: bool = True) -> str:
    listed = f'send_urls_from = ["127.0.0.1:{server.port}"]' if send_urls else ""
    return f"""
[venice]
api_key = {{ env = "VENICE_API_KEY" }}
requests_per_minute = 600
{listed}

[resolvers.url]
allow_private = ["127.0.0.1"]

[chains.edit]
steps = [{{ op = "venice.edit", prompt = "a warm studio light" }}]
outputs = [{{ sink = "folder", path = "out" }}, {{ sink = "sidecar" }}]

[chains.cutout]
steps = [{{ op = "venice.background-remove" }}]
outputs = [{{ sink = "folder", path = "out" }}, {{ sink = "sidecar" }}]
"""


def process(
    project: Path,
    server: ImageServer,
    url: str,
    chain: str,
    sandbox_config: SandboxConfig,
    *,
    send_urls: bool = True,
) -> tuple[int, str, dict[str, Any], dict[str, Any]]:
    """``hotfolder process URL --chain CHAIN`` against a sandbox: exit code, output, the
    sidecar and the sandbox's counters."""
    (project / "hotfolder.toml").write_text(config(server, send_urls=send_urls))
    with start_sandbox(sandbox_config) as sandbox:
        env = {"VENICE_BASE_URL": sandbox.base_url, "VENICE_API_KEY": SECRET}
        run = hotfolder("process", url, "--chain", chain, cwd=project, env=env)
        stats = sandbox.stats()
    sidecars = [json.loads(p.read_text()) for p in (project / "out").glob("*.json")]
    return run.code, run.output, (sidecars[0] if sidecars else {}), stats


@pytest.mark.parametrize(
    ("chain", "endpoint"), [("edit", "/image/edit"), ("cutout", "/image/background-remove")]
)
def test_a_url_input_goes_to_venice_as_its_url(tmp_path, chain, endpoint):
    with image_server({"photo.png": PHOTO}) as server:
        code, output, sidecar, stats = process(
            tmp_path, server, server.url("photo.png"), chain, SandboxConfig(requests_per_minute=600)
        )
        fetched = server.gets["/photo.png"]
    assert code == 0, output[-2000:]
    assert fetched == 2  # hotfolder's resolver, then the sandbox: hotfolder never uploaded it
    assert stats["requests"][endpoint] == {"200": 1}
    assert stats["bytes_received"][endpoint] < 1_000 < len(PHOTO) // 100  # a JSON body, no image
    (step,) = sidecar["steps"]
    assert step["notes"]["input_sent_as"] == "url"
    assert step["cost_usd"] == pytest.approx(stats["charged_usd"])
    with Image.open(sidecar["output"]["file"]) as result:  # Venice's work on the fetched image
        if chain == "edit":
            assert max(result.size) == 1024  # the 1K tier
        else:
            assert (result.size, result.mode) == (SIZE, "RGBA")


def test_without_send_urls_from_a_loopback_url_is_uploaded_as_bytes(tmp_path):
    with image_server({"photo.png": PHOTO}) as server:
        code, output, sidecar, stats = process(
            tmp_path,
            server,
            server.url("photo.png"),
            "edit",
            SandboxConfig(requests_per_minute=600),
            send_urls=False,
        )
        fetched = server.gets["/photo.png"]
    assert code == 0, output[-2000:]
    assert fetched == 1  # hotfolder only: a private URL is never handed to Venice by default
    assert stats["bytes_received"]["/image/edit"] > len(PHOTO)
    assert sidecar["steps"][0]["notes"]["input_sent_as"] == "bytes"


@pytest.mark.parametrize(
    ("path", "sandbox_config"),
    [
        ("once/photo.png", {}),  # the URL is gone by the time Venice fetches it: 404
        ("photo.png", {"fetch_image_urls": False}),  # Venice does not fetch at all
    ],
    ids=["url-gone", "no-fetching"],
)
def test_when_venice_cannot_fetch_the_url_the_bytes_go_once_more(tmp_path, path, sandbox_config):
    with image_server({"photo.png": PHOTO}) as server:
        code, output, sidecar, stats = process(
            tmp_path,
            server,
            server.url(path),
            "edit",
            SandboxConfig(requests_per_minute=600, **sandbox_config),
        )
    assert code == 0, output[-2000:]
    assert stats["requests"]["/image/edit"] == {"400": 1, "200": 1}
    assert stats["bytes_received"]["/image/edit"] > len(PHOTO)  # the retry carried the bytes
    assert stats["paid_total"] == 1
    (step,) = sidecar["steps"]
    assert step["notes"]["input_sent_as"] == "bytes, after Venice could not fetch the URL"
    assert step["cost_usd"] == pytest.approx(stats["charged_usd"])  # charged once
    assert "sending the bytes instead" in output
    with Image.open(sidecar["output"]["file"]) as result:
        assert max(result.size) == 1024
