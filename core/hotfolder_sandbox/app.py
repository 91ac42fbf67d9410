"""The Starlette app: Venice's routes under ``/api/v1`` and the admin routes under ``/_sandbox``.

An image request goes through the same gates, in the same order, every time: added latency →
authentication (401, or the x402 402) → lockout (429) → rate limit (429) → body (415, 400)
→ endpoint checks and images (400) → balance (402) → fault draw (an error status, or a
dropped connection) → render in a worker thread → 200. Size errors are 400s, as the spec's
image operations declare; ``max_bytes_status`` and ``max_pixels_status`` make them the error
table's 413 and 422 instead. Every answer is counted; every non-2xx answer to a key counts
towards that key's lockout, except the lockout's own 429s.

Every 200 image response carries ``X-Simulated: true`` (:data:`SIMULATED_HEADER`): a generic
header any client can read to tell a simulated result from a real one. The image itself is
also marked in its metadata (see :mod:`hotfolder_sandbox.render`), for the people who open it.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from decimal import Decimal

import anyio
import httpx
from loguru import logger
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from hotfolder_sandbox.admin import admin_routes
from hotfolder_sandbox.billing import InsufficientBalance
from hotfolder_sandbox.catalog import MODEL_TYPES
from hotfolder_sandbox.config import SandboxConfig
from hotfolder_sandbox.errors import (
    AUTH_FAILED,
    INSUFFICIENT_BALANCE,
    ApiError,
    Issue,
    fault_error,
    invalid_request,
)
from hotfolder_sandbox.faults import RESET
from hotfolder_sandbox.forms import read_form, request_size
from hotfolder_sandbox.jobs import PREPARERS, Preparer
from hotfolder_sandbox.state import SandboxState

__all__ = ["API_PREFIX", "SIMULATED_HEADER", "SimulatedConnectionReset", "create_app"]

API_PREFIX = "/api/v1"
#: Set to ``true`` on every simulated image response.
SIMULATED_HEADER = "X-Simulated"
_DEFAULT_MODEL_TYPE = "text"


class SimulatedConnectionReset(httpx.RemoteProtocolError):
    """Raised inside the app to drop a connection on purpose.

    Under uvicorn the server closes the socket after the response head, so a client reads a
    truncated response; with ``httpx.ASGITransport`` the client gets this exception itself,
    an ``httpx.TransportError`` like a real drop.
    """


class _DroppedConnection(Response):
    """Starts a response that promises a body, then drops the connection."""

    def __init__(self, ray: str) -> None:
        super().__init__(status_code=200)
        self.ray = ray

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"image/png"), (b"content-length", b"1048576")]
        headers.append((b"cf-ray", self.ray.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        msg = f"sandbox: simulated connection reset (CF-RAY {self.ray})"
        raise SimulatedConnectionReset(msg)


class _Exchange:
    """What the pipeline learned about one request so far."""

    def __init__(self, request: Request, config: SandboxConfig) -> None:
        self.ray = f"{secrets.token_hex(8)}-SBX"
        self.headers = {"CF-RAY": self.ray, "x-venice-version": config.version}
        self.key: str | None = None
        self.size = request_size(request)
        self.locked_out = False


async def _delay(config: SandboxConfig) -> None:
    if config.latency_ms:
        await anyio.sleep(config.latency_ms / 1000)


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _x402_discovery(request: Request) -> ApiError:
    """The 402 an inference endpoint sends to a caller with no credentials at all."""
    requirement = {
        "scheme": "exact",
        "network": "eip155:8453",
        "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "amount": "10000",
        "payTo": "0x0000000000000000000000000000000000005a4d",
        "maxTimeoutSeconds": 300,
        "extra": {"name": "USD Coin", "version": "2", "sandbox": True},
    }
    body = {
        "x402Version": 2,
        "error": "Payment required",
        "resource": {"url": str(request.url), "description": "Venice API", "mimeType": "image/png"},
        "accepts": [requirement],
        "extensions": {"sign-in-with-x": {"domain": "api.venice.ai", "sandbox": True}},
        "authOptions": {
            "apiKey": {
                "header": "Authorization: Bearer YOUR_API_KEY",
                "getKey": "https://venice.ai/settings/api",
                "docs": "https://docs.venice.ai/api-reference",
            },
            "x402Wallet": {
                "header": "SIGN-IN-WITH-X",
                "legacyHeader": "X-Sign-In-With-X",
                "topUp": "POST /api/v1/x402/top-up",
                "docs": "https://docs.venice.ai/api-reference/endpoint/x402/top-up",
            },
        },
    }
    header = base64.b64encode(json.dumps({"x402Version": 2, "accepts": [requirement]}).encode())
    return ApiError(402, body, {"PAYMENT-REQUIRED": header.decode()})


def _authenticate(request: Request, config: SandboxConfig) -> str:
    """The API key from ``Authorization: Bearer``; 401 (or the x402 402) otherwise."""
    authorization = request.headers.get("authorization")
    wallet = request.headers.get("sign-in-with-x") or request.headers.get("x-sign-in-with-x")
    if authorization is None and wallet is None and config.x402_without_credentials:
        raise _x402_discovery(request)
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, {"error": AUTH_FAILED})
    if config.valid_keys is not None and key not in config.valid_keys:
        raise ApiError(401, {"error": AUTH_FAILED})
    return key


def _check_lockout(state: SandboxState, exchange: _Exchange, key: str) -> None:
    until = state.lockout.locked_until(key)
    if until is None:
        return
    config = state.config
    exchange.locked_out = True
    message = (
        f"Too many failed attempts (> {config.lockout_failures}) resulting in a non-success "
        f"status code. Please wait {config.lockout_duration_seconds:g}s and try again."
    )
    retry = str(max(1, math.ceil(until - state.clock())))
    raise ApiError(429, {"error": message}, {"Retry-After": retry})


def _balance_headers(usd: Decimal, diem: Decimal | None) -> dict[str, str]:
    headers = {"x-venice-balance-usd": f"{float(usd):.6f}"}
    if diem is not None:
        headers["x-venice-balance-diem"] = f"{float(diem):.6f}"
    return headers


def _error_response(error: ApiError, exchange: _Exchange, config: SandboxConfig) -> Response:
    headers = {**exchange.headers, **error.headers}
    if not config.retry_after:
        headers.pop("Retry-After", None)
    return JSONResponse(error.body, status_code=error.status, headers=headers)


def _finish(state: SandboxState, endpoint: str, exchange: _Exchange, outcome: int | str) -> None:
    state.stats.record(endpoint, outcome, exchange.size)
    failed = isinstance(outcome, int) and not 200 <= outcome < 300
    if exchange.key is None or not failed or exchange.locked_out:
        return
    config = state.config
    if state.lockout.record_failure(
        exchange.key,
        config.lockout_failures,
        config.lockout_window_seconds,
        config.lockout_duration_seconds,
    ):
        logger.info(
            "sandbox: key locked out for {:g}s after repeated failures",
            config.lockout_duration_seconds,
        )
        state.stats.lockout()


async def _run_image(
    request: Request, state: SandboxState, endpoint: str, exchange: _Exchange, prepare: Preparer
) -> Response:
    config = state.config
    key = exchange.key = _authenticate(request, config)
    _check_lockout(state, exchange, key)
    decision = state.limiter.hit(key, config.requests_per_minute, config.rate_window_seconds)
    exchange.headers.update(decision.headers())
    exchange.headers.update(_balance_headers(*state.ledger.balances()))
    if not decision.allowed:
        retry = {"Retry-After": str(decision.retry_after(state.clock()))}
        raise ApiError(429, {"error": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"}, retry)
    form = await read_form(
        request, config.max_request_bytes, too_large_status=config.max_bytes_status
    )
    exchange.size = form.size
    prepared = await prepare(form, state)
    try:
        debit = state.ledger.debit(prepared.price)
    except InsufficientBalance as exc:
        error = {"error": INSUFFICIENT_BALANCE, "code": "INSUFFICIENT_BALANCE"}
        raise ApiError(402, error) from exc
    try:
        fault = state.faults.draw(config.fault_rates, config.reset_rate)
        if fault == RESET:
            return _DroppedConnection(exchange.ray)
        if fault is not None:
            raise fault_error(int(fault), endpoint)
        body = await run_in_threadpool(prepared.render)
    except BaseException:
        state.ledger.refund(debit)
        raise
    state.stats.paid(endpoint, debit.amount)
    headers = {
        **exchange.headers,
        **_balance_headers(debit.usd_before, debit.diem_before),
        SIMULATED_HEADER: "true",
    }
    return Response(body, media_type=prepared.media_type, headers={**headers, **prepared.headers})


#: The outcome recorded for a request its client broke off (in ``stats()["requests"]``).
DISCONNECTED = "disconnected"


def _image_route(endpoint: str, prepare: Preparer) -> Route:
    async def handle(request: Request) -> Response:
        state = _state(request)
        exchange = _Exchange(request, state.config)
        outcome: int | str = 500
        try:
            await _delay(state.config)
            response = await _run_image(request, state, endpoint, exchange, prepare)
            outcome = RESET if isinstance(response, _DroppedConnection) else response.status_code
            return response
        except ApiError as error:
            outcome = error.status
            return _error_response(error, exchange, state.config)
        except ClientDisconnect:
            # The client broke its request off before the body ended: nobody to answer, and
            # no failed request counted against the key (Venice sees a dropped connection).
            outcome = DISCONNECTED
            return Response(status_code=499)
        except Exception:
            logger.exception(
                "sandbox: {} failed on CF-RAY {}; this is a sandbox bug", endpoint, exchange.ray
            )
            return _error_response(fault_error(500, endpoint), exchange, state.config)
        finally:
            _finish(state, endpoint, exchange, outcome)

    return Route(endpoint, handle, methods=["POST"])


async def _models(request: Request) -> Response:
    state = _state(request)
    exchange = _Exchange(request, state.config)
    await _delay(state.config)
    model_type = request.query_params.get("type", _DEFAULT_MODEL_TYPE)
    if model_type not in MODEL_TYPES:
        error = invalid_request([Issue.bad_enum("type", MODEL_TYPES, model_type)])
        state.stats.record("/models", error.status, 0)
        return _error_response(error, exchange, state.config)
    state.stats.record("/models", 200, 0)
    return JSONResponse(state.catalog.listing(model_type), headers=exchange.headers)


async def _balance(request: Request) -> Response:
    state = _state(request)
    exchange = _Exchange(request, state.config)
    outcome = 200
    try:
        await _delay(state.config)
        exchange.key = _authenticate(request, state.config)
        _check_lockout(state, exchange, exchange.key)
        usd, diem = state.ledger.balances()
        headers = {**exchange.headers, **_balance_headers(usd, diem)}
        body = state.ledger.snapshot(state.config.diem_epoch_allocation)
        return JSONResponse(body, headers=headers)
    except ApiError as error:
        outcome = error.status
        return _error_response(error, exchange, state.config)
    finally:
        _finish(state, "/billing/balance", exchange, outcome)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox as an ASGI app; its state is ``app.state.sandbox`` (a ``SandboxState``)."""
    routes = [_image_route(endpoint, prepare) for endpoint, prepare in PREPARERS.items()]
    routes += [Route("/models", _models), Route("/billing/balance", _balance)]
    app = Starlette(
        routes=[Mount(API_PREFIX, routes=routes), Mount("/_sandbox", routes=admin_routes())],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sandbox = SandboxState(config or SandboxConfig())
    return app
