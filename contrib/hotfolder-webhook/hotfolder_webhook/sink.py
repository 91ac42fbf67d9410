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
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass

import httpx
from loguru import logger
from pydantic import Field, field_validator
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

import hotfolder
from hotfolder import InputError, SecretRef, SinkError, UnsafeInputError, sidecar_record
from hotfolder.naming import sanitize_component
from hotfolder.netsafe import AllowList, pinned_client
from hotfolder_webhook.signing import sign

__all__ = ["WebhookSink", "WebhookUnavailable"]

#: The longest one wait between attempts may be, Retry-After included.
MAX_WAIT_S = 60.0
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


class WebhookUnavailable(SinkError):
    """The receiver stayed unreachable or kept answering 429/5xx: worth trying again later."""

    retryable = True


@dataclass
class _Transient(Exception):
    """One attempt failed in a way worth retrying."""

    reason: str
    retry_after: float | None = None


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
        p = self.params
        secret = self._secret()
        body, content_type = await asyncio.to_thread(_encode, context, artifact)
        headers = {
            "Content-Type": content_type,
            "X-Hotfolder-Job": context.job.id,
            "Idempotency-Key": context.job.id,
        }
        retrying = AsyncRetrying(
            stop=stop_after_attempt(p.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async with pinned_client(
            allow_private=p.allow_private, timeout=p.timeout_seconds
        ) as client:
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._post(client, body, headers, secret)
            except _Transient as exc:
                msg = f"POST {shown(p.url)} failed {p.max_attempts} times; the last: {exc.reason}"
                hint = "check that the receiver is up; 'hotfolder retry' queues failed jobs again"
                raise WebhookUnavailable(msg, hint=hint) from None
        logger.info("{}: posted {} bytes to {}", context.job.source, len(body), shown(p.url))
        return [hotfolder.Output(self.name, shown(p.url), len(artifact.data), artifact.media_type)]

    def _secret(self) -> str:
        ref = self.params.secret
        value = ref.reveal()
        if not value:
            url = shown(self.params.url)
            msg = f"webhook {url}: the signing secret {ref.describe()} is not set"
            hint = "set it in the environment of hotfolder (the daemon's service file too), "
            hint += "to the secret the receiver verifies with"
            raise SinkError(msg, hint=hint)
        return value

    async def _post(
        self, client: httpx.AsyncClient, body: bytes, headers: dict[str, str], secret: str
    ) -> None:
        p = self.params
        timestamp = str(int(time.time()))
        signed = {
            **headers,
            p.timestamp_header: timestamp,
            p.signature_header: sign(secret, timestamp, body),
        }
        try:
            response = await client.post(p.url, content=body, headers=signed)
        except UnsafeInputError as exc:
            msg = f"webhook refused: {exc.message}"
            hint = "to post to a server on your own network, list its address in allow_private"
            raise SinkError(msg, hint=hint) from None
        except InputError as exc:  # the host name does not resolve (now)
            raise _Transient(exc.message) from None
        except httpx.TimeoutException as exc:
            reason = f"no answer within {p.timeout_seconds:g} s ({type(exc).__name__})"
            raise _Transient(reason) from None
        except httpx.TransportError as exc:
            reason = f"cannot connect: {str(exc) or type(exc).__name__}"
            raise _Transient(reason) from None
        _check(response, p.url, p.secret.describe())

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return min(failure.retry_after, MAX_WAIT_S)
        return min(self.params.backoff_seconds * 2 ** (state.attempt_number - 1), MAX_WAIT_S)

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "webhook {}: {}; attempt {}/{}, next in {:.1f}s",
            shown(self.params.url),
            getattr(failure, "reason", failure),
            state.attempt_number,
            self.params.max_attempts,
            wait,
        )


def _check(response: httpx.Response, url: str, secret: str) -> None:
    """Return on 2xx; raise _Transient for 429/5xx, SinkError for everything else."""
    status = response.status_code
    if response.is_success:
        return
    said = f"the receiver answered {status} {response.reason_phrase}" + _excerpt(response)
    if status == 429 or status >= 500:
        raise _Transient(said, _retry_after(response))
    msg = f"POST {shown(url)}: {said}"
    if response.is_redirect:
        hint = "webhooks are not redirected; put the final URL in the config"
    elif status in (401, 403):
        hint = f"the receiver refused the signature: check that {secret} holds its secret"
    else:
        hint = "the receiver refused the request; check the URL and what it expects"
    raise SinkError(msg, hint=hint)


def _encode(context: hotfolder.SinkContext, artifact: hotfolder.Artifact) -> tuple[bytes, str]:
    """The multipart body and its Content-Type (with the boundary), built once per output."""
    record = sidecar_record(context, artifact, None)
    metadata = json.dumps(record, ensure_ascii=False, default=str).encode()
    filename = f"{sanitize_component(artifact.stem)}.{artifact.extension}"
    request = httpx.Request(
        "POST",
        "http://body.invalid/",
        files={
            "image": (filename, artifact.data, artifact.media_type),
            "metadata": (None, metadata, "application/json"),
        },
    )
    return request.read(), request.headers["Content-Type"]


def shown(url: str) -> str:
    """``url`` without user info, query or fragment, which may carry credentials."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())[:200]
    return f": {text}" if text else ""
