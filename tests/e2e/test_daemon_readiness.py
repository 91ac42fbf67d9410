"""Files are taken only when complete: a slow writer that pauses, an rsync copy and a curl
download into the watched folder are each processed once, from their full bytes."""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.daemon import FAST_DAEMON, Daemon, files_under

pytestmark = pytest.mark.e2e

CONFIG = (
    FAST_DAEMON
    + """
[[folders]]
path = "inbox"
chain = "small"
quiet_seconds = 0.3

[chains.small]
steps = [{ op = "resize", width = 64, height = 64, mode = "fit" }]
outputs = [{ sink = "folder", path = "out", name = "{stem}.{ext}" }]
"""
)

#: Writes argv[2] to argv[1] in chunks, with one pause far longer than the quiet period.
SLOW_WRITER = """
import sys, time
data = open(sys.argv[2], "rb").read()
with open(sys.argv[1], "wb") as f:
    step = len(data) // 20
    for i in range(0, len(data), step):
        f.write(data[i:i + step])
        f.flush()
        time.sleep(1.5 if i == step * 10 else 0.05)
"""


def _big_jpeg(path: Path, seed: int) -> bytes:
    image = Image.effect_noise((1400, 1000), 60 + seed).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def project(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "src").mkdir()
    return tmp_path


def _archived_sha(project: Path, name: str) -> str:
    [archived] = [
        p for p in files_under(project / "inbox" / ".hotfolder" / "archive") if p.name == name
    ]
    return _sha(archived.read_bytes())


def test_slow_writer_with_a_long_pause_is_taken_once_complete(project):
    data = _big_jpeg(project / "src" / "slow.jpg", 1)
    with Daemon(project).start() as daemon:
        target, source = project / "inbox" / "slow.jpg", project / "src" / "slow.jpg"
        subprocess.run(
            [sys.executable, "-c", SLOW_WRITER, str(target), str(source)], check=True, timeout=60
        )
        [row] = daemon.wait_states(done=1)
    assert row["name"] == "slow.jpg" and row["attempts"] == 1
    assert row["key"].split(":")[0] == _sha(data)
    assert _archived_sha(project, "slow.jpg") == _sha(data)
    with Image.open(project / "out" / "slow.jpg") as im:
        assert im.size == (64, 46)


@pytest.mark.skipif(
    shutil.which("rsync") is None, reason="rsync is not installed (make system-tools)"
)
def test_rsync_copy_is_taken_once(project):
    data = _big_jpeg(project / "src" / "synced.jpg", 2)
    with Daemon(project).start() as daemon:
        source, target = project / "src" / "synced.jpg", f"{project / 'inbox'}/"
        subprocess.run(["rsync", "--bwlimit=2000", str(source), target], check=True, timeout=60)
        [row] = daemon.wait_states(done=1)
        time.sleep(1.5)  # a rescan or two later, still one job
        assert len(daemon.rows()) == 1
    assert row["name"] == "synced.jpg"
    assert _archived_sha(project, "synced.jpg") == _sha(data)


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        step = len(self.payload) // 10
        for i in range(0, len(self.payload), step):
            self.wfile.write(self.payload[i : i + step])
            self.wfile.flush()
            time.sleep(1.0 if i == step * 5 else 0.1)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (make system-tools)"
)
def test_curl_download_into_the_folder_is_taken_once_complete(project):
    data = _big_jpeg(project / "src" / "download.jpg", 3)
    handler = type("Handler", (_SlowHandler,), {"payload": data})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Daemon(project).start() as daemon:
            url = f"http://127.0.0.1:{server.server_address[1]}/download.jpg"
            subprocess.run(
                ["curl", "-sS", "--fail", "-o", str(project / "inbox" / "download.jpg"), url],
                check=True, timeout=60,
            )  # fmt: skip
            [row] = daemon.wait_states(done=1)
    finally:
        server.shutdown()
        server.server_close()
    assert row["attempts"] == 1
    assert _archived_sha(project, "download.jpg") == _sha(data)
