"""The ``s3`` sink: uploads a job's result to ``s3://bucket/prefix + key``.

Objects at or over ``multipart_threshold_bytes`` go up in parts of that size (boto3's
``TransferConfig``); a failed multipart upload is aborted, so no partial object is left. S3
replaces an existing object of the same key: put ``{hash8}`` or ``{n}`` in ``key`` (or turn
on bucket versioning) to keep every result.
"""

from __future__ import annotations

import io
from urllib.parse import quote

from loguru import logger
from pydantic import Field, field_validator

import hotfolder
from hotfolder import OutputName, render_name
from hotfolder_s3.connection import ConnectionParams, client_for, s3_error

#: S3's smallest part size (every part but the last must be at least this).
MIN_PART_BYTES = 5 * 1024 * 1024


class S3Sink(hotfolder.Sink):
    """Uploads the final image to an S3 bucket (AWS or an S3-compatible server)."""

    name = "s3"
    summary = "upload the result to an S3 bucket (AWS or S3-compatible); multipart when large"

    class Params(ConnectionParams):
        bucket: str = Field(min_length=3, max_length=63)
        #: Put before every key: ``"photos/"``, ``"2026/run-"``.
        prefix: str = ""
        #: Fields: {stem} {ext} {chain} {date} {hash8} {n} (``{n:04d}`` pads); '/' = folder.
        key: OutputName = "{stem}.{ext}"
        #: Objects this large or larger are uploaded in parts of this size (5 MiB at least).
        multipart_threshold_bytes: int = Field(default=8 * 1024 * 1024, ge=MIN_PART_BYTES)
        #: Store the input's SHA-256, the chain and the job id as ``x-amz-meta-hotfolder-*``.
        metadata: bool = True

        @field_validator("bucket")
        @classmethod
        def _bucket(cls, value: str) -> str:
            if "/" in value or value != value.strip() or value.lower().startswith("s3:"):
                msg = f"bucket {value!r} must be a bare bucket name like 'my-photos'"
                raise ValueError(msg)
            return value

        @field_validator("prefix")
        @classmethod
        def _prefix(cls, value: str) -> str:
            if value.startswith("/") or any(ord(c) < 32 or ord(c) == 127 for c in value):
                msg = f"prefix {value!r} must not start with '/' or hold control characters"
                raise ValueError(msg)
            return value

    def write(
        self, context: hotfolder.SinkContext, artifact: hotfolder.Artifact
    ) -> list[hotfolder.Output]:
        from boto3.s3.transfer import TransferConfig  # boto3 on first use: see connection.py
        from botocore.exceptions import BotoCoreError, ClientError

        p = self.params
        key = p.prefix + render_name(p.key, context, artifact)
        data = artifact.data
        extra: dict[str, object] = {"ContentType": artifact.media_type}
        if p.metadata:
            extra["Metadata"] = {
                "hotfolder-input-sha256": context.input_sha256,
                "hotfolder-chain": quote(context.job.chain, safe="-_."),
                "hotfolder-job": context.job.id,
            }
        transfer = TransferConfig(
            multipart_threshold=p.multipart_threshold_bytes,
            multipart_chunksize=p.multipart_threshold_bytes,
        )
        try:
            client = client_for(context.runtime, p)
            client.upload_fileobj(io.BytesIO(data), p.bucket, key, ExtraArgs=extra, Config=transfer)
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(
                hotfolder.SinkError, exc, action="upload to", bucket=p.bucket, key=key, params=p
            ) from exc
        location = f"s3://{p.bucket}/{key}"
        logger.debug("{}: uploaded {} bytes to {}", context.job.source, len(data), location)
        return [hotfolder.Output(self.name, location, len(data), artifact.media_type)]
