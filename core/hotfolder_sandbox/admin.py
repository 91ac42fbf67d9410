"""The admin routes under ``/_sandbox``: stats, config (faults, limits, latency), balance, reset.

They need no API key and are not counted in the stats. ``docs/sandbox.md`` documents each
with a curl example, and every config field.

==========================  ==========================================================
``GET /_sandbox/stats``     the counters (see ``Stats.snapshot``)
``GET /_sandbox/config``    the config as JSON
``PATCH /_sandbox/config``  any subset of ``SandboxConfig`` fields, e.g.
                            ``{"fault_rates": {"500": 0.2}, "reset_rate": 0.1, "seed": 7,
                            "latency_ms": 250, "requests_per_minute": 5,
                            "max_bytes_status": 413, "max_pixels_status": 422}``
``GET /_sandbox/balance``   the ``/billing/balance`` body
``POST /_sandbox/balance``  ``{"usd": 5}`` / ``{"diem": 1}`` set, ``{"add_usd": 5}`` /
                            ``{"add_diem": 1}`` top up; answers the new balance
``POST /_sandbox/reset``    counters, rate limits, lockouts, fault draws and the balance
                            back to the configured start; answers ``{"reset": true}``
==========================  ==========================================================
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hotfolder_sandbox.state import SandboxState

__all__ = ["admin_routes"]


class _BalanceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    usd: float | None = Field(default=None, ge=0)
    diem: float | None = Field(default=None, ge=0)
    add_usd: float = 0.0
    add_diem: float = 0.0


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _bad(message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=400)


async def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        return _bad(f"the body is not JSON: {exc}")
    if not isinstance(payload, dict):
        return _bad("send a JSON object")
    return payload


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]


async def _stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats.snapshot())


async def _config(request: Request) -> Response:
    state = _state(request)
    if request.method == "PATCH":
        payload = await _json_object(request)
        if isinstance(payload, Response):
            return payload
        try:
            state.configure(payload)
        except ValidationError as exc:
            return _bad(
                "invalid sandbox config; see details and fix the named fields", _errors(exc)
            )
    return JSONResponse(state.config.model_dump(mode="json"))


async def _balance(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        payload = await _json_object(request)
        if isinstance(payload, Response):
            return payload
        try:
            change = _BalanceChange.model_validate(payload)
        except ValidationError as exc:
            return _bad("invalid balance change; use usd, diem, add_usd, add_diem", _errors(exc))
        state.ledger.set(usd=change.usd, diem=change.diem)
        state.ledger.add(usd=change.add_usd, diem=change.add_diem)
    return JSONResponse(state.ledger.snapshot(state.config.diem_epoch_allocation))


async def _reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"reset": True})


def admin_routes() -> list[BaseRoute]:
    return [
        Route("/stats", _stats, methods=["GET"]),
        Route("/config", _config, methods=["GET", "PATCH"]),
        Route("/balance", _balance, methods=["GET", "POST"]),
        Route("/reset", _reset, methods=["POST"]),
    ]
