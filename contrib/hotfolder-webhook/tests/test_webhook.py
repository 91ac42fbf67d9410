"""The webhook sink against a real HTTP server on loopback that checks every signature."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import time
from pathlib import Path

import hotfolder_webhook
import pytest
from hotfolder_webhook import WebhookUnavailable, sign, verify
from PIL import Image

from hotfolder.errors import ConfigError, SinkError
from hotfolder.testing import hot_folder, make_runtime, run_chain

STEPS = [{"op": "resize", "width": 40, "height": 40, "mode": "fit"}]


def webhook(url: str, secret_env: str, **params: object) -> dict[str, object]:
    return {
        "sink": "webhook",
        "url": url,
        "secret": {"env": secret_env},
        "allow_private": ["127.0.0.1"],
        "backoff_seconds": 0,
        **params,
    }


def post(tmp_path: Path, *outputs: dict[str, object]):
    photo = hot_folder(tmp_path).drop("photo.jpg")
    return run_chain(photo, STEPS, outputs=list(outputs), plugins=[hotfolder_webhook])


def test_posts_the_image_and_its_sidecar_record_signed(tmp_path, receiver, secret_env):
    folder = {"sink": "folder", "path": str(tmp_path / "out")}
    result = post(tmp_path, folder, webhook(receiver.url, secret_env))

    [sent] = receiver.posts
    assert sent.signed
    image = sent.parts["image"]
    assert (image.filename, image.content_type) == ("photo.jpg", "image/jpeg")
    with Image.open(io.BytesIO(image.data)) as im:
        assert im.size == (40, 30)
    assert image.data == Path(result.outputs[0].location).read_bytes()
    metadata = json.loads(sent.parts["metadata"].data)
    assert sent.parts["metadata"].content_type == "application/json"
    assert metadata["job_id"] == result.job.id == sent.headers["idempotency-key"]
    assert metadata["output"]["sha256"] == hashlib.sha256(image.data).hexdigest()
    assert metadata["input_sha256"] == result.input_sha256
    assert [s["op"] for s in metadata["steps"]] == ["resize"]
    assert abs(int(sent.headers["x-hotfolder-timestamp"]) - time.time()) < 60
    webhook_output = result.outputs[1]
    assert (webhook_output.sink, webhook_output.location) == ("webhook", receiver.url)


def test_retries_5xx_and_429_then_succeeds(tmp_path, receiver, secret_env):
    receiver.script = [503, 429, 502]
    receiver.script_headers = {"Retry-After": "0"}
    result = post(tmp_path, webhook(receiver.url, secret_env))
    assert len(receiver.posts) == 4
    assert all(p.signed for p in receiver.posts)
    assert len({p.body for p in receiver.posts}) == 1, "every retry sends the same body"
    assert result.outputs[0].sink == "webhook"


def test_persistent_5xx_ends_in_a_retryable_error_after_bounded_attempts(
    tmp_path, receiver, secret_env
):
    receiver.script = [503] * 10
    with pytest.raises(WebhookUnavailable) as info:
        post(tmp_path, webhook(receiver.url, secret_env, max_attempts=3))
    assert len(receiver.posts) == 3
    error = info.value
    assert error.retryable and isinstance(error, SinkError)
    assert receiver.url in error.message and "503" in error.message and "3 times" in error.message


def test_server_down_gives_a_clear_retryable_error(tmp_path, secret_env):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    started = time.monotonic()
    with pytest.raises(WebhookUnavailable) as info:
        post(tmp_path, webhook(url, secret_env, max_attempts=2, timeout_seconds=2))
    assert time.monotonic() - started < 10
    assert url in info.value.message and "cannot connect" in info.value.message
    assert "receiver is up" in (info.value.hint or "")


def test_wrong_secret_is_refused_once_and_named_without_the_secret(
    tmp_path, receiver, secret_env, monkeypatch
):
    monkeypatch.setenv(secret_env, "not-the-receivers-secret")
    with pytest.raises(SinkError) as info:
        post(tmp_path, webhook(receiver.url + "?token=abc", secret_env))
    error = info.value
    assert len(receiver.posts) == 1, "a 401 is not retried"
    assert not error.retryable
    assert "401" in error.message and receiver.url in error.message
    assert "secret" in (error.hint or "")
    assert "not-the-receivers-secret" not in str(error) and "token=abc" not in str(error)


def test_a_loopback_url_is_refused_without_allow_private(tmp_path, receiver, secret_env):
    with pytest.raises(SinkError) as info:
        post(tmp_path, webhook(receiver.url, secret_env, allow_private=[]))
    assert receiver.posts == []
    assert "non-public address 127.0.0.1" in info.value.message
    assert "allow_private" in (info.value.hint or "")


def test_a_missing_secret_names_the_variable(tmp_path, receiver, monkeypatch):
    monkeypatch.delenv("NO_SUCH_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SinkError) as info:
        post(tmp_path, webhook(receiver.url, "NO_SUCH_WEBHOOK_SECRET"))
    assert "$NO_SUCH_WEBHOOK_SECRET is not set" in info.value.message
    assert receiver.posts == []


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"secret": "inline"}, "secrets are given by reference"),
        ({"url": "ftp://example.com/x"}, "must be an http:// or https:// URL"),
        ({"allow_private": ["not a network!"]}, "neither a network"),
        ({"signature_header": "X Bad"}, "not an HTTP header name"),
        ({"max_attempts": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_params_fail_when_the_config_loads(change, complaint):
    output = {**webhook("https://example.com/hook", "X"), **change}
    config = {"chains": {"c": {"outputs": [output]}}}
    with pytest.raises(ConfigError) as info:
        make_runtime(config, hotfolder_webhook)
    assert complaint in str(info.value)


def test_verify_accepts_its_own_signature_and_refuses_tampering_and_old_timestamps():
    body = b"--boundary\r\n..."
    now = time.time()
    stamp = str(int(now))
    signature = sign("k", stamp, body)
    assert verify("k", stamp, body, signature, now=now)
    assert not verify("k", stamp, body + b"x", signature, now=now)
    assert not verify("other", stamp, body, signature, now=now)
    assert not verify("k", stamp, body, signature, now=now + 301)
    assert not verify("k", "soon", body, signature, now=now)
