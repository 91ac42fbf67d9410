"""How an image call becomes an HTTP request body: multipart for bytes, JSON for URLs.

Each endpoint has its own field names and rules (``CONTRACT.md`` §7):

===================  ==================  ==============  =========================
endpoint             image field         URL inputs      model field
===================  ==================  ==============  =========================
/image/edit          ``image``           in ``image``    ``model``
/image/multi-edit    ``images`` (list)   in ``images``   ``modelId``
/image/upscale       ``image``           none            none
/image/background-   ``image``           ``image_url``   none
remove
===================  ==================  ==============  =========================

Local bytes go as multipart file parts (no base64 inflation), streamed from their file when
the input has one (:class:`hotfolder.artifact.SourceFile`: nothing held while the request
waits for its slot, and no more than a chunk at a time handed to the socket); form values are
strings (``"true"``/``"false"``, ``"2"``). A URL input goes as JSON where the endpoint takes one;
multi-edit's multipart form takes files only, so a mix of URLs and files is sent as JSON with
the files as ``data:`` URLs. Fields the endpoint does not declare are refused here, so an
unknown key can never reach the API.

Venice fetches a URL input itself; when it cannot (the host is not reachable from Venice, the
URL expired), it answers 400 as if the image were bad ("corrupted or unreadable", "invalid or
corrupt", "could not fetch"). :func:`url_refused` recognises that answer, so that the client
can send the same image once more as bytes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from hotfolder.artifact import SourceFile

EndpointName = Literal["edit", "multi-edit", "upscale", "background-remove"]

_EDIT_FIELDS = (
    "prompt",
    "aspect_ratio",
    "resolution",
    "output_format",
    "safe_mode",
    "enhance_prompt",
    "disable_prompt_optimization_thinking",
)


@dataclass(frozen=True)
class Endpoint:
    """One image endpoint's wire rules."""

    name: EndpointName
    path: str
    #: The field that carries uploaded bytes (a list for multi-edit).
    image_field: str
    #: The field that carries a URL input, or None when the endpoint takes no URL.
    url_field: str | None
    #: Every other field the request schema declares.
    fields: tuple[str, ...]
    many: bool = False


ENDPOINTS: dict[EndpointName, Endpoint] = {
    "edit": Endpoint("edit", "/image/edit", "image", "image", ("model", *_EDIT_FIELDS)),
    "multi-edit": Endpoint(
        "multi-edit",
        "/image/multi-edit",
        "images",
        "images",
        ("modelId", "quality", *_EDIT_FIELDS),
        many=True,
    ),
    "upscale": Endpoint("upscale", "/image/upscale", "image", None, ("scale", "creativity")),
    "background-remove": Endpoint(
        "background-remove", "/image/background-remove", "image", "image_url", ()
    ),
}


@dataclass(frozen=True)
class ImageInput:
    """One input image: bytes to upload (held, or in a file), or a public URL the API fetches
    itself."""

    data: bytes | None = None
    media_type: str = "application/octet-stream"
    filename: str = "image"
    url: str | None = None
    file: SourceFile | None = None

    def __post_init__(self) -> None:
        if [self.data, self.url, self.file].count(None) != 2:
            msg = "an ImageInput holds data, a file or a url"
            raise ValueError(msg)

    def __repr__(self) -> str:
        if self.url is not None:
            return f"ImageInput(url={self.url!r})"
        return f"ImageInput({self.filename!r}, {self.media_type}, {self.size} bytes)"

    @property
    def size(self) -> int:
        """How many bytes are uploaded (0 for a URL)."""
        return self.file.size if self.file is not None else len(self.data or b"")

    def content(self) -> bytes:
        """The bytes to upload, read from the file when they are in one."""
        if self.file is not None:
            return self.file.read_bytes()
        assert self.data is not None
        return self.data

    def base64(self) -> str:
        return base64.b64encode(self.content()).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.base64()}"


@dataclass(frozen=True)
class Body:
    """A request body: ``json`` bytes, or multipart ``data`` (text) plus ``files`` (the inputs
    with bytes or a file to stream)."""

    kind: Literal["json", "multipart"]
    json: bytes | None = None
    data: dict[str, str] | None = None
    files: list[tuple[str, ImageInput]] | None = None

    @contextmanager
    def request_kwargs(self) -> Iterator[dict[str, Any]]:
        """Keyword arguments for ``httpx.AsyncClient.build_request``, valid inside the block:
        a file input is open for streaming meanwhile (read again from its start for a retry),
        and closed after."""
        if self.kind == "json":
            yield {"content": self.json, "headers": {"content-type": "application/json"}}
            return
        with ExitStack() as stack:
            files = [
                (
                    field,
                    (
                        image.filename,
                        stack.enter_context(image.file.open())
                        if image.file is not None
                        else image.data or b"",
                        image.media_type,
                    ),
                )
                for field, image in self.files or []
            ]
            yield {"data": self.data, "files": files}


def build_body(endpoint: Endpoint, fields: Mapping[str, Any], images: Sequence[ImageInput]) -> Body:
    """The body for ``endpoint``; fields set to None are left out (the API's default)."""
    unknown = sorted(set(fields) - set(endpoint.fields))
    if unknown:
        msg = f"{endpoint.path} does not take {', '.join(unknown)}"
        raise ValueError(msg)
    if not images or (len(images) > 1 and not endpoint.many):
        msg = f"{endpoint.path} takes {'one or more images' if endpoint.many else 'one image'}"
        raise ValueError(msg)
    values = {name: value for name, value in fields.items() if value is not None}
    urls = [image for image in images if image.url is not None]
    if urls and endpoint.url_field is None:
        msg = f"{endpoint.path} takes no URL input; fetch the image and upload its bytes"
        raise ValueError(msg)
    if urls:
        return _json_body(endpoint, values, images)
    files = [(endpoint.image_field, image) for image in images]
    return Body("multipart", data={k: form_value(v) for k, v in values.items()}, files=files)


def _json_body(endpoint: Endpoint, values: dict[str, Any], images: Sequence[ImageInput]) -> Body:
    payload = dict(values)
    if endpoint.many:
        payload[endpoint.image_field] = [
            image.url if image.url is not None else image.data_url() for image in images
        ]
    else:
        assert endpoint.url_field is not None
        payload[endpoint.url_field] = images[0].url
    return Body("json", json=json.dumps(payload).encode())


def form_value(value: Any) -> str:
    """A multipart text value: ``true``/``false`` for booleans, ``2`` rather than ``2.0``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_URL_REFUSED = re.compile(r"corrupt|unreadable|invalid image|fetch|download", re.IGNORECASE)


def url_refused(status: int, code: str | None, message: str) -> bool:
    """Whether an error answer to a request with URL inputs says Venice could not use an image
    URL: a 400 that calls the image corrupt, unreadable or invalid, or says the fetch failed."""
    if status != 400:
        return False
    return code == "CORRUPTED_IMAGE" or bool(_URL_REFUSED.search(message))
