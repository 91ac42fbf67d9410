"""The webhook sink through the real daemon: ``hotfolder run`` as a subprocess, a file dropped
into its inbox, a real receiver on loopback; and what a failure leaves behind."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest
from PIL import Image

from hotfolder.testing import HotFolder, hot_folder
from tests.helpers.daemon import Daemon, files_under

pytestmark = pytest.mark.e2e


def setup(root: Path, url: str, secret_env: str) -> HotFolder:
    folder = hot_folder(root)
    folder.write_config(
        [{"op": "resize", "width": 40, "height": 40}],
        [
            {
                "sink": "webhook",
                "url": url,
                "secret": {"env": secret_env},
                "allow_private": ["127.0.0.1"],
                "max_attempts": 2,
                "backoff_seconds": 0,
                "timeout_seconds": 2,
            }
        ],
        folder={"quiet_seconds": 0.2},
        daemon={"rescan_seconds": 1, "retry_backoff_seconds": 0.2, "max_attempts": 2},
    )
    return folder


def failed_with(folder: HotFolder, name: str) -> dict[str, object]:
    """The original is kept in the failed place; its ``.error.json`` says why."""
    failed = folder.inbox / ".hotfolder" / "failed"
    assert [p.name for p in files_under(failed)] == [name, name + ".error.json"]
    return json.loads((failed / (name + ".error.json")).read_text())


def test_the_daemon_posts_a_dropped_file_signed(tmp_path, receiver, secret_env):
    folder = setup(tmp_path, receiver.url, secret_env)
    with Daemon(tmp_path, env={secret_env: receiver.secret}) as daemon:
        daemon.start()
        folder.drop("photo.jpg")
        [row] = daemon.wait_states(done=1, timeout=30)

    [sent] = receiver.posts
    assert sent.signed
    assert sent.headers["idempotency-key"] == row["id"]
    with Image.open(io.BytesIO(sent.parts["image"].data)) as im:
        assert (im.format, im.size) == ("JPEG", (40, 30))
    metadata = json.loads(sent.parts["metadata"].data)
    assert metadata["job_id"] == row["id"] and metadata["chain"] == "test"
    assert [o["location"] for o in row["outputs"]] == [receiver.url]


def test_with_the_receiver_down_the_job_fails_with_the_original_kept(tmp_path, secret_env):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    folder = setup(tmp_path, url, secret_env)
    with Daemon(tmp_path, env={secret_env: "any"}) as daemon:
        daemon.start()
        folder.drop("photo.jpg")
        daemon.wait_states(failed=1, timeout=30)
        log = daemon.log()

    error = failed_with(folder, "photo.jpg")
    assert error["class"] == "WebhookUnavailable"
    assert url in str(error["message"]) and "cannot connect" in str(error["message"])
    assert error["attempts"] == 2, "a retryable failure is tried again by the daemon"
    assert "attempt 1/2, trying again" in log


def test_a_wrong_secret_fails_the_job_at_once_with_the_fix(tmp_path, receiver, secret_env):
    folder = setup(tmp_path, receiver.url, secret_env)
    with Daemon(tmp_path, env={secret_env: "not-the-receivers-secret"}) as daemon:
        daemon.start()
        folder.drop("photo.jpg")
        daemon.wait_states(failed=1, timeout=30)
        log = daemon.log()

    assert len(receiver.posts) == 1 and not receiver.posts[0].signed
    error = failed_with(folder, "photo.jpg")
    assert error["class"] == "SinkError" and "401" in str(error["message"])
    assert secret_env in str(error["hint"])
    assert "not-the-receivers-secret" not in log
