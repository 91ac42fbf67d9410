"""A real S3-compatible server (moto) on loopback, test credentials, and bucket helpers."""

from __future__ import annotations

import io
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

#: Environment variables through which boto3 could find credentials or a profile.
AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def aws_env(root: Path) -> dict[str, str]:
    """Variables that pin boto3 to test credentials: empty shared files, no instance
    metadata, a fixed region."""
    config, shared = root / "aws-config", root / "aws-credentials"
    config.touch()
    shared.touch()
    return {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(shared),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


@pytest.fixture
def daemon_env(tmp_path: Path, credentials: None) -> dict[str, str]:
    """What a ``hotfolder run`` subprocess adds to this (cleaned) environment."""
    return aws_env(tmp_path)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on a free loopback port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Test credentials only: nothing from the developer's own AWS setup is used."""
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in aws_env(tmp_path).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def no_credentials(credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")


@pytest.fixture
def s3(s3_server: str, credentials: None) -> Any:
    """A boto3 client of the moto server, to set up and inspect buckets."""
    return boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    """A new, empty bucket on the moto server."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def dead_endpoint() -> str:
    """An http URL on loopback where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def large_png() -> bytes:
    """A PNG of random pixels (which do not compress) of at least 6 MiB."""
    min_bytes = 6 * 1024 * 1024
    side = int((min_bytes / 3) ** 0.5) + 16
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    assert len(data) >= min_bytes
    return data
