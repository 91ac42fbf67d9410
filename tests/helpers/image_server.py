"""A loopback HTTP server of test images that counts who fetched what.

``/NAME`` serves ``images[NAME]``; ``/once/NAME`` serves it the first time only and answers
404 after that (a URL that expires, or that only the first fetcher can reach);
``/redirect/NAME`` redirects to ``/NAME``. ``gets`` counts the GETs per path.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ImageServer:
    images: dict[str, bytes]
    base_url: str = ""
    port: int = 0
    gets: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"


@contextmanager
def image_server(images: dict[str, bytes]) -> Iterator[ImageServer]:
    """Serve ``images`` on 127.0.0.1 for the ``with`` block."""
    served = ImageServer(images)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            with lock:
                served.gets[self.path] += 1
                count = served.gets[self.path]
            name = self.path.removeprefix("/once/").removeprefix("/redirect/").lstrip("/")
            if self.path.startswith("/redirect/"):
                self.send_response(302)
                self.send_header("Location", f"/{name}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = served.images.get(name)
            if body is None or (self.path.startswith("/once/") and count > 1):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    served.port = server.server_address[1]
    served.base_url = f"http://127.0.0.1:{served.port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
