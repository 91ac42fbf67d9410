"""Turn a Venice error response into the project's error tree.

Venice answers errors with JSON in one of two shapes: ``{"error": "text", "code"?: ...,
"details"?: {zod tree}}`` or the OpenAI-style ``{"error": {"message", "code", ...}}``. A 402
is either an API-key user out of credit (``INSUFFICIENT_BALANCE``) or the x402 wallet-payment
flow (``x402Version`` + ``accepts``, or ``code: PAYMENT_REQUIRED``), which means Venice did not
see a usable API key at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from hotfolder.errors import AuthError, BalanceError, Rejected, Unavailable, VeniceError
from hotfolder.venice.headers import parse_retry_after, request_id

#: Statuses worth sending again after a wait.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

X402_MESSAGE = (
    "Venice answered with its x402 wallet payment flow (HTTP 402), which means it did not "
    "see a usable API key"
)
X402_HINT = (
    "this is Venice's x402 wallet payment flow; hotfolder authenticates with an API key: "
    "set VENICE_API_KEY (https://venice.ai/settings/api)"
)


def parse_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON error body, or ``{}`` when it is not a JSON object."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def is_x402(body: dict[str, Any]) -> bool:
    """Whether a 402 body is the x402 wallet flow rather than an API-key balance error."""
    if "x402Version" in body and isinstance(body.get("accepts"), list):
        return True
    return body.get("code") == "PAYMENT_REQUIRED"


def error_from_response(
    response: httpx.Response, *, redact: Callable[[str], str] = str
) -> VeniceError:
    """The VeniceError subclass for a non-2xx ``response``; ``redact`` scrubs its text."""
    status = response.status_code
    body = parse_body(response)
    message, code = _message_and_code(body, response)
    path = response.request.url.path.removeprefix("/api/v1")
    message = redact(f"Venice {path} answered {status}: {message}")
    kwargs: dict[str, Any] = {"status": status, "code": code, "request_id": request_id(response)}
    if status == 402 and is_x402(body):
        return AuthError(X402_MESSAGE + f" ({message})", hint=X402_HINT, **kwargs)
    if status == 401:
        hint = (
            "the API key was refused: check VENICE_API_KEY (or [venice] api_key) holds an "
            "active key from https://venice.ai/settings/api"
        )
        return AuthError(message, hint=hint, **kwargs)
    if status == 403:
        hint = (
            "the key may not use this endpoint or model: enable API access for it at "
            "https://venice.ai/settings/api, or choose another model"
        )
        return AuthError(message, hint=hint, **kwargs)
    if status == 402:
        hint = "add credit at https://venice.ai/settings/api; queued Venice work resumes by itself"
        return BalanceError(message, hint=hint, **kwargs)
    if status in RETRYABLE_STATUSES:
        hint = "Venice is busy or failing; hotfolder retries with backoff, then later again"
        return Unavailable(message, hint=hint, retry_after=parse_retry_after(response), **kwargs)
    return Rejected(message, hint=_reject_hint(status, code), **kwargs)


def _message_and_code(body: dict[str, Any], response: httpx.Response) -> tuple[str, str | None]:
    error = body.get("error")
    code = body.get("code")
    if isinstance(error, dict):
        code = code or error.get("code") or error.get("type")
        text = str(error.get("message") or "no message")
    elif isinstance(error, str):
        text = error
    else:
        text = response.reason_phrase or "no error message"
    details = _flatten_details(body.get("details"))
    if details:
        text += " (" + "; ".join(details) + ")"
    return text, str(code) if code is not None else None


def _flatten_details(tree: Any, path: str = "") -> list[str]:
    """``{"_errors": [], "prompt": {"_errors": ["Required"]}}`` -> ``["prompt: Required"]``."""
    if not isinstance(tree, dict):
        return []
    lines = [f"{path or 'request'}: {e}" for e in tree.get("_errors", []) if isinstance(e, str)]
    for key, sub in tree.items():
        if key != "_errors":
            lines += _flatten_details(sub, f"{path}.{key}" if path else str(key))
    return lines[:10]


def _reject_hint(status: int, code: str | None) -> str:
    if status == 404 or code in ("MODEL_NOT_FOUND", "INVALID_MODEL"):
        return "check the model id (ids are case-sensitive): run 'hotfolder models'"
    if status == 413 or code in ("PAYLOAD_TOO_LARGE", "IMAGE_TOO_LARGE"):
        return "the upload is too large for Venice; set fit = true on the step"
    if status == 415:
        return "this is a bug in hotfolder's Venice client; please report it"
    if code == "CONTENT_POLICY_VIOLATION":
        return "the prompt or image was refused by Venice's content policy; change the prompt"
    return "fix the step's parameters or the input; other jobs go on"


def network_error(exc: httpx.HTTPError, endpoint: str) -> Unavailable:
    """A timeout, refused connection or reset as a retryable Unavailable."""
    kind = type(exc).__name__
    msg = f"Venice {endpoint}: {kind}: {exc or 'no detail'}"
    return Unavailable(msg, hint="check the network; the request is retried with backoff")
