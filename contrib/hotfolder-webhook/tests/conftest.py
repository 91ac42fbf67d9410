"""A real HTTP receiver on loopback that checks each signature and records each POST."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "s3cr3t-for-tests-only"
SECRET_ENV = "HOTFOLDER_WEBHOOK_TEST_SECRET"


@dataclass
class Part:
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Post:
    headers: dict[str, str]
    body: bytes
    #: Whether the signature was right, recomputed here from the documented scheme.
    signed: bool
    parts: dict[str, Part] = field(default_factory=dict)


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = Part(
            part.get_filename(), part.get_content_type(), part.get_payload(decode=True)
        )
    return parts


class Receiver:
    """Answers each POST with the next scripted status (then 200) once the signature is right;
    a wrong signature gets 401."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.posts: list[Post] = []
        #: Statuses to answer with, in order, before answering 200.
        self.script: list[int] = []
        #: Extra headers for scripted answers (``Retry-After``).
        self.script_headers: dict[str, str] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver._handle(self, body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/images"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        timestamp = headers.get("x-hotfolder-timestamp", "")
        message = timestamp.encode() + b"." + body
        expected = "sha256=" + hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(expected, headers.get("x-hotfolder-signature", ""))
        parts = parse_multipart(headers.get("content-type", ""), body) if signed else {}
        self.posts.append(Post(headers, body, signed, parts))
        status, extra = 200, {}
        if not signed:
            status = 401
        elif self.script:
            status, extra = self.script.pop(0), self.script_headers
        answer = b"invalid signature" if status == 401 else b"ok"
        handler.send_response(status)
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as running:
        yield running


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET_ENV
