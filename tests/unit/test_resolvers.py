"""The built-in resolvers: path, url, data and manifest, through a real minimal Runtime."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hotfolder import JobInput
from hotfolder.config import validate_config
from hotfolder.errors import ConfigError, InputError, UnsafeInputError
from hotfolder.naming import url_file_name
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder_plugins.resolvers import looks_like_base64_image

PHOTOS = Path(__file__).resolve().parents[3] / "shared/corpus/photos"
JPEG = PHOTOS / "hopper.jpg"
PNG = PHOTOS / "logo.png"
OTHERS = ("hotfolder_plugins.local_ops", "hotfolder_plugins.venice_ops")


def make_runtime(raw: dict[str, Any] | None = None) -> Runtime:
    pm = make_plugin_manager(OTHERS, load_entrypoints=False)
    registry = build_registry(pm)
    return Runtime(validate_config(raw or {}, registry), pm, registry)


def resolve(ref: str, base_dir: Path | None = None, raw: dict[str, Any] | None = None) -> JobInput:
    return asyncio.run(make_runtime(raw).resolve(ref, base_dir=base_dir))


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "photo.jpg"
    path.parent.mkdir()
    path.write_bytes(JPEG.read_bytes())
    return path


def test_resolvers_are_asked_in_priority_order() -> None:
    assert [r.name for r in make_runtime().resolvers] == ["data", "manifest", "url", "path"]


# --- path -------------------------------------------------------------------------------------


def test_path_reads_a_file(photo: Path) -> None:
    job_input = resolve(str(photo))
    assert job_input.artifact.data == JPEG.read_bytes()
    assert job_input.artifact.name == "photo.jpg"
    assert job_input.source == str(photo)
    assert job_input.base_dir == photo.parent


def test_path_takes_relative_paths_from_base_dir(photo: Path) -> None:
    job_input = resolve("photo.jpg", base_dir=photo.parent)
    assert job_input.source == str(photo)
    assert job_input.artifact.format == "JPEG"


def test_path_refuses_a_symlink(photo: Path) -> None:
    link = photo.with_name("link.jpg")
    os.symlink(photo, link)
    with pytest.raises(UnsafeInputError, match=r"link\.jpg is a symbolic link"):
        resolve(str(link))


def test_path_follows_a_symlink_only_when_told(photo: Path) -> None:
    link = photo.with_name("link.jpg")
    os.symlink(photo, link)
    raw = {"resolvers": {"path": {"follow_symlinks": True}}}
    assert resolve(str(link), raw=raw).artifact.data == JPEG.read_bytes()


def test_path_refuses_a_hard_link(photo: Path) -> None:
    os.link(photo, photo.with_name("second-name.jpg"))
    with pytest.raises(UnsafeInputError, match=r"photo\.jpg has 2 hard links"):
        resolve(str(photo))
    raw = {"resolvers": {"path": {"allow_hardlinks": True}}}
    assert resolve(str(photo), raw=raw).artifact.format == "JPEG"


def test_path_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeInputError, match=r"pipe\.jpg is a named pipe \(FIFO\)"):
        resolve(str(fifo))


def test_path_refuses_a_folder(tmp_path: Path) -> None:
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(UnsafeInputError, match="is a folder"):
        resolve(str(tmp_path / "folder.jpg"))


def test_path_enforces_the_byte_cap_before_reading(photo: Path) -> None:
    raw = {"imaging": {"max_bytes": 1000}}
    with pytest.raises(InputError, match="over the limit of 1000"):
        resolve(str(photo), raw=raw)


def test_path_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        resolve(str(tmp_path / "nope.jpg"))


def test_path_refuses_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(InputError, match=r"notes\.jpg"):
        resolve(str(tmp_path / "notes.jpg"))


# --- url --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path == "/to-private":
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/x.jpg")
            self.end_headers()
            return
        body = JPEG.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Handler", (_Handler,), {"hits": hits})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", hits
    srv.shutdown()
    srv.server_close()
    thread.join(5)


ALLOW_LOOPBACK = {"resolvers": {"url": {"allow_private": ["127.0.0.1/32"]}}}


def test_url_fetches_from_an_allowed_local_server(server: tuple[str, list[str]]) -> None:
    base, hits = server
    job_input = resolve(f"{base}/images/cat%20photo.jpg?size=large", raw=ALLOW_LOOPBACK)
    assert job_input.artifact.data == JPEG.read_bytes()
    assert job_input.artifact.name == "cat photo.jpg"
    assert job_input.source == f"{base}/images/cat%20photo.jpg?size=large"
    assert hits == ["/images/cat%20photo.jpg?size=large"]


def test_url_refuses_loopback_by_default(server: tuple[str, list[str]]) -> None:
    base, hits = server
    with pytest.raises(UnsafeInputError, match="non-public"):
        resolve(f"{base}/photo.jpg")
    assert hits == []


def test_url_refuses_a_redirect_to_a_private_address(server: tuple[str, list[str]]) -> None:
    base, hits = server
    with pytest.raises(UnsafeInputError, match=r"10\.0\.0\.1"):
        resolve(f"{base}/to-private", raw=ALLOW_LOOPBACK)
    assert hits == ["/to-private"]


def test_url_byte_cap_follows_the_imaging_limit(server: tuple[str, list[str]]) -> None:
    base, _ = server
    raw = {**ALLOW_LOOPBACK, "imaging": {"max_bytes": 1000}}
    with pytest.raises(InputError, match="over the limit of 1000"):
        resolve(f"{base}/photo.jpg", raw=raw)


@pytest.mark.parametrize("ref", ["file:///etc/passwd", "ftp://example.com/a.jpg"])
def test_url_refuses_other_schemes(ref: str) -> None:
    with pytest.raises(UnsafeInputError, match="scheme is not allowed"):
        resolve(ref)


def test_url_params_are_checked_when_the_config_loads() -> None:
    with pytest.raises(ConfigError, match="neither a network"):
        make_runtime({"resolvers": {"url": {"allow_private": ["not a host"]}}})


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://x.test/a/b/photo.png", "photo.png"),
        ("https://x.test/", "download"),
        ("https://x.test/dl/..", "download"),
        ("https://x.test/a/%2e%2e%2fetc%2fpasswd", "passwd"),
        ("https://x.test/a/..%5c..%5cwin.ini", "_.._win.ini"),
    ],
)
def test_url_file_names_are_safe(url: str, name: str) -> None:
    assert url_file_name(url) == name


# --- data -------------------------------------------------------------------------------------


def test_data_uri_of_a_real_photo() -> None:
    encoded = base64.b64encode(PNG.read_bytes()).decode()
    job_input = resolve(f"data:image/png;base64,{encoded}")
    assert job_input.artifact.data == PNG.read_bytes()
    assert job_input.artifact.format == "PNG"
    assert job_input.source.startswith("data:image/png;base64 (")


def test_bare_base64_of_a_real_photo() -> None:
    encoded = base64.b64encode(JPEG.read_bytes()).decode()
    job_input = resolve(encoded)
    assert job_input.artifact.data == JPEG.read_bytes()
    assert job_input.artifact.name.startswith("data-")


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("data:image/png;base64,not*base64!", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"hello, no image").decode(), "not an image"),
        ("data:text/plain;base64,aGVsbG8=", "not an image"),
        ("data:image/png,%89PNG", "only base64"),
        ("data:image/png;base64", "no ','"),
    ],
)
def test_data_garbage_is_an_input_error(ref: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        resolve(ref)


def test_data_size_cap_applies_before_decoding() -> None:
    encoded = base64.b64encode(JPEG.read_bytes()).decode()
    with pytest.raises(InputError, match="over the limit"):
        resolve(f"data:image/jpeg;base64,{encoded}", raw={"imaging": {"max_bytes": 100}})


@pytest.mark.parametrize(
    "ref",
    [
        "/home/user/photos/holiday-2024/IMG_0001.jpg",
        "/" + "a" * 71,
        "photos/" + "B" * 61,
        "x" * 64,
        "C:\\Users\\me\\Pictures\\" + "a" * 60,
        base64.b64encode(JPEG.read_bytes()).decode()[:-1],
    ],
)
def test_bare_base64_does_not_misfire_on_paths(ref: str) -> None:
    assert not looks_like_base64_image(ref)
    assert next(r for r in make_runtime().resolvers if r.accepts(ref)).name == "path"


def test_bare_base64_can_be_switched_off() -> None:
    encoded = base64.b64encode(JPEG.read_bytes()).decode()
    runtime = make_runtime({"resolvers": {"data": {"allow_bare_base64": False}}})
    assert next(r for r in runtime.resolvers if r.accepts(encoded)).name == "path"


# --- manifest ---------------------------------------------------------------------------------


@pytest.fixture
def job_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    (folder / "assets").mkdir(parents=True)
    (folder / "front.jpg").write_bytes(JPEG.read_bytes())
    (folder / "assets" / "backdrop.png").write_bytes(PNG.read_bytes())
    return folder


def test_toml_manifest(job_folder: Path) -> None:
    manifest = job_folder / "set.job.toml"
    manifest.write_text(
        'images = ["front.jpg", "assets/backdrop.png", "https://example.com/logo.png"]\n'
        'chain = "product"\n'
        "[overrides.1]\n"
        'prompt = "put it on the backdrop"\n'
    )
    job_input = resolve(str(manifest))
    assert job_input.artifact.data == JPEG.read_bytes()
    assert job_input.source == str(manifest)
    assert job_input.base_dir == job_folder
    assert job_input.chain == "product"
    assert job_input.overrides == {1: {"prompt": "put it on the backdrop"}}
    assert job_input.extra_refs == [
        str(job_folder / "assets" / "backdrop.png"),
        "https://example.com/logo.png",
    ]


def test_json_manifest_relative_to_base_dir(job_folder: Path) -> None:
    manifest = job_folder / "set.job.json"
    data = {"images": ["assets/backdrop.png", "front.jpg"], "overrides": {"0": {"scale": 2}}}
    manifest.write_text(json.dumps(data))
    job_input = resolve("set.job.json", base_dir=job_folder)
    assert job_input.artifact.format == "PNG"
    assert job_input.chain is None
    assert job_input.overrides == {0: {"scale": 2}}
    assert job_input.extra_refs == [str(job_folder / "front.jpg")]


def test_manifest_unknown_key_says_did_you_mean(job_folder: Path) -> None:
    manifest = job_folder / "typo.job.toml"
    manifest.write_text('imgaes = ["front.jpg"]\n')
    with pytest.raises(ConfigError) as caught:
        resolve(str(manifest))
    text = str(caught.value)
    assert str(manifest) in text
    assert "imgaes: unknown key; did you mean 'images'?" in text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("images = []\n", "images"),
        ('images = ["front.jpg"]\noverrides = { "-1" = { a = 1 } }\n', "count from 0"),
        ('images = ["front.jpg"]\noverrides = { "first" = { a = 1 } }\n', "overrides.first"),
        ('images = ["other.job.toml"]\n', "cannot name another"),
        ("images = [\n", "not a valid job manifest"),
    ],
)
def test_manifest_errors_name_the_file(job_folder: Path, content: str, match: str) -> None:
    manifest = job_folder / "bad.job.toml"
    manifest.write_text(content)
    with pytest.raises(ConfigError, match=match) as caught:
        resolve(str(manifest))
    assert str(manifest) in str(caught.value)


@pytest.mark.parametrize("image", ["../outside.jpg", "/etc/hostname", "link/outside.jpg"])
def test_manifest_images_must_stay_in_its_folder(job_folder: Path, image: str) -> None:
    outside = job_folder.parent / "outside.jpg"
    outside.write_bytes(JPEG.read_bytes())
    os.symlink(job_folder.parent, job_folder / "link")
    manifest = job_folder / "escape.job.toml"
    manifest.write_text(f'images = ["front.jpg", "{image}"]\n')
    with pytest.raises(UnsafeInputError, match="outside the manifest's folder"):
        resolve(str(manifest))


def test_manifest_first_image_goes_through_the_path_checks(job_folder: Path) -> None:
    os.symlink(job_folder / "front.jpg", job_folder / "alias.jpg")
    manifest = job_folder / "alias.job.toml"
    manifest.write_text('images = ["alias.jpg"]\n')
    with pytest.raises(UnsafeInputError, match="symbolic link"):
        resolve(str(manifest))


def test_a_claimed_manifest_is_named_and_read_from_where_it_was_dropped(job_folder: Path) -> None:
    """The daemon reads a claimed manifest from ``processing/`` under another name; its origin
    names it and anchors its images, which must stay inside the folder it was dropped in."""
    claimed = job_folder / ".hotfolder/processing/20261201T000000-00000000.set.job.toml"
    claimed.parent.mkdir(parents=True)
    claimed.write_text('images = ["front.jpg", "assets/backdrop.png"]\n')
    origin = job_folder / "set.job.toml"
    job_input = asyncio.run(make_runtime().resolve(str(claimed), origin=origin))
    assert job_input.source == str(claimed)
    assert job_input.base_dir == job_folder
    assert job_input.artifact.name == "front.jpg"
    assert job_input.extra_refs == [str(job_folder / "assets" / "backdrop.png")]

    claimed.write_text('images = ["front.jpg", "assets/gone.png"]\n')
    with pytest.raises(InputError) as caught:
        asyncio.run(make_runtime().resolve(str(claimed), origin=origin))
    assert str(caught.value).startswith(f"{origin}: image 'assets/gone.png' is not at ")
    assert "drop the manifest last" in (caught.value.hint or "")

    claimed.write_text('images = ["../outside.jpg"]\n')
    with pytest.raises(UnsafeInputError, match=f"{origin}: image .* outside the manifest's"):
        asyncio.run(make_runtime().resolve(str(claimed), origin=origin))

    claimed.write_text('imgaes = ["front.jpg"]\n')
    with pytest.raises(ConfigError) as config_error:
        asyncio.run(make_runtime().resolve(str(claimed), origin=origin))
    assert str(origin) in str(config_error.value) and ".hotfolder" not in str(config_error.value)
