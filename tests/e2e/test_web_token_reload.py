"""Changing the dashboard's token by a reload: the real daemon serving it (``hotfolder run
--web``), its ``[web] token`` in a file, asked for with a real ``curl``. After SIGHUP the new
token is asked for at once: the old one, and a browser session signed in with it, get 401. A
token that cannot be used (its file emptied) is refused with its reason and the last good one
stays; a new ``[web] listen`` is told to wait for a restart. No token reaches the log."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers.daemon import FAST_DAEMON, Daemon, wait_for
from tests.helpers.fleet import free_port

pytestmark = pytest.mark.e2e

FIRST, SECOND = "first-token-7f3a9c2e51d8", "second-token-0b6e4d1a93f7"

CONFIG = (
    FAST_DAEMON
    + """
[web]
token = {{ file = "{token_file}" }}
{listen}

[[folders]]
path = "inbox"
quiet_seconds = 0.2
chain = "web"

[chains.web]
steps = [{{ op = "convert", format = "png" }}]
outputs = [{{ sink = "folder", path = "out" }}]
"""
)


def _status(url: str, *args: str) -> int:
    """The HTTP status curl got for ``url``."""
    got = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args, url],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return int(got.stdout)


def _sign_in(base: str, token: str, jar: Path) -> int:
    """POST the login form as a browser does; the session cookie lands in ``jar``."""
    return _status(f"{base}/login", "-c", str(jar), "--data-urlencode", f"token={token}")


def test_a_reload_changes_the_token_the_dashboard_asks_for(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    token_file = tmp_path / "web-token"
    token_file.write_text(FIRST + "\n")
    config = tmp_path / "hotfolder.toml"
    config.write_text(CONFIG.format(token_file=token_file, listen=""))
    (tmp_path / "inbox").mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    status_url = f"{base}/api/status"
    jar = tmp_path / "cookies"
    with Daemon(tmp_path, args=("--web", f"127.0.0.1:{port}")).start() as daemon:
        wait_for(lambda: "dashboard: http" in daemon.log(), 30, "the dashboard")
        assert _status(status_url) == 401
        assert _status(status_url, "-H", f"Authorization: Bearer {FIRST}") == 200
        assert _sign_in(base, FIRST, jar) == 303
        assert _status(status_url, "-b", str(jar)) == 200  # the browser's session

        token_file.write_text(SECOND + "\n")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "[web] token changed" in daemon.log(), 30, "the new token")
        assert _status(status_url, "-H", f"Authorization: Bearer {FIRST}") == 401
        assert _status(status_url, "-b", str(jar)) == 401  # signed in with the old token
        assert _status(status_url, "-H", f"Authorization: Bearer {SECOND}") == 200
        assert _sign_in(base, FIRST, jar) == 401
        assert _sign_in(base, SECOND, jar) == 303
        assert _status(status_url, "-b", str(jar)) == 200

        # An emptied token file: refused with its reason; the last good token stays.
        token_file.write_text("")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "cannot be used" in daemon.log(), 30, "the refusal")
        assert str(token_file) in daemon.log()
        assert _status(status_url) == 401
        assert _status(status_url, "-H", f"Authorization: Bearer {SECOND}") == 200

        # A new address: the dashboard stays where it is until a restart, and says so.
        token_file.write_text(SECOND + "\n")
        config.write_text(CONFIG.format(token_file=token_file, listen='listen = "127.0.0.1:1"'))
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "stays on" in daemon.log(), 30, "the listen warning")
        assert f"stays on {base}" in daemon.log()
        assert _status(status_url, "-H", f"Authorization: Bearer {SECOND}") == 200
        log = daemon.log()
    assert FIRST not in log and SECOND not in log
