"""The ``webhook`` sink: POST the final image and its sidecar record to a URL, signed.

The body is ``multipart/form-data`` with two parts: ``image`` (the file, with its name and
media type) and ``metadata`` (``application/json``: the same record the ``sidecar`` sink
writes). Headers: the signature and its timestamp (see :mod:`hotfolder_webhook.signing`),
``X-Hotfolder-Job`` and ``Idempotency-Key`` (the job id, the same on every retry).

The URL passes the same SSRF checks as the ``url`` resolver (:mod:`hotfolder.netsafe`): a
private, loopback or link-local address is refused unless ``allow_private`` lists it.

Connection failures, timeouts, 429 and 5xx are retried ``max_attempts`` times with doubling
waits from ``backoff_seconds`` (a 429's or 503's ``Retry-After`` is honoured up to a minute); if
they persist the job fails with a retryable :class:`WebhookUnavailable`, which the daemon
tries again later. Any other 4xx, a redirect, a refused address or a missing secret fails the
job at once with a :class:`~hotfolder.errors.SinkError` that names the URL and the fix.

The request and its retries are in :mod:`hotfolder_webhook.delivery`, imported on the first
output: loading the plugin, as every command does, imports neither httpx nor tenacity (about
0.06 s at the start of ``hotfolder run``). A config with a webhook sink imports httpx to check
its URL.
"""

from __future__ import annotations

import asyncio
import re

from loguru import logger
from pydantic import Field, field_validator

import hotfolder
from hotfolder import SecretRef, SinkError

__all__ = ["WebhookSink", "WebhookUnavailable"]

_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


class WebhookUnavailable(SinkError):
    """The receiver stayed unreachable or kept answering 429/5xx: worth trying again later."""

    retryable = True


class WebhookSink(hotfolder.Sink):
    """POSTs each output, signed, to a URL."""

    name = "webhook"
    summary = "POST the image and its sidecar record to a URL, HMAC-SHA256 signed, with retries"

    class Params(hotfolder.Params):
        renamed = {"timeout_s": "timeout_seconds", "backoff_s": "backoff_seconds"}

        url: str
        #: The HMAC key, by reference: ``{ env = "VAR" }`` or ``{ file = "path" }``.
        secret: SecretRef
        #: Private networks or host names this sink may reach (``"127.0.0.1"``, ``"10.0.0.0/8"``).
        allow_private: list[str] = []
        #: Seconds for one attempt (connect, send, answer).
        timeout_seconds: float = Field(default=30.0, gt=0)
        #: Tries per output, the first included.
        max_attempts: int = Field(default=5, ge=1, le=20)
        #: Wait before the second try; doubles after each failure, up to a minute.
        backoff_seconds: float = Field(default=1.0, ge=0)
        signature_header: str = "X-Hotfolder-Signature"
        timestamp_header: str = "X-Hotfolder-Timestamp"

        @field_validator("url")
        @classmethod
        def _http_url(cls, value: str) -> str:
            import httpx

            try:
                url = httpx.URL(value)
            except httpx.InvalidURL as exc:
                msg = f"{value!r} is not a valid URL: {exc}"
                raise ValueError(msg) from exc
            if url.scheme not in ("http", "https") or not url.host:
                msg = f"{value!r} must be an http:// or https:// URL with a host"
                raise ValueError(msg)
            return value

        @field_validator("allow_private")
        @classmethod
        def _networks(cls, value: list[str]) -> list[str]:
            from hotfolder.netsafe import AllowList

            AllowList.parse(value)
            return value

        @field_validator("signature_header", "timestamp_header")
        @classmethod
        def _header(cls, value: str) -> str:
            if not _HEADER_NAME.fullmatch(value):
                msg = f"{value!r} is not an HTTP header name (letters, digits and '-')"
                raise ValueError(msg)
            return value

    params: Params

    async def write(
        self, context: hotfolder.SinkContext, artifact: hotfolder.Artifact
    ) -> list[hotfolder.Output]:
        from hotfolder_webhook import delivery

        p = self.params
        secret = self._secret()
        body, content_type = await asyncio.to_thread(delivery.encode, context, artifact)
        headers = {
            "Content-Type": content_type,
            "X-Hotfolder-Job": context.job.id,
            "Idempotency-Key": context.job.id,
        }
        await delivery.deliver(p, body, headers, secret)
        url = delivery.shown(p.url)
        logger.info("{}: posted {} bytes to {}", context.job.source, len(body), url)
        return [hotfolder.Output(self.name, url, len(artifact.data), artifact.media_type)]

    def _secret(self) -> str:
        ref = self.params.secret
        value = ref.reveal()
        if not value:
            from hotfolder_webhook.delivery import shown

            url = shown(self.params.url)
            msg = f"webhook {url}: the signing secret {ref.describe()} is not set"
            hint = "set it in the environment of hotfolder (the daemon's service file too), "
            hint += "to the secret the receiver verifies with"
            raise SinkError(msg, hint=hint)
        return value
