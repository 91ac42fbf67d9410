"""End to end: a ``hotfolder run`` subprocess whose chain uploads to a moto S3 server."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from hotfolder.testing import HotFolder, hot_folder, make_image
from tests.helpers.daemon import Daemon, files_under, wait_for

pytestmark = pytest.mark.e2e


def _config(root: Path, bucket: str, endpoint: str, *, max_attempts: int = 2) -> HotFolder:
    folder = hot_folder(root)
    folder.config_path.write_text(f"""
[daemon]
rescan_seconds = 1
grace_seconds = 10
retry_backoff_seconds = 0.3
max_attempts = {max_attempts}

[[folders]]
path = "inbox"
chain = "up"
quiet_seconds = 0.3

[chains.up]
steps = [{{ op = "resize", width = 32 }}]
[[chains.up.outputs]]
sink = "s3"
bucket = "{bucket}"
endpoint_url = "{endpoint}"
prefix = "done/"
attempts = 1
""")
    return folder


def test_a_dropped_file_ends_up_in_the_bucket(tmp_path, s3_server, s3, bucket, daemon_env):
    folder = _config(tmp_path, bucket, s3_server)
    with Daemon(tmp_path, env=daemon_env) as daemon:
        daemon.start()
        folder.drop("photo.png")
        [row] = daemon.wait_states(done=1)
    assert [o["location"] for o in row["outputs"]] == [f"s3://{bucket}/done/photo.png"]
    body = s3.get_object(Bucket=bucket, Key="done/photo.png")["Body"].read()
    with Image.open(io.BytesIO(body)) as image:
        assert image.size == (32, 24)


def test_a_missing_bucket_fails_the_job_and_keeps_the_original(tmp_path, s3_server, daemon_env):
    folder = _config(tmp_path, "never-created", s3_server)
    with Daemon(tmp_path, env=daemon_env) as daemon:
        daemon.start()
        # not read back after the drop: the daemon may have claimed it already (a CI run did)
        data = make_image(format="PNG")
        folder.drop("photo.png", data)
        [row] = daemon.wait_states(failed=1)
    assert "bucket 'never-created' does not exist" in row["error"]["message"]
    failed = tmp_path / "inbox" / ".hotfolder" / "failed"
    [original] = files_under(failed, "photo*.png")
    assert original.read_bytes() == data  # the job's input is kept, not lost
    error = json.loads(Path(f"{original}.error.json").read_text())
    assert error["class"] == "SinkError"
    assert "s3://never-created/done/photo.png" in error["message"]
    assert "create the bucket" in error["hint"]


def test_a_job_waits_out_a_server_that_is_down(tmp_path, dead_endpoint, bucket, daemon_env):
    """The upload fails while nothing listens, is tried again, and lands once S3 is up.

    The bucket is made before the server at the daemon's endpoint starts (moto's servers in
    one process share their buckets): made after, a retry landing in between met a missing
    bucket, which fails the job for good (seen once in a loaded run)."""
    folder = _config(tmp_path, bucket, dead_endpoint, max_attempts=20)
    with Daemon(tmp_path, env=daemon_env) as daemon:
        daemon.start()
        folder.drop("photo.png")
        wait_for(
            lambda: any("cannot be reached" in ((r["error"] or {}).get("message") or "")
                        for r in daemon.rows()),
            30, "a failed upload",
        )  # fmt: skip
        port = urlsplit(dead_endpoint).port
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            client = boto3.client("s3", endpoint_url=dead_endpoint, region_name="us-east-1")
            [row] = daemon.wait_states(done=1)
            head = client.head_object(Bucket=bucket, Key="done/photo.png")
        finally:
            server.stop()
    assert row["attempts"] >= 2
    assert head["ContentType"] == "image/png"
