"""Reading a request body into fields: JSON or multipart, with the size cap and the 415.

Multipart fields come out as ``str`` (text parts) or :class:`Upload` (file parts); a part
name that repeats becomes a list. JSON comes out as parsed, whatever its top-level type; the
per-endpoint checks decide what is acceptable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from hotfolder_sandbox.errors import ApiError, Issue, image_error, invalid_request

__all__ = ["Form", "Upload", "read_form", "request_size"]

_MAX_PARTS = 1000


@dataclass(frozen=True)
class Upload:
    """A multipart file part."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Form:
    """A parsed request body: ``kind`` says how it was sent, ``size`` how many bytes it had."""

    kind: Literal["json", "multipart"]
    payload: Any
    size: int


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def request_size(request: Request) -> int:
    """The declared body size (Content-Length), 0 when absent or malformed."""
    try:
        return max(0, int(request.headers.get("content-length", "0")))
    except ValueError:
        return 0


def _too_large(limit: int, status: int) -> ApiError:
    message = f"The request payload is too large: the limit is {limit:,} bytes."
    return image_error(status, "PAYLOAD_TOO_LARGE", message, None)


async def _read_body(request: Request, limit: int, too_large_status: int) -> bytes:
    if request_size(request) > limit:
        raise _too_large(limit, too_large_status)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, too_large_status)
        chunks.append(chunk)
    return b"".join(chunks)


async def _replay(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def _parse_multipart(request: Request, body: bytes) -> dict[str, Any]:
    parser = MultiPartParser(
        request.headers,
        _replay(body),
        max_files=_MAX_PARTS,
        max_fields=_MAX_PARTS,
        max_part_size=len(body) + 1,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise invalid_request(
            [Issue.custom(None, f"Malformed multipart body: {exc.message}")]
        ) from exc
    fields: dict[str, Any] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                item: str | Upload = value
            else:
                item = Upload(value.filename, value.content_type, await value.read())
            if name in fields:
                previous = fields[name]
                fields[name] = [*previous, item] if isinstance(previous, list) else [previous, item]
            else:
                fields[name] = item
    finally:
        await form.close()
    return fields


async def read_form(request: Request, max_bytes: int, *, too_large_status: int = 400) -> Form:
    """Read and parse the body; 415 for other content types; past ``max_bytes``,
    ``too_large_status`` (400 or 413) with the code ``PAYLOAD_TOO_LARGE``."""
    kind = media_type(request)
    if kind not in ("application/json", "multipart/form-data"):
        error = {"error": "Invalid request content-type", "code": "INVALID_CONTENT_TYPE"}
        raise ApiError(415, error)
    body = await _read_body(request, max_bytes, too_large_status)
    if kind == "multipart/form-data":
        return Form("multipart", await _parse_multipart(request, body), len(body))
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        issue = Issue.custom(None, f"Invalid JSON body: {exc}")
        raise invalid_request([issue], error="Invalid JSON in request body") from exc
    return Form("json", payload, len(body))
