"""The ``s3`` resolver: reads ``s3://bucket/key`` inputs, at most ``[imaging] max_bytes``.

The key is taken as written (no percent-decoding), as the AWS CLI does. Settings (an
``endpoint_url``, a ``region``, a ``profile``) go under ``[resolvers.s3]``.
"""

from __future__ import annotations

import hotfolder
from hotfolder.naming import url_file_name
from hotfolder_s3.connection import ConnectionParams, client_for, s3_error

SCHEME = "s3://"


def split_ref(ref: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``; an InputError when malformed."""
    bucket, _, key = ref[len(SCHEME) :].partition("/")
    if not bucket or not key or key.endswith("/"):
        msg = f"{ref!r} does not name an object"
        raise hotfolder.InputError(msg, hint="write s3://BUCKET/KEY, e.g. s3://photos/in/a.jpg")
    return bucket, key


class S3Resolver(hotfolder.Resolver):
    """An object in an S3 bucket, named ``s3://bucket/key``."""

    name = "s3"
    summary = "an s3://bucket/key object (AWS or S3-compatible); size capped"

    class Params(ConnectionParams):
        pass

    params: Params

    def accepts(self, ref: str) -> bool:
        return ref[: len(SCHEME)].lower() == SCHEME

    def resolve(self, ref: str, context: hotfolder.ResolveContext) -> hotfolder.JobInput:
        from botocore.exceptions import BotoCoreError, ClientError  # see connection.py

        bucket, key = split_ref(ref)
        limits = context.runtime.limits
        try:
            client = client_for(context.runtime, self.params)
            answer = client.get_object(Bucket=bucket, Key=key)
            body = answer["Body"]
            try:
                size = answer.get("ContentLength", 0)
                if size > limits.max_bytes:
                    msg = f"{ref} is {size} bytes, over the limit of {limits.max_bytes}"
                    hint = "raise [imaging] max_bytes if such files are expected"
                    raise hotfolder.InputError(msg, hint=hint)
                data = body.read(limits.max_bytes + 1)
            finally:
                body.close()
        except (BotoCoreError, ClientError) as exc:
            raise s3_error(
                hotfolder.InputError, exc, action="read", bucket=bucket, key=key, params=self.params
            ) from exc
        if len(data) > limits.max_bytes:
            msg = f"{ref} is over the limit of {limits.max_bytes} bytes"
            raise hotfolder.InputError(
                msg, hint="raise [imaging] max_bytes if such files are expected"
            )
        artifact = hotfolder.Artifact.from_bytes(data, name=url_file_name(ref), limits=limits)
        return hotfolder.JobInput(artifact=artifact, source=ref)
