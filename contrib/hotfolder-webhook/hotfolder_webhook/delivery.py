"""Delivering one output to a webhook: the signed POST, and its retries with doubling waits.

Connection failures, timeouts, 429 and 5xx are retried ``max_attempts`` times (a 429's or
503's ``Retry-After`` is honoured up to a minute), then raise a retryable
:class:`~hotfolder_webhook.sink.WebhookUnavailable`; everything else raises a
:class:`~hotfolder.errors.SinkError` at once. :meth:`WebhookSink.write
<hotfolder_webhook.sink.WebhookSink.write>` imports this module on the first output.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

import httpx
from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

import hotfolder
from hotfolder import InputError, SinkError, UnsafeInputError, sidecar_record
from hotfolder.naming import sanitize_component
from hotfolder.netsafe import pinned_client
from hotfolder_webhook.signing import sign
from hotfolder_webhook.sink import WebhookSink, WebhookUnavailable

#: The longest one wait between attempts may be, Retry-After included.
MAX_WAIT_S = 60.0


@dataclass
class _Transient(Exception):
    """One attempt failed in a way worth retrying."""

    reason: str
    retry_after: float | None = None


async def deliver(
    params: WebhookSink.Params, body: bytes, headers: dict[str, str], secret: str
) -> None:
    """POST ``body`` to ``params.url``, signed with ``secret``, retrying what is transient."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(params.max_attempts),
        wait=functools.partial(_wait, params),
        retry=retry_if_exception_type(_Transient),
        before_sleep=functools.partial(_log_retry, params),
        reraise=True,
    )
    async with pinned_client(
        allow_private=params.allow_private, timeout=params.timeout_seconds
    ) as client:
        try:
            async for attempt in retrying:
                with attempt:
                    await _post(params, client, body, headers, secret)
        except _Transient as exc:
            url = shown(params.url)
            msg = f"POST {url} failed {params.max_attempts} times; the last: {exc.reason}"
            hint = "check that the receiver is up; 'hotfolder retry' queues failed jobs again"
            raise WebhookUnavailable(msg, hint=hint) from None


async def _post(
    p: WebhookSink.Params,
    client: httpx.AsyncClient,
    body: bytes,
    headers: dict[str, str],
    secret: str,
) -> None:
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


def _wait(params: WebhookSink.Params, state: RetryCallState) -> float:
    failure = state.outcome.exception() if state.outcome else None
    if isinstance(failure, _Transient) and failure.retry_after is not None:
        return min(failure.retry_after, MAX_WAIT_S)
    return min(params.backoff_seconds * 2 ** (state.attempt_number - 1), MAX_WAIT_S)


def _log_retry(params: WebhookSink.Params, state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "webhook {}: {}; attempt {}/{}, next in {:.1f}s",
        shown(params.url),
        getattr(failure, "reason", failure),
        state.attempt_number,
        params.max_attempts,
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


def encode(context: hotfolder.SinkContext, artifact: hotfolder.Artifact) -> tuple[bytes, str]:
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
