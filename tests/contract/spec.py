"""Venice's OpenAPI spec as a test oracle: load it right, validate requests and responses.

The spec is ``<repo>/../shared/venice/openapi.yaml`` (veniceai/api-docs ``swagger.yaml``; see
``shared/venice/SOURCE.md``). Two traps are handled here:

* YAML 1.1 reads the bare aspect ratios (``- 16:9``) as base-60 integers and ``on``/``off`` as
  booleans. The loader below resolves plain scalars as YAML 1.2 does (no base-60 numbers,
  only ``true``/``false`` as booleans, no timestamps), so ``"16:9"`` stays a string.
* OpenAPI 3.0 schemas are not JSON Schema: ``nullable: true`` is turned into a ``"null"``
  type and ``$ref`` s resolve inside the spec document; the rest is Draft 4 (boolean
  ``exclusiveMinimum``), which is what OpenAPI 3.0 builds on.

Multipart requests are validated as a dict of form fields, the way a server sees them: a file
part is ``bytes`` (or a ``(filename, bytes, content_type)`` tuple), a text part is ``str`` and
is coerced to the property's declared type (``"true"`` → ``True``, ``"2"`` → ``2``), and a
repeated part is a list. Every failure raises :class:`SpecMismatch`, an ``AssertionError``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema
import yaml

__all__ = [
    "SPEC_PATH",
    "SpecMismatch",
    "load_spec",
    "operation",
    "validate_request",
    "validate_response",
    "validate_schema",
]

SPEC_PATH = Path(__file__).resolve().parents[2] / ".." / "shared" / "venice" / "openapi.yaml"
_SPEC_URI = "urn:venice:openapi"
_API_PREFIX = "/api/v1"
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/webp": (b"RIFF",),
}


class SpecMismatch(AssertionError):
    """A request or response does not match what the spec declares."""


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars."""


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    """The spec as plain data; aspect ratios stay strings. Cached: do not mutate it."""
    if not path.is_file():
        msg = f"the Venice spec is missing at {path}; check out shared/ beside the repo"
        raise FileNotFoundError(msg)
    with path.open(encoding="utf-8") as handle:
        spec = yaml.load(handle, Loader=_Yaml12Loader)
    if not isinstance(spec, dict):
        msg = f"{path} is not an OpenAPI document"
        raise TypeError(msg)
    return spec


def _to_json_schema(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 ``nullable`` into JSON Schema, recursively, without mutating."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _registry() -> referencing.Registry[Any]:
    document = _to_json_schema(load_spec())
    resource: referencing.Resource[Any] = referencing.Resource.from_contents(
        document, default_specification=referencing.jsonschema.DRAFT4
    )
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(_SPEC_URI, resource)
    return registry


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in ("", *parts))


def _resolve(node: Any) -> Any:
    """Follow ``$ref`` (possibly chained) to the plain node it names."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            msg = f"only local $refs are supported, got {ref!r}"
            raise SpecMismatch(msg)
        node = load_spec()
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _strip_prefix(path: str) -> str:
    return path[len(_API_PREFIX) :] if path.startswith(_API_PREFIX) else path


def operation(path: str, method: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(method, operation)`` for an API path; the method may be left out if there is one."""
    path = _strip_prefix(path)
    item = load_spec()["paths"].get(path)
    if item is None:
        msg = f"{path} is not a path in the spec"
        raise SpecMismatch(msg)
    methods = [m for m in ("get", "post", "put", "patch", "delete") if m in item]
    if method is None:
        if len(methods) != 1:
            msg = f"{path} has operations {methods}; pass method="
            raise SpecMismatch(msg)
        method = methods[0]
    method = method.lower()
    if method not in item:
        msg = f"{method.upper()} {path} is not in the spec"
        raise SpecMismatch(msg)
    return method, item[method]


def _validate(instance: Any, *pointer_parts: str, what: str) -> None:
    schema = {"$ref": f"{_SPEC_URI}#{_pointer(*pointer_parts)}"}
    validator = jsonschema.Draft4Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
        msg = f"{what} does not match the spec:\n  " + "\n  ".join(lines)
        raise SpecMismatch(msg)


def validate_schema(instance: Any, name: str) -> None:
    """Check data against one of the spec's ``components.schemas`` by name."""
    if name not in load_spec()["components"]["schemas"]:
        msg = f"{name} is not a schema in the spec"
        raise SpecMismatch(msg)
    _validate(instance, "components", "schemas", name, what=f"a {name}")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _properties(schema: Any) -> dict[str, Any]:
    """Property schemas of an object schema, merged over ``allOf`` and followed ``$ref``."""
    schema = _resolve(schema)
    props: dict[str, Any] = {}
    for part in schema.get("allOf", []):
        props.update(_properties(part))
    for name, prop in schema.get("properties", {}).items():
        props[name] = {**props.get(name, {}), **_resolve(prop)}
    return props


def _coerce_text(value: str, prop: Mapping[str, Any]) -> Any:
    kind = prop.get("type")
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    if kind in ("number", "integer"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


def _form_value(value: Any, prop: Mapping[str, Any]) -> Any:
    if isinstance(value, list):
        item = _resolve(prop.get("items", {}))
        return [_form_value(v, item) for v in value]
    if isinstance(value, (bytes, bytearray, tuple)) or hasattr(value, "read"):
        return "<binary>"  # a file part; OpenAPI 3.0 models it as string/binary
    if isinstance(value, str):
        return _coerce_text(value, prop)
    return value


def validate_request(
    path: str, content_type: str, body: Mapping[str, Any], *, method: str | None = None
) -> None:
    """Check a request body (a JSON object, or multipart fields as a dict) against the spec."""
    method, op = operation(path, method)
    media = _media_type(content_type)
    content = op.get("requestBody", {}).get("content", {})
    if media not in content:
        msg = f"{method.upper()} {path} declares no {media} request body (only {sorted(content)})"
        raise SpecMismatch(msg)
    instance: Any = dict(body)
    if media == "multipart/form-data":
        props = _properties(content[media]["schema"])
        instance = {}
        for name, value in body.items():
            prop = props.get(name, {})
            if prop.get("type") == "array" and not isinstance(value, list):
                value = [value]
            instance[name] = _form_value(value, prop)
    parts = ("paths", _strip_prefix(path), method, "requestBody", "content", media, "schema")
    _validate(instance, *parts, what=f"{method.upper()} {path} {media} request")


def _check_headers(
    declared: Mapping[str, Any], headers: Mapping[str, str], *parts: str, what: str
) -> None:
    lowered = {name.lower(): value for name, value in headers.items()}
    for name, spec in declared.items():
        value = lowered.get(name.lower())
        if value is None:
            if _resolve(spec).get("required"):
                msg = f"{what}: required header {name} is missing"
                raise SpecMismatch(msg)
            continue
        schema = _resolve(spec).get("schema", {})
        _validate(
            _coerce_text(value, schema),
            *parts,
            name,
            "schema",
            what=f"{what}: header {name}={value!r}",
        )


def validate_response(
    path: str,
    status: int,
    content_type: str,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
    declared_only: bool = True,
) -> None:
    """Check a response against the operation's declared responses.

    ``body`` is bytes/str (JSON is parsed) or already-parsed JSON. A status the operation
    does not declare fails unless ``declared_only=False``; then a JSON error body is checked
    against the spec's global error shapes (``PayloadTooLargeError`` for 413, else
    ``StandardError``), as the spec's error table describes them.
    """
    method, op = operation(path, method)
    media = _media_type(content_type)
    what = f"{method.upper()} {path} -> {status} {media}"
    responses = op.get("responses", {})
    declared = responses.get(str(status))
    if declared is None:
        if declared_only:
            msg = f"{what}: status {status} is not declared (declared: {sorted(responses)})"
            raise SpecMismatch(msg)
        if media != "application/json":
            msg = f"{what}: an undeclared error status must carry a JSON body"
            raise SpecMismatch(msg)
        schema_name = "PayloadTooLargeError" if status == 413 else "StandardError"
        _validate(_as_json(body, what), "components", "schemas", schema_name, what=what)
        return
    declared = _resolve(declared)
    parts = ("paths", _strip_prefix(path), method, "responses", str(status))
    if headers is not None:
        _check_headers(declared.get("headers", {}), headers, *parts, "headers", what=what)
    content = declared.get("content", {})
    if media not in content:
        msg = f"{what}: content type not declared (declared: {sorted(content)})"
        raise SpecMismatch(msg)
    if media.startswith("image/"):
        if not isinstance(body, (bytes, bytearray)) or not body:
            msg = f"{what}: expected raw image bytes"
            raise SpecMismatch(msg)
        if not bytes(body).startswith(_IMAGE_MAGIC.get(media, (b"",))):
            msg = f"{what}: the body is not a {media} file"
            raise SpecMismatch(msg)
        return
    _validate(_as_json(body, what), *parts, "content", media, "schema", what=what)


def _as_json(body: Any, what: str) -> Any:
    if isinstance(body, (bytes, bytearray, str)):
        try:
            return json.loads(body)
        except ValueError as exc:
            msg = f"{what}: the body is not JSON ({exc})"
            raise SpecMismatch(msg) from exc
    return body
