"""The s3 sink and resolver against a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import hotfolder_s3
import pytest
from botocore.exceptions import ClientError
from hotfolder_s3.connection import ConnectionParams, s3_error
from PIL import Image

from hotfolder.config import validate_config
from hotfolder.engine import Engine
from hotfolder.errors import ConfigError, InputError, SinkError
from hotfolder.job import Job, JobResult
from hotfolder.plugins import build_registry, make_plugin_manager, plugin_info
from hotfolder.runtime import Runtime
from hotfolder.testing import make_image, make_runtime, registry_for, run_chain


def _drop(tmp_path: Path, data: bytes, name: str = "photo.png") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _upload(file: Path, **sink: Any) -> JobResult:
    return run_chain(file, [], outputs=[{"sink": "s3", **sink}], plugins=[hotfolder_s3])


async def _run(runtime: Runtime, job: Job) -> JobResult:
    try:
        return await Engine(runtime).run(job)
    finally:
        await runtime.aclose()


def _resolver_runtime(tmp_path: Path, endpoint: str, **sections: Any) -> Runtime:
    chain = {
        "steps": [{"op": "resize", "width": 32}],
        "outputs": [{"sink": "folder", "path": str(tmp_path / "out")}],
    }
    config = {"resolvers": {"s3": {"endpoint_url": endpoint}}, "chains": {"web": chain}}
    return make_runtime(config | sections, hotfolder_s3)


def test_the_distribution_is_discovered_through_its_entry_point():
    pm = make_plugin_manager()
    info = {row["name"]: row for row in plugin_info(pm)}
    assert info["s3"]["distribution"] == "hotfolder-s3"
    registry = build_registry(pm)
    assert registry.sinks["s3"].plugin == "s3"
    assert registry.resolvers["s3"].plugin == "s3"


def test_upload_names_the_object_by_template_with_type_and_metadata(
    tmp_path, s3_server, s3, bucket
):
    file = _drop(tmp_path, make_image(format="PNG"))
    result = _upload(
        file,
        bucket=bucket,
        endpoint_url=s3_server,
        prefix="web/",
        key="{chain}/{stem}-{hash8}.{ext}",
    )
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    key = f"web/test/photo-{digest[:8]}.png"
    [output] = result.outputs
    assert output.location == f"s3://{bucket}/{key}"
    assert output.bytes == file.stat().st_size
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "image/png"
    assert head["Metadata"]["hotfolder-input-sha256"] == digest
    assert head["Metadata"]["hotfolder-chain"] == "test"
    assert not head["ETag"].strip('"').count("-")  # one plain PUT
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with Image.open(io.BytesIO(body)) as image:
        assert image.size == (64, 48)


def test_a_large_output_goes_up_in_parts(tmp_path, s3_server, s3, bucket, large_png):
    file = _drop(tmp_path, large_png, "noise.png")
    _upload(file, bucket=bucket, endpoint_url=s3_server, multipart_threshold_bytes=5 * 1024 * 1024)
    head = s3.head_object(Bucket=bucket, Key="noise.png")
    assert head["ContentLength"] == len(large_png)
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload of two parts
    body = s3.get_object(Bucket=bucket, Key="noise.png")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(large_png).digest()


def test_the_resolver_reads_an_s3_input_through_the_engine(tmp_path, s3_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="in/shot.png", Body=make_image(size=(64, 48)))
    runtime = _resolver_runtime(tmp_path, s3_server)
    result = asyncio.run(_run(runtime, Job(source=f"s3://{bucket}/in/shot.png", chain="web")))
    [output] = result.outputs
    assert Path(output.location) == tmp_path / "out" / "shot.png"
    with Image.open(output.location) as image:
        assert image.size == (32, 24)


def test_the_resolver_refuses_an_object_over_the_byte_cap(tmp_path, s3_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="big.png", Body=make_image(size=(200, 200)))
    runtime = _resolver_runtime(tmp_path, s3_server, imaging={"max_bytes": 100})
    with pytest.raises(InputError, match=r"s3://.*/big\.png is \d+ bytes, over the limit of 100"):
        asyncio.run(_run(runtime, Job(source=f"s3://{bucket}/big.png", chain="web")))


@pytest.mark.parametrize("ref", ["s3://bucket-only", "s3://bucket/", "s3:///key", "s3://b/dir/"])
def test_a_reference_without_an_object_is_an_input_error(tmp_path, s3_server, credentials, ref):
    runtime = _resolver_runtime(tmp_path, s3_server)
    with pytest.raises(InputError, match="does not name an object") as info:
        asyncio.run(_run(runtime, Job(source=ref, chain="web")))
    assert "s3://BUCKET/KEY" in str(info.value)


def test_missing_credentials_are_a_clear_error_for_sink_and_resolver(
    tmp_path, s3_server, no_credentials
):
    file = _drop(tmp_path, make_image())
    with pytest.raises(SinkError) as info:
        _upload(file, bucket="my-photos", endpoint_url=s3_server)
    text = str(info.value)
    assert "s3://my-photos/photo.png" in text
    assert "no usable AWS credentials" in text
    assert "AWS_ACCESS_KEY_ID" in info.value.hint
    assert not info.value.retryable

    runtime = _resolver_runtime(tmp_path, s3_server)
    with pytest.raises(InputError, match=r"cannot read s3://my-photos/a\.png: no usable AWS"):
        asyncio.run(_run(runtime, Job(source="s3://my-photos/a.png", chain="web")))


def test_a_missing_bucket_names_the_bucket_and_the_fix(tmp_path, s3_server, credentials):
    file = _drop(tmp_path, make_image())
    with pytest.raises(SinkError) as info:
        _upload(file, bucket="no-such-bucket-here", endpoint_url=s3_server)
    assert "bucket 'no-such-bucket-here' does not exist on " + s3_server in info.value.message
    assert "create the bucket" in info.value.hint
    assert not info.value.retryable


def test_a_missing_bucket_fails_a_multipart_upload_too(tmp_path, s3_server, credentials, large_png):
    file = _drop(tmp_path, large_png)
    with pytest.raises(SinkError, match="bucket 'no-such-bucket-here' does not exist"):
        _upload(
            file,
            bucket="no-such-bucket-here",
            endpoint_url=s3_server,
            multipart_threshold_bytes=5 * 1024 * 1024,
        )


def test_a_missing_object_is_an_input_error(tmp_path, s3_server, bucket):
    runtime = _resolver_runtime(tmp_path, s3_server)
    with pytest.raises(InputError, match=rf"cannot read s3://{bucket}/nope\.png: no such object"):
        asyncio.run(_run(runtime, Job(source=f"s3://{bucket}/nope.png", chain="web")))


def test_a_server_that_is_down_is_a_retryable_error(tmp_path, credentials, dead_endpoint):
    file = _drop(tmp_path, make_image())
    with pytest.raises(SinkError) as info:
        _upload(file, bucket="my-photos", endpoint_url=dead_endpoint, attempts=1)
    assert f"cannot upload to s3://my-photos/photo.png: {dead_endpoint} cannot be reached" in (
        info.value.message
    )
    assert info.value.retryable


@pytest.mark.parametrize(
    ("code", "status", "says", "retryable"),
    [
        ("AccessDenied", 403, "access denied by AWS S3", False),
        ("InvalidAccessKeyId", 403, "refused the AWS credentials", False),
        ("PermanentRedirect", 301, "is in another region", False),
        ("SlowDown", 503, "busy or failing", True),
    ],
)
def test_server_answers_become_clear_errors(code, status, says, retryable):
    meta = {"HTTPStatusCode": status}
    answer = {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": meta}
    exc = ClientError(answer, "PutObject")  # type: ignore[arg-type]
    error = s3_error(
        SinkError, exc, action="upload to", bucket="b1", key="k.png", params=ConnectionParams()
    )
    assert error.message.startswith("cannot upload to s3://b1/k.png: ")
    assert says in error.message
    assert error.retryable is retryable
    if code == "AccessDenied":
        assert "s3:PutObject on arn:aws:s3:::b1/*" in error.hint


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"bucket": "s3://x/y"}, "bare bucket name"),
        ({"bucket": "b1b", "key": "{stem.__class__}"}, "allowed fields"),
        ({"bucket": "b1b", "prefix": "/abs"}, "must not start with '/'"),
        ({"bucket": "b1b", "endpoint_url": "minio:9000"}, "must start with http"),
        ({"bucket": "b1b", "multipart_threshold_bytes": 1024}, "greater than or equal to 5242880"),
        ({"bucket": "b1b", "aws_secret_access_key": "x"}, "unknown key"),
    ],
)
def test_bad_settings_are_config_errors(params, says):
    registry = registry_for(hotfolder_s3)
    raw = {"chains": {"c": {"outputs": [{"sink": "s3", **params}]}}}
    with pytest.raises(ConfigError, match=says):
        validate_config(raw, registry)
