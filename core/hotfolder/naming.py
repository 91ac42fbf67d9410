"""Safe output names: a small template language and a join that cannot leave its root.

A name template is plain text with ``{field}`` placeholders (``"{stem}-{n:04d}.{ext}"``).
Templates are parsed once, when the config loads, by :func:`parse_template`: only the fields a
sink offers are allowed, with no attribute or index access (``{stem.__class__}``, ``{x[0]}``),
no conversion (``{stem!r}``) and no format spec except zero-padded integers on integer fields
(``{n:04d}``). Rendering substitutes plain strings, never rich objects, and every value is
passed through :func:`sanitize_component` first, so a value can never add a folder level;
the one exception is a :class:`SubPath` field (``{dir}``: the input's subfolder), whose value is
folders: each of its components is sanitised alike (``..`` becomes ``_``), it must stand for
whole folders (``{dir}/{stem}.{ext}``), and when it is empty the ``/`` after it goes too.

The template's own text may contain ``/`` to make subfolders; :func:`join_inside` then proves
that the rendered path stays inside the sink's root, following no symbolic link out of it.

Sinks that write named outputs (the ``folder`` sink, S3) take an :data:`OutputName` parameter,
which offers the :data:`OUTPUT_FIELDS` and is checked when the config loads, and then::

    target = join_inside(root, render_name(params.name, context, artifact))

A sink with fields of its own uses the parts directly::

    template = parse_template(params.name, fields={"stem": str, "n": int})
    target = join_inside(root, template.render(stem=artifact.stem, n=job.seq))

The check in :func:`join_inside` and the write that follows are separate steps, so a user who
can write inside the sink's root could still swap a folder for a link in between; keep sink
roots writable by the daemon's user only.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, Annotated
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator

from hotfolder.errors import SinkError
from hotfolder.fsutil import write_failure

if TYPE_CHECKING:
    from hotfolder.artifact import Artifact
    from hotfolder.components import SinkContext
    from hotfolder.job import Job

__all__ = [
    "MAX_COMPONENT_BYTES",
    "MAX_VALUE_BYTES",
    "NameTemplate",
    "SubPath",
    "join_inside",
    "parse_template",
    "sanitize_component",
    "sanitize_folders",
]

#: Longest a substituted value may be, in UTF-8 bytes.
MAX_VALUE_BYTES = 200
#: Longest one rendered path component may be, in UTF-8 bytes (the usual file-system limit).
MAX_COMPONENT_BYTES = 255

_INT_SPEC = re.compile(r"(0[1-9])?d")
_UNSAFE_CHARS = re.compile(r'[/\\<>:"|?*\x00-\x1f\x7f]')
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"{prefix}{i}" for prefix in ("COM", "LPT") for i in range(1, 10)]
)


class SubPath(str):
    """The type of a template field whose value is a relative folder path (``{dir}``), not
    one name: it must stand for whole folders, and each of its components is sanitised."""

    __slots__ = ()


@dataclass(frozen=True)
class NameTemplate:
    """A parsed template: literal text and fields, rendered with :meth:`render`."""

    text: str
    #: ``(literal, field, spec)`` triples; ``field`` is None for trailing literal text.
    parts: tuple[tuple[str, str | None, str], ...]
    fields: frozenset[str]
    #: The fields of type :class:`SubPath`.
    path_fields: frozenset[str] = frozenset()

    def render(self, **values: str | int) -> str:
        """The relative path: literal text plus each sanitised value.

        ``values`` must give every field the template uses; ints are formatted with the
        field's spec (``{n:04d}``), a :class:`SubPath` field as sanitised folders (nothing,
        and no ``/`` after it, when empty), everything else as a sanitised string.
        """
        out = []
        drop_slash = False
        for literal, field, spec in self.parts:
            out.append(literal.removeprefix("/") if drop_slash else literal)
            drop_slash = False
            if field is None:
                continue
            value = values[field]
            if field in self.path_fields:
                folders = sanitize_folders(str(value))
                out.append(folders)
                drop_slash = not folders
            elif isinstance(value, int) and not isinstance(value, bool):
                out.append(format(value, spec or "d"))
            else:
                out.append(sanitize_component(str(value)))
        return "".join(out)


def parse_template(text: str, fields: dict[str, type]) -> NameTemplate:
    """Parse and check ``text`` against the allowed ``fields`` (name -> ``str`` or ``int``).

    Raises ValueError naming the problem; pydantic turns it into a config error with the key.
    """
    if not text:
        msg = "the name template is empty"
        raise ValueError(msg)
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        msg = f"name template {text!r} is malformed: {exc} (write '{{{{' for a literal brace)"
        raise ValueError(msg) from exc
    parts = []
    for literal, field, spec, conversion in parsed:
        if field is not None:
            _check_field(text, field, spec or "", conversion, fields)
        parts.append((literal, field, spec or ""))
    sample = "".join(literal + ("x" if field is not None else "") for literal, field, _ in parts)
    _check_literal_path(text, sample)
    used = frozenset(p[1] for p in parts if p[1] is not None)
    path_fields = frozenset(f for f in used if fields[f] is SubPath)
    for i, (literal, field, _) in enumerate(parts):
        if field in path_fields:
            after = parts[i + 1][0] if i + 1 < len(parts) else ""
            if not (literal == "" or literal.endswith("/")) or not after.startswith("/"):
                msg = (
                    f"name template {text!r}: {{{field}}} stands for whole folders; put it at "
                    f"the start or after a '/', with a '/' after it "
                    f"('{{{field}}}/{{stem}}.{{ext}}')"
                )
                raise ValueError(msg)
    return NameTemplate(text=text, parts=tuple(parts), fields=used, path_fields=path_fields)


def _check_field(
    text: str, field: str, spec: str, conversion: str | None, fields: dict[str, type]
) -> None:
    allowed = ", ".join("{" + f + "}" for f in sorted(fields))
    if field not in fields:
        msg = f"name template {text!r} uses {{{field}}}; allowed fields are {allowed}"
        raise ValueError(msg)
    if conversion is not None:
        msg = f"name template {text!r}: conversions like '!{conversion}' are not allowed"
        raise ValueError(msg)
    if "{" in spec:
        msg = f"name template {text!r}: nested fields in a format spec are not allowed"
        raise ValueError(msg)
    if spec and not (fields[field] is int and _INT_SPEC.fullmatch(spec)):
        msg = (
            f"name template {text!r}: format spec ':{spec}' on {{{field}}} is not allowed; "
            "only integer fields take a spec, of the form ':04d'"
        )
        raise ValueError(msg)


def _check_literal_path(text: str, sample: str) -> None:
    """The template's own text may make subfolders but must stay relative and plain."""
    if text.startswith(("/", "~")) or "\\" in sample or re.match(r"[A-Za-z]:", text):
        msg = f"name template {text!r} must be a relative path (no leading '/', '~' or '\\')"
        raise ValueError(msg)
    if any(ord(c) < 32 or ord(c) == 127 for c in sample):
        msg = f"name template {text!r} contains control characters"
        raise ValueError(msg)
    for component in sample.split("/"):
        if component in ("", ".", ".."):
            msg = (
                f"name template {text!r} has an empty, '.' or '..' path component; "
                "use '/' only between folder names"
            )
            raise ValueError(msg)


def sanitize_component(value: str) -> str:
    """``value`` made safe as (part of) one file name on any common file system.

    Path separators, NUL, control and Windows-reserved characters become ``_``; leading dots,
    dashes and spaces and trailing dots and spaces are dropped (no hidden files, no option
    look-alikes, no ``..``); a Windows device name (``CON``, ``nul.txt``) gets a ``_`` prefix;
    the result is cut to :data:`MAX_VALUE_BYTES` UTF-8 bytes; an empty result becomes ``_``.
    """
    value = unicodedata.normalize("NFC", value)
    value = "".join("_" if unicodedata.category(c) == "Cc" else c for c in value)
    value = _UNSAFE_CHARS.sub("_", value).lstrip(".- ").rstrip(". ")
    if value.split(".")[0].upper() in _WINDOWS_RESERVED:
        value = "_" + value
    value = value.encode()[:MAX_VALUE_BYTES].decode(errors="ignore").rstrip(". ")
    return value or "_"


def sanitize_folders(value: str) -> str:
    """A relative folder path made safe: each component through :func:`sanitize_component`
    (``..`` becomes ``_``), empty and ``.`` components and a leading ``/`` dropped; ``""`` for
    no folder at all."""
    parts = PurePosixPath(value).parts
    return "/".join(sanitize_component(p) for p in parts if p not in ("/", ".", ""))


def join_inside(root: Path, relative: str) -> Path:
    """``root / relative``, proven to stay inside ``root``; missing folders are created.

    The folders on the way are resolved (following links) and must still lie inside the
    resolved root, so a symbolic link inside the root that points out of it is refused with a
    SinkError. The last component is not resolved: a link there is replaced, never written
    through (see :func:`hotfolder.fsutil.atomic_write`).
    """
    real_root = root.resolve()
    target = real_root / relative
    if not target.is_relative_to(real_root):
        msg = f"output name {relative!r} is not a relative path"
        raise SinkError(msg, hint="name templates must not start with '/'")
    for component in target.relative_to(real_root).parts:
        if len(component.encode()) > MAX_COMPONENT_BYTES or component in (".", ".."):
            msg = f"output name {relative!r} has an invalid component {component!r}"
            hint = f"keep each folder and file name under {MAX_COMPONENT_BYTES} bytes"
            raise SinkError(msg, hint=hint)
    folder = target.parent
    _check_inside(folder, real_root, relative)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failure(exc, f"cannot create the output folder {folder}") from exc
    _check_inside(folder, real_root, relative)
    return target


def _check_inside(folder: Path, real_root: Path, relative: str) -> None:
    if not folder.resolve().is_relative_to(real_root):
        msg = f"output name {relative!r} would leave the sink folder {real_root}"
        raise SinkError(
            msg, hint="a folder inside the sink folder is a symbolic link to elsewhere; remove it"
        )


# --- the output-name template every named sink offers -----------------------------------------

#: The fields an :data:`OutputName` template may use, and their types.
OUTPUT_FIELDS: dict[str, type] = {
    "stem": str,
    "ext": str,
    "srcext": str,
    "dir": SubPath,
    "chain": str,
    "date": str,
    "hash8": str,
    "n": int,
}


def _check_output_name(value: str) -> str:
    parse_template(value, OUTPUT_FIELDS)
    return value


#: An output-name template parameter: only :data:`OUTPUT_FIELDS`, checked when the config loads.
OutputName = Annotated[str, AfterValidator(_check_output_name)]


def render_name(template: str, context: SinkContext, artifact: Artifact) -> str:
    """``template`` filled in for one job and artifact, each value sanitised."""
    return parse_template(template, OUTPUT_FIELDS).render(**output_fields(context, artifact))


def output_fields(context: SinkContext, artifact: Artifact) -> dict[str, str | int]:
    """The values of :data:`OUTPUT_FIELDS` for one job and artifact (raw; render sanitises)."""
    return {
        "stem": artifact.stem,
        "ext": artifact.extension,
        "srcext": source_extension(context.job.source),
        "dir": source_folder(context.job),
        "chain": context.job.chain,
        "date": date.today().isoformat(),
        "hash8": context.input_sha256[:8],
        "n": context.job.seq,
    }


def source_extension(source: str) -> str:
    """The extension of the job's input as it was named (``jpg`` for ``photo.JPG``, ``png``
    for a URL ending in ``.png``), without the dot; empty for a ``data:`` input or none."""
    if source.startswith("data:"):
        return ""
    path = urlsplit(source).path if "://" in source else source
    return PurePosixPath(path).suffix.lstrip(".").lower()


def source_folder(job: Job) -> str:
    """The folder of the job's input below the folder it was found in (the watched folder, or
    a folder given to ``process``), ``/``-separated: ``products/shoes`` for
    ``inbox/products/shoes/a.jpg``; empty at that folder's top, or when it is not known."""
    if not job.origin or not job.folder:
        return ""
    origin, top = PurePath(job.origin), PurePath(job.folder)
    if not origin.is_relative_to(top):
        return ""
    parent = origin.relative_to(top).parent.as_posix()
    return "" if parent == "." else parent


def url_file_name(url: str) -> str:
    """The URL's last path segment as a safe file name, or ``download``."""
    segment = PurePosixPath(unquote(urlsplit(url).path)).name
    return sanitize_component(segment) if segment.strip(". ") else "download"
