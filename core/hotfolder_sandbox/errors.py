"""The sandbox's errors: the responses it sends, and :class:`SandboxError` when it cannot run.

``ApiError`` carries a status and a JSON body up to the route, which turns it into the
response. 400s are ``DetailedError`` bodies: ``details`` is a zod ``.format()`` tree and
``issues`` the zod issue list, built from :class:`Issue` values with zod's own wording.

``SandboxError`` is raised to the caller of ``start_sandbox`` or ``serve`` when the sandbox
cannot listen or does not start; its ``hint`` says what to do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiError",
    "Issue",
    "SandboxError",
    "fault_error",
    "image_error",
    "invalid_request",
]

AUTH_FAILED = "Authentication failed"
INSUFFICIENT_BALANCE = (
    "Insufficient USD or Diem balance to complete request. "
    "Visit https://venice.ai/settings/api to add credits."
)


class SandboxError(Exception):
    """The sandbox cannot run here: ``message`` says why, ``hint`` what to do next."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ApiError(Exception):
    """A non-2xx answer: ``status``, a JSON ``body`` and extra ``headers``."""

    def __init__(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}: {body.get('error')}")
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Issue:
    """One zod issue: where (``path``), what (``code``), and the message zod would write."""

    path: tuple[str | int, ...]
    code: str
    message: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, **self.extra, "path": list(self.path), "message": self.message}

    @classmethod
    def required(cls, name: str, expected: str = "string") -> Issue:
        extra = {"expected": expected, "received": "undefined"}
        return cls((name,), "invalid_type", "Required", extra)

    @classmethod
    def wrong_type(cls, name: str | tuple[str | int, ...], expected: str, value: object) -> Issue:
        received = _zod_type(value)
        extra = {"expected": expected, "received": received}
        message = f"Expected {expected}, received {received}"
        return cls(_path(name), "invalid_type", message, extra)

    @classmethod
    def unrecognized(cls, keys: Iterable[str]) -> Issue:
        keys = sorted(keys)
        names = ", ".join(f"'{key}'" for key in keys)
        return cls(
            (), "unrecognized_keys", f"Unrecognized key(s) in object: {names}", {"keys": keys}
        )

    @classmethod
    def bad_enum(cls, name: str, options: Iterable[str], value: object) -> Issue:
        options = list(options)
        expected = " | ".join(f"'{option}'" for option in options)
        message = f"Invalid enum value. Expected {expected}, received '{value}'"
        return cls((name,), "invalid_enum_value", message, {"options": options, "received": value})

    @classmethod
    def too_small(cls, name: str | tuple[str | int, ...], kind: str, minimum: float) -> Issue:
        path = _path(name)
        message = {
            "string": f"String must contain at least {minimum:g} character(s)",
            "array": f"Array must contain at least {minimum:g} element(s)",
        }.get(kind, f"Number must be greater than or equal to {minimum:g}")
        extra = {"minimum": minimum, "type": kind, "inclusive": True, "exact": False}
        return cls(path, "too_small", message, extra)

    @classmethod
    def too_big(cls, name: str, kind: str, maximum: float) -> Issue:
        message = {
            "string": f"String must contain at most {maximum:g} character(s)",
            "array": f"Array must contain at most {maximum:g} element(s)",
        }.get(kind, f"Number must be less than or equal to {maximum:g}")
        extra = {"maximum": maximum, "type": kind, "inclusive": True, "exact": False}
        return cls((name,), "too_big", message, extra)

    @classmethod
    def custom(cls, name: str | tuple[str | int, ...] | None, message: str) -> Issue:
        return cls(_path(name) if name else (), "custom", message)


def _path(name: str | tuple[str | int, ...]) -> tuple[str | int, ...]:
    return name if isinstance(name, tuple) else (name,)


def _zod_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _format_tree(issues: Iterable[Issue]) -> dict[str, Any]:
    """zod's ``error.format()``: a ``{"_errors": [...]}`` node per path segment."""
    root: dict[str, Any] = {"_errors": []}
    for issue in issues:
        node = root
        for part in issue.path:
            node = node.setdefault(str(part), {"_errors": []})
        node["_errors"].append(issue.message)
    return root


def invalid_request(
    issues: Iterable[Issue], *, error: str = "Invalid request parameters", code: str | None = None
) -> ApiError:
    """A 400 ``DetailedError`` for the given issues."""
    issues = list(issues)
    body: dict[str, Any] = {"error": error}
    if code:
        body["code"] = code
    body["details"] = _format_tree(issues)
    body["issues"] = [issue.to_dict() for issue in issues]
    return ApiError(400, body)


def image_error(status: int, code: str, message: str, field_name: str | None) -> ApiError:
    """An image or body that cannot be used: too small, too large, unreadable.

    A 400 is the image operations' ``DetailedError`` (the issue under ``field_name``, or at
    the root when it is None); any other status is ``{"error", "code"}``, the shape of the
    global ``PayloadTooLargeError`` (413) and of the error table's 422.
    """
    if status == 400:
        return invalid_request([Issue.custom(field_name, message)], error=message, code=code)
    return ApiError(status, {"error": message, "code": code})


_FAULT_BODIES: dict[int, tuple[str, str]] = {
    429: ("The model is overloaded. Please try again later.", "MODEL_OVERLOADED"),
    503: ("The model is at capacity. Please try again later.", "MODEL_AT_CAPACITY"),
    504: ("The request timed out. Please try again.", "REQUEST_TIMEOUT"),
}
_FAILED_500: dict[str, tuple[str, str]] = {
    "/image/edit": ("Image edit failed", "IMAGE_EDIT_ERROR"),
    "/image/multi-edit": ("Image edit failed", "IMAGE_EDIT_ERROR"),
    "/image/upscale": ("Image upscaling failed", "UPSCALE_FAILED"),
}


def fault_error(status: int, endpoint: str) -> ApiError:
    """The body Venice sends for an injected fault status on ``endpoint``."""
    if status == 500:
        message, code = _FAILED_500.get(
            endpoint, ("Inference processing failed", "INFERENCE_FAILED")
        )
    else:
        message, code = _FAULT_BODIES.get(status, (f"Simulated error {status}", "UNKNOWN_ERROR"))
    headers = {"Retry-After": "1"} if status in (429, 503) else {}
    return ApiError(status, {"error": message, "code": code}, headers)
