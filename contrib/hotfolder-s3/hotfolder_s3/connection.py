"""What the ``s3`` sink and resolver share: how to reach S3, one client per runtime, and
botocore's exceptions turned into errors that name the bucket, the key and the fix.

Credentials come only from boto3's standard chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` or ``profile``, the shared
files, instance roles); a config file never holds them, and no message ever shows them.

boto3 and botocore are imported where a client is made or an error explained, not when the
plugin loads: importing them takes about 0.1 s, which every command would pay at start
(``hotfolder run`` before it watches) even when no chain uses S3.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TypeVar

from pydantic import Field, field_validator

import hotfolder

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.exceptions import BotoCoreError, ClientError

    from hotfolder import RuntimeView

E = TypeVar("E", bound=hotfolder.HotfolderError)

_CLIENT_LOCK = threading.Lock()
_CREDENTIALS_HINT = (
    "give the daemon AWS credentials in its environment (AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE / the profile key naming a profile in "
    "~/.aws/credentials), then restart it; credentials never go in the hotfolder config"
)
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
_DENIED = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"}
_MISSING_KEY = {"NoSuchKey", "NotFound", "404"}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed"}
_BUSY = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}


class ConnectionParams(hotfolder.Params):
    """Where S3 is and how patiently to talk to it; shared by the sink and the resolver."""

    renamed = {"connect_timeout_s": "connect_timeout_seconds", "timeout_s": "timeout_seconds"}

    #: An S3-compatible server (MinIO, Ceph, R2, a local moto): ``http(s)://host:port``.
    endpoint_url: str | None = None
    #: The bucket's region; None: boto3's default (``AWS_REGION``, the profile, us-east-1).
    region: str | None = None
    #: A profile in ``~/.aws/config`` / ``~/.aws/credentials``; None: boto3's default chain.
    profile: str | None = None
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0)
    #: Tries per request, in botocore's ``standard`` retry mode (1: no retry).
    attempts: int = Field(default=3, ge=1, le=20)

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            msg = f"endpoint_url {value!r} must start with http:// or https://"
            raise ValueError(msg)
        return value


def client_for(runtime: RuntimeView, params: ConnectionParams) -> BaseClient:
    """The runtime's S3 client for these connection settings (made once, closed with it).

    Raises botocore's NoCredentialsError (not cached) when the chain finds no credentials,
    so that nothing is sent unsigned and credentials added later are picked up.
    """
    key = "hotfolder_s3:" + params.model_dump_json(
        include={
            "endpoint_url",
            "region",
            "profile",
            "connect_timeout_seconds",
            "timeout_seconds",
            "attempts",
        }
    )
    with _CLIENT_LOCK:
        return runtime.service(key, lambda: _make_client(params))


def _make_client(params: ConnectionParams) -> BaseClient:
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import NoCredentialsError

    session = boto3.session.Session(profile_name=params.profile, region_name=params.region)
    if session.get_credentials() is None:
        raise NoCredentialsError
    config = BotoConfig(
        connect_timeout=params.connect_timeout_seconds,
        read_timeout=params.timeout_seconds,
        retries={"mode": "standard", "total_max_attempts": params.attempts},
    )
    return session.client("s3", endpoint_url=params.endpoint_url, config=config)


def s3_error(
    cls: type[E],
    exc: BotoCoreError | ClientError,
    *,
    action: str,
    bucket: str,
    key: str,
    params: ConnectionParams,
) -> E:
    """``exc`` (from boto3) as ``cls`` with a message naming ``s3://bucket/key`` and the fix.

    ``action`` reads after "cannot": ``"upload to"``, ``"read"``. Network failures, timeouts
    and S3's 5xx answers are marked retryable, so the daemon tries the job again later.
    """
    from botocore.exceptions import (
        ClientError,
        CredentialRetrievalError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    where = f"s3://{bucket}/{key}"
    server = params.endpoint_url or (f"AWS S3 ({params.region})" if params.region else "AWS S3")
    retryable = False
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        msg, hint = f"cannot {action} {where}: no usable AWS credentials found", _CREDENTIALS_HINT
    elif isinstance(exc, ProfileNotFound):
        profile = exc.kwargs.get("profile")
        msg = f"cannot {action} {where}: AWS profile {profile!r} does not exist"
        hint = "add it to ~/.aws/config or ~/.aws/credentials, or fix profile / AWS_PROFILE"
    elif isinstance(exc, ClientError):
        msg, hint, retryable = _explain_answer(exc, action, where, bucket, server)
    elif isinstance(exc, BotoConnectionError | HTTPClientError):
        msg = f"cannot {action} {where}: {server} cannot be reached ({exc})"
        hint = "check that the S3 server is up and endpoint_url is right; the daemon tries again"
        retryable = True
    else:
        msg, hint = f"cannot {action} {where}: {exc}", "check the s3 settings in the config"
    error = cls(msg, hint=hint)
    error.retryable = retryable
    return error


def _explain_answer(
    exc: ClientError, action: str, where: str, bucket: str, server: str
) -> tuple[str, str, bool]:
    """Message, hint and whether to retry, for an error answer from the S3 server."""
    info = exc.response.get("Error", {})
    code = str(info.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    said = f"{code}: {info['Message']}" if info.get("Message") else code or f"HTTP {status}"
    if code == "NoSuchBucket":
        msg = f"cannot {action} {where}: bucket {bucket!r} does not exist on {server}"
        hint = "create the bucket, or fix bucket (and endpoint_url/region) in the config"
        return msg, hint, False
    if code in _MISSING_KEY:
        msg = f"cannot {action} {where}: no such object on {server}"
        return msg, "check the bucket and key in the reference", False
    if code in _BAD_CREDENTIALS:
        msg = f"cannot {action} {where}: {server} refused the AWS credentials ({code})"
        return msg, _CREDENTIALS_HINT, False
    if code in _DENIED:
        operation = "s3:GetObject" if action == "read" else "s3:PutObject"
        msg = f"cannot {action} {where}: access denied by {server} ({said})"
        hint = f"grant these credentials {operation} on arn:aws:s3:::{bucket}/*, or use others"
        return msg, hint, False
    if code in _WRONG_REGION:
        msg = f"cannot {action} {where}: bucket {bucket!r} is in another region ({said})"
        return msg, "set region in the config to the bucket's region", False
    if code in _BUSY or (isinstance(status, int) and status >= 500):
        msg = f"cannot {action} {where}: {server} is busy or failing ({said})"
        return msg, "the daemon tries again later", True
    msg = f"cannot {action} {where}: {server} answered {said}"
    return msg, "check the bucket, the key and the s3 settings in the config", False
