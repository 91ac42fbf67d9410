"""SSRF protection: private targets are refused before any connection; allowed ones are pinned."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotfolder import netsafe
from hotfolder.errors import InputError, UnsafeInputError

PHOTO = Path(__file__).resolve().parents[3] / "shared/corpus/photos/hopper.jpg"
LOOPBACK = ["127.0.0.1/32"]


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        route = getattr(self, "route_" + self.path.strip("/").split(".")[0].replace("-", "_"), None)
        if route is None:
            self.send_error(404)
            return
        route()

    def _send(self, body: bytes, content_type: str, length: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_photo(self) -> None:
        self._send(PHOTO.read_bytes(), "image/jpeg")

    def route_page(self) -> None:
        self._send(b"<html></html>", "text/html; charset=utf-8")

    def route_big(self) -> None:
        self.close_connection = True
        self._send(b"\xff" * 5000, "image/jpeg", length=False)

    def route_big_declared(self) -> None:
        self._send(b"\xff" * 5000, "image/jpeg")

    def route_to_metadata(self) -> None:
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.end_headers()

    def route_to_photo(self) -> None:
        self.send_response(301)
        self.send_header("Location", "/photo.jpg")
        self.end_headers()

    def route_to_file(self) -> None:
        self.send_response(302)
        self.send_header("Location", "file:///etc/passwd")
        self.end_headers()

    def route_loop(self) -> None:
        self.send_response(302)
        self.send_header("Location", "/loop")
        self.end_headers()

    def route_slow(self) -> None:
        """Headers at once, then one byte every 0.1 s: only a total time cap stops it."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            try:
                self.wfile.write(b"\xff")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str]] = []
        self.stopping = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.stopping.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def fetch(url: str, **kwargs: Any) -> netsafe.Fetched:
    options: dict[str, Any] = {"max_bytes": 10_000_000, "timeout": 5.0} | kwargs
    return asyncio.run(netsafe.fetch(url, **options))


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names in the returned dict resolve to the listed addresses; a list is consumed per call."""
    answers: dict[str, list[str]] = {}
    calls: dict[str, int] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        calls[host] = calls.get(host, 0) + 1
        address = answers[host][min(calls[host], len(answers[host])) - 1]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    answers["__calls__"] = calls  # type: ignore[assignment]
    return answers


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/photo.jpg",
        "http://localhost:{port}/photo.jpg",
        "http://0x7f000001:{port}/photo.jpg",
        "http://2130706433:{port}/photo.jpg",
        "http://127.1:{port}/photo.jpg",
        "http://[::1]:{port}/photo.jpg",
        "http://[::ffff:127.0.0.1]:{port}/photo.jpg",
        "http://10.1.2.3/photo.jpg",
        "http://192.168.0.1/photo.jpg",
        "http://100.64.0.1/photo.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:{port}/photo.jpg",
        "http://[64:ff9b::7f00:1]/photo.jpg",
        "http://[2002:7f00:1::1]/photo.jpg",
        "http://224.0.0.1/photo.jpg",
    ],
)
def test_private_targets_are_refused_without_a_request(server: _Server, url: str) -> None:
    with pytest.raises(UnsafeInputError, match="non-public address"):
        fetch(url.format(port=server.port))
    assert server.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://x/"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(UnsafeInputError, match="scheme is not allowed"):
        fetch(url)


def test_a_name_that_resolves_to_a_private_address_is_refused(
    server: _Server, fake_dns: dict[str, list[str]]
) -> None:
    fake_dns["images.example.com"] = ["127.0.0.1"]
    with pytest.raises(UnsafeInputError, match=r"images\.example\.com"):
        fetch(f"http://images.example.com:{server.port}/photo.jpg")
    assert server.requests == []


def test_one_private_address_among_public_ones_is_enough_to_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    infos = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: infos)
    with pytest.raises(UnsafeInputError, match=r"10\.0\.0\.7"):
        netsafe.check_url("https://mixed.example.com/a.jpg")


def test_public_addresses_pass_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    infos = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700::1111", 443, 0, 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: infos)
    assert [str(a) for a in netsafe.check_url("https://cdn.example.com/a.jpg")] == [
        "2606:4700::1111"
    ]


def test_an_allowed_loopback_server_serves_the_image(server: _Server) -> None:
    fetched = fetch(f"{server.base}/photo.jpg", allow_private=LOOPBACK)
    assert fetched.data == PHOTO.read_bytes()
    assert fetched.media_type == "image/jpeg"
    assert server.requests == [("/photo.jpg", f"127.0.0.1:{server.port}")]


def test_the_checked_address_is_pinned_and_the_host_name_kept(
    server: _Server, fake_dns: dict[str, list[str]]
) -> None:
    # The first answer is checked; a second lookup (rebinding) would give an address that the
    # check refuses. The request must go to the first address with the name in Host.
    fake_dns["rebind.example"] = ["127.0.0.1", "10.9.9.9"]
    fetched = fetch(f"http://rebind.example:{server.port}/photo.jpg", allow_private=LOOPBACK)
    assert fetched.data == PHOTO.read_bytes()
    assert server.requests == [("/photo.jpg", f"rebind.example:{server.port}")]
    assert fake_dns["__calls__"]["rebind.example"] == 1  # type: ignore[index]


def test_https_keeps_the_host_name_for_sni_and_certificate_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[httpx.Request] = []

    async def capture(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=b"png")

    infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: infos)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", capture)
    assert fetch("https://cdn.example.com/a.png").data == b"png"
    (request,) = seen
    assert request.url.host == "93.184.216.34"
    assert request.headers["Host"] == "cdn.example.com"
    assert request.extensions["sni_hostname"] == "cdn.example.com"


def test_a_redirect_to_a_private_address_is_refused(server: _Server) -> None:
    with pytest.raises(UnsafeInputError, match=r"169\.254\.169\.254"):
        fetch(f"{server.base}/to-metadata", allow_private=LOOPBACK)
    assert [path for path, _ in server.requests] == ["/to-metadata"]


def test_a_redirect_to_another_scheme_is_refused(server: _Server) -> None:
    with pytest.raises(UnsafeInputError, match="scheme"):
        fetch(f"{server.base}/to-file", allow_private=LOOPBACK)


def test_redirects_are_followed_and_counted(server: _Server) -> None:
    fetched = fetch(f"{server.base}/to-photo", allow_private=LOOPBACK)
    assert fetched.url == f"{server.base}/photo.jpg"
    with pytest.raises(InputError, match="more than 3 redirects"):
        fetch(f"{server.base}/loop", allow_private=LOOPBACK, max_redirects=3)
    assert len(server.requests) == 2 + 4


@pytest.mark.parametrize("route", ["big", "big-declared"])
def test_a_body_over_max_bytes_is_cut(server: _Server, route: str) -> None:
    with pytest.raises(InputError, match="over the limit of 1000"):
        fetch(f"{server.base}/{route}", allow_private=LOOPBACK, max_bytes=1000)


def test_a_slow_server_hits_the_total_time_cap(server: _Server) -> None:
    started = time.monotonic()
    with pytest.raises(InputError, match="within 1 s"):
        fetch(f"{server.base}/slow", allow_private=LOOPBACK, timeout=1.0)
    assert time.monotonic() - started < 2.5


def test_a_wrong_content_type_is_refused(server: _Server) -> None:
    with pytest.raises(InputError, match="text/html"):
        fetch(f"{server.base}/page", allow_private=LOOPBACK, media_types=("image/",))


def test_an_http_error_status_is_an_input_error(server: _Server) -> None:
    with pytest.raises(InputError, match="HTTP 404"):
        fetch(f"{server.base}/missing.jpg", allow_private=LOOPBACK)


def test_allow_private_by_host_name(server: _Server) -> None:
    fetched = fetch(f"http://localhost:{server.port}/photo.jpg", allow_private=["localhost"])
    assert fetched.data == PHOTO.read_bytes()


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "-bad-.example"])
def test_bad_allow_private_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a network"):
        netsafe.AllowList.parse([entry])
