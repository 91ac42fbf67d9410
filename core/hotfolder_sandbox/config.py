"""``SandboxConfig``: every knob of the sandbox, validated, immutable, replaceable at run time.

The defaults are Venice's documented numbers (20 image requests a minute, the 20-failures-in-
30-seconds lockout, 25 MB files, the pixel limits). Fast tests shrink the windows; fault
drills raise the fault rates. The admin endpoint ``PATCH /_sandbox/config`` accepts any subset
of these fields as JSON; ``docs/sandbox.md`` describes them. Durations end in ``_seconds``; the
older ``_s`` names (``RENAMED``) are still accepted for one release, with a warning.

Size errors follow the spec's image operations, which declare 400 but neither 413 nor 422:
an image or body over its byte limit, and an image over ``max_pixels``, are 400s by default.
``max_bytes_status=413`` and ``max_pixels_status=422`` bring back the statuses of Venice's
global error table (the sandbox's defaults before).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["RENAMED", "SandboxConfig", "renamed_fields"]

#: The spec's ``info.version``; sent as ``x-venice-version``.
SPEC_VERSION = "20260821.193530"

#: Old field name -> new name, still accepted for one release.
RENAMED = {
    "rate_window_s": "rate_window_seconds",
    "lockout_window_s": "lockout_window_seconds",
    "lockout_duration_s": "lockout_duration_seconds",
}


def renamed_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with each old field name of ``RENAMED`` moved to its new name (with a warning).

    When both names are given the old one is left in place, for validation to refuse.
    """
    out = dict(data)
    for old, new in RENAMED.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
            logger.warning("sandbox config: {} is deprecated; rename it to {}", old, new)
    return out


class SandboxConfig(BaseModel):
    """How the sandbox behaves. Frozen: change it with ``model_copy(update=...)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Authentication
    valid_keys: frozenset[str] | None = Field(
        default=None, description="accepted API keys; None accepts any non-empty key"
    )
    x402_without_credentials: bool = Field(
        default=False, description="answer a request with no credentials at all with the x402 402"
    )

    # Rate limit and lockout (per API key)
    requests_per_minute: int = Field(default=20, ge=1)
    rate_window_seconds: float = Field(default=60.0, gt=0, description="the rate limit's window")
    retry_after: bool = Field(default=True, description="send Retry-After on 429")
    lockout_failures: int = Field(default=20, ge=1, description="more failures than this lock")
    lockout_window_seconds: float = Field(default=30.0, gt=0)
    lockout_duration_seconds: float = Field(default=30.0, gt=0)

    # Money
    balance_usd: float = Field(default=100.0, ge=0)
    balance_diem: float | None = Field(default=0.0, ge=0, description="None: not staking")
    diem_epoch_allocation: float = Field(default=0.0, ge=0)

    # Limits
    max_image_bytes: int = Field(
        default=25_000_000, ge=1, description="per image (upload, base64 or fetched URL)"
    )
    max_request_bytes: int = Field(default=200_000_000, ge=1, description="the whole body")
    max_bytes_status: Literal[400, 413] = Field(
        default=400,
        description="status past max_image_bytes or max_request_bytes: 400 (a DetailedError "
        "with code PAYLOAD_TOO_LARGE, the status the image operations declare) or 413 "
        "(Venice's global PayloadTooLargeError)",
    )
    min_pixels: int = Field(default=65_536, ge=1)
    max_pixels: int = Field(default=33_177_600, ge=1)
    max_upscale_output_pixels: int = Field(default=16_777_216, ge=1)
    max_pixels_status: Literal[400, 422] = Field(
        default=400,
        description="status past max_pixels: 400 (a DetailedError with code IMAGE_TOO_LARGE, "
        "the status the image operations declare) or 422 (Venice's global error table)",
    )
    enforce_model_constraints: bool = Field(
        default=True,
        description="reject prompts, aspect ratios, resolutions and qualities outside the "
        "model's /models constraints (the API's own behaviour there is unknown)",
    )
    fetch_image_urls: bool = Field(
        default=True,
        description="download http(s) image inputs (edit, multi-edit, background-remove "
        "image_url), loopback and private hosts included; off: a 400 asking for the file",
    )

    # Faults
    latency_ms: float = Field(default=0.0, ge=0, description="added to every API request")
    fault_rates: dict[int, float] = Field(
        default_factory=dict, description='status -> probability, e.g. {"500": 0.2}'
    )
    reset_rate: float = Field(default=0.0, ge=0, le=1, description="connection drops")
    seed: int | None = Field(default=None, description="seed for the fault draws")

    version: str = SPEC_VERSION

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_fields(data) if isinstance(data, Mapping) else data

    @field_validator("fault_rates")
    @classmethod
    def _rates_valid(cls, rates: dict[int, float]) -> dict[int, float]:
        for status, rate in rates.items():
            if not 400 <= status <= 599:
                msg = f"fault status {status} is not an HTTP error status (400-599)"
                raise ValueError(msg)
            if not 0 <= rate <= 1:
                msg = f"fault rate for {status} is {rate}; give a probability between 0 and 1"
                raise ValueError(msg)
        return rates

    @model_validator(mode="after")
    def _total_rate(self) -> SandboxConfig:
        total = sum(self.fault_rates.values()) + self.reset_rate
        if total > 1:
            msg = f"fault rates and reset_rate add up to {total:g}; keep the sum at most 1"
            raise ValueError(msg)
        if self.min_pixels > self.max_pixels:
            msg = "min_pixels is above max_pixels; lower min_pixels or raise max_pixels"
            raise ValueError(msg)
        return self
