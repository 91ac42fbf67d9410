"""The built-in resolvers: local paths, http(s) URLs, ``data:`` URIs and job manifests.

Resolvers are asked highest priority first: ``data`` (30), ``manifest`` (20), any third-party
resolver at the default 0, ``url`` (-10, takes every ``scheme://`` and refuses all but http(s)),
then ``path`` (-20, everything else).

A job manifest is a file named ``*.job.toml`` or ``*.job.json`` that names the images of one
job and, optionally, its chain and per-step parameter overrides::

    # photo-set.job.toml
    images = ["front.jpg", "assets/backdrop.png", "https://example.com/logo.png"]
    chain = "product-shots"                  # optional; else the folder's chain
    [overrides.1]                            # step index, from 0
    prompt = "put the product on the backdrop"

or, in JSON, ``{"images": [...], "chain": "...", "overrides": {"1": {"prompt": "..."}}}``.
The first image is the job's input; the others are handed to multi-input steps. Relative
paths are taken from the manifest's folder and must stay inside it (``allow_outside_paths``
lifts that); every image goes through the other resolvers with all their checks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import hotfolder
from hotfolder import ConfigError, InputError, UnsafeInputError, imaging, suggest
from hotfolder.localfiles import MANIFEST_SUFFIXES, LocalFile, LocalFilePolicy, read_local
from hotfolder.naming import url_file_name

if TYPE_CHECKING:
    from hotfolder import Register

URL_MEDIA_TYPES = ("image/", "application/octet-stream")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_BARE_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
#: Leading bytes of the image formats hotfolder reads (checked on bare base64 only).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\0", b"MM\0*", b"BM")


# --- path -------------------------------------------------------------------------------------


class PathResolver(hotfolder.Resolver):
    """A local file, opened without following a link and read from the opened file only; its
    bytes are not kept but read again when needed, each time checked to be the same."""

    name = "path"
    summary = "a local file; links, hard links and special files are refused"
    priority = -20

    class Params(hotfolder.Params):
        follow_symlinks: bool = False
        #: Unsafe: whoever can write the inbox can hard-link any file of that file system.
        allow_hardlinks: bool = False

        @property
        def local_file_policy(self) -> LocalFilePolicy:
            """The policy these settings make; the daemon applies it to watched folders too
            (:func:`hotfolder.localfiles.policy_for`)."""
            return LocalFilePolicy(
                follow_symlinks=self.follow_symlinks, allow_hardlinks=self.allow_hardlinks
            )

    params: Params

    def accepts(self, ref: str) -> bool:
        return bool(ref) and "\0" not in ref and not _SCHEME.match(ref)

    def resolve(self, ref: str, context: hotfolder.ResolveContext) -> hotfolder.JobInput:
        path = local_path(ref, context.base_dir)
        limits = context.runtime.limits
        policy = replace(self.params.local_file_policy, max_bytes=limits.max_bytes)
        with imaging.whole_image_turn():  # many large files starting at once: a few at a time
            file, data = LocalFile.read(path, policy)
            name = (context.origin or path).name
            artifact = hotfolder.Artifact.from_file(file, data, name=name, limits=limits)
        return hotfolder.JobInput(artifact=artifact, source=str(path), base_dir=path.parent)


def local_path(ref: str, base_dir: Path | None) -> Path:
    """``ref`` as a path; a relative one is taken from ``base_dir`` (else the working folder)."""
    path = Path(ref)
    return path if path.is_absolute() else (base_dir or Path.cwd()) / path


# --- url --------------------------------------------------------------------------------------


class UrlResolver(hotfolder.Resolver):
    """An http(s) URL, fetched with the SSRF protection of :mod:`hotfolder.netsafe`.

    The artifact records where its bytes came from: ``info["source_url"]``, the URL they were
    read from (after redirects), and ``info["source_sha256"]``, their digest. The Venice client
    sends that URL instead of the bytes while they are unchanged and Venice can fetch it (a
    public https URL, or a host in ``[venice] send_urls_from``), so an image is not downloaded
    and uploaded again.
    """

    name = "url"
    summary = "an http(s) URL; private addresses refused, size and time capped"
    priority = -10

    class Params(hotfolder.Params):
        #: The names before every duration ended in ``_seconds``; accepted for one release.
        renamed = {"timeout_s": "timeout_seconds", "connect_timeout_s": "connect_timeout_seconds"}

        #: At most this many bytes; None: the ``[imaging] max_bytes`` limit (never more).
        max_bytes: int | None = Field(default=None, ge=1)
        timeout_seconds: float = Field(default=60.0, gt=0)
        connect_timeout_seconds: float = Field(default=10.0, gt=0)
        max_redirects: int = Field(default=5, ge=0, le=20)
        #: Networks (``"10.0.0.0/8"``) and host names whose private addresses are allowed.
        allow_private: tuple[str, ...] = ()

        @field_validator("allow_private")
        @classmethod
        def _allow_list(cls, value: tuple[str, ...]) -> tuple[str, ...]:
            # netsafe (and httpx with it, ~0.06 s) is imported when a URL is configured or
            # fetched, not when the plugin loads: every command loads it at start.
            from hotfolder import netsafe

            netsafe.AllowList.parse(value)
            return value

    params: Params

    def accepts(self, ref: str) -> bool:
        return bool(_SCHEME.match(ref))

    async def resolve(self, ref: str, context: hotfolder.ResolveContext) -> hotfolder.JobInput:
        from hotfolder import netsafe

        limits = context.runtime.limits
        fetched = await netsafe.fetch(
            ref,
            max_bytes=min(self.params.max_bytes or limits.max_bytes, limits.max_bytes),
            timeout=self.params.timeout_seconds,
            connect_timeout=self.params.connect_timeout_seconds,
            allow_private=self.params.allow_private,
            max_redirects=self.params.max_redirects,
            media_types=URL_MEDIA_TYPES,
        )
        name = url_file_name(fetched.url)
        artifact = hotfolder.Artifact.from_bytes(fetched.data, name=name, limits=limits)
        digest = await asyncio.to_thread(lambda: artifact.sha256)
        artifact.info.update(source_url=fetched.url, source_sha256=digest)
        return hotfolder.JobInput(artifact=artifact, source=ref)


# --- data -------------------------------------------------------------------------------------


class DataResolver(hotfolder.Resolver):
    """A ``data:image/...;base64,...`` URI, or bare base64 of an image."""

    name = "data"
    summary = "a data:image/...;base64 URI, or bare base64 of an image"
    priority = 30

    class Params(hotfolder.Params):
        allow_bare_base64: bool = True

    params: Params

    def accepts(self, ref: str) -> bool:
        if ref[:5].lower() == "data:":
            return True
        return self.params.allow_bare_base64 and looks_like_base64_image(ref)

    def resolve(self, ref: str, context: hotfolder.ResolveContext) -> hotfolder.JobInput:
        limits = context.runtime.limits
        media_type, payload = _split_data_uri(ref) if ref[:5].lower() == "data:" else ("", ref)
        if len(payload) > 4 * (limits.max_bytes // 3 + 1):
            msg = f"inline image of {len(payload)} base64 characters is over the limit"
            raise InputError(msg, hint=f"[imaging] max_bytes is {limits.max_bytes}")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = f"inline image is not valid base64 ({exc})"
            raise InputError(msg, hint="check that the data was not cut or wrapped") from exc
        if len(data) > limits.max_bytes:
            msg = f"inline image of {len(data)} bytes is over the limit of {limits.max_bytes}"
            raise InputError(msg, hint="raise [imaging] max_bytes if such images are expected")
        digest = hashlib.sha256(data).hexdigest()
        artifact = hotfolder.Artifact.from_bytes(data, name=f"data-{digest[:8]}", limits=limits)
        source = f"data:{media_type or artifact.media_type};base64 ({len(data)} bytes)"
        return hotfolder.JobInput(artifact=artifact, source=source, base_dir=context.base_dir)


def looks_like_base64_image(ref: str) -> bool:
    """Whether ``ref`` is plausibly bare base64 of an image, without decoding all of it.

    At least 64 characters of the standard alphabet with a length divisible by 4, and the
    first bytes are an image signature; a file path (with dots, dashes, spaces or of the
    wrong length) never passes. ``/`` belongs to the alphabet (JPEG data starts ``/9j/``).
    """
    if len(ref) < 64 or len(ref) % 4 or not _BARE_BASE64.fullmatch(ref):
        return False
    head = base64.b64decode(ref[:16])
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _split_data_uri(ref: str) -> tuple[str, str]:
    header, comma, payload = ref[5:].partition(",")
    if not comma:
        msg = "data: URI has no ',' before its data"
        raise InputError(msg, hint="data:image/png;base64,...")
    media_type, *params = (part.strip().lower() for part in header.split(";"))
    if "base64" not in params:
        msg = "only base64 data: URIs are supported"
        raise InputError(msg, hint="write data:image/png;base64,... ")
    if not media_type.startswith("image/") and media_type != "application/octet-stream":
        msg = f"data: URI has media type {media_type or '(none)'}, not an image"
        raise InputError(msg, hint="data:image/png;base64,... ")
    return media_type, "".join(payload.split())


# --- manifest ---------------------------------------------------------------------------------


class Manifest(BaseModel):
    """The contents of a ``*.job.toml`` / ``*.job.json`` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: list[str] = Field(min_length=1)
    chain: str | None = None
    overrides: dict[int, dict[str, Any]] = {}

    @field_validator("images")
    @classmethod
    def _no_nesting(cls, images: list[str]) -> list[str]:
        for ref in images:
            if not ref.strip():
                msg = "an image reference is empty"
                raise ValueError(msg)
            if ref.lower().endswith(MANIFEST_SUFFIXES):
                msg = f"{ref!r} is a job manifest; a manifest cannot name another"
                raise ValueError(msg)
        return images

    @field_validator("overrides")
    @classmethod
    def _step_indices(cls, overrides: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        if any(index < 0 for index in overrides):
            msg = "step indices count from 0"
            raise ValueError(msg)
        return overrides


class ManifestResolver(hotfolder.Resolver):
    """A ``*.job.toml`` or ``*.job.json`` file naming a job's images, chain and overrides."""

    name = "manifest"
    summary = "a *.job.toml / *.job.json file naming a job's images, chain and overrides"
    priority = 20

    class Params(hotfolder.Params):
        max_bytes: int = Field(default=1024 * 1024, ge=1)
        #: Let local image paths leave the manifest's folder (absolute paths, ``..``).
        allow_outside_paths: bool = False

    params: Params

    def accepts(self, ref: str) -> bool:
        return ref.lower().endswith(MANIFEST_SUFFIXES) and not _SCHEME.match(ref)

    async def resolve(self, ref: str, context: hotfolder.ResolveContext) -> hotfolder.JobInput:
        path = local_path(ref, context.base_dir)
        # A manifest the daemon claimed is read from processing/; it is named, and its images
        # are found, where it was dropped.
        manifest_path = context.origin or path
        policy = LocalFilePolicy(max_bytes=self.params.max_bytes)
        raw = await asyncio.to_thread(read_local, path, policy)
        manifest = parse_manifest(manifest_path, raw)
        folder = manifest_path.parent
        refs = [self._anchor(manifest_path, image, context) for image in manifest.images]
        first = await context.runtime.resolve(refs[0], base_dir=folder)
        return hotfolder.JobInput(
            artifact=first.artifact,
            source=str(path),
            base_dir=folder,
            chain=manifest.chain,
            overrides=dict(manifest.overrides),
            extra_refs=refs[1:],
        )

    def _anchor(self, manifest: Path, ref: str, context: hotfolder.ResolveContext) -> str:
        """A local image as an absolute path inside the manifest's folder; others as given."""
        resolver = next((r for r in context.runtime.resolvers if r.accepts(ref)), None)
        if resolver is None or resolver.name != PathResolver.name:
            return ref
        folder = manifest.parent
        path = local_path(ref, folder)
        if not self.params.allow_outside_paths and not path.resolve().is_relative_to(
            folder.resolve()
        ):
            msg = f"{manifest}: image {ref!r} is outside the manifest's folder; refused"
            hint = "move it next to the manifest, or set allow_outside_paths = true"
            raise UnsafeInputError(msg, hint=hint + " under [resolvers.manifest]")
        if context.origin is not None and not os.path.lexists(path):
            msg = f"{manifest}: image {ref!r} is not at {path}"
            hint = (
                "a manifest in a watched folder takes its images from that folder: keep them "
                "where the folder does not take them on their own (a subfolder, when it is not "
                "recursive, or an excluded one; an image beside the manifest becomes a job of "
                "its own), drop the manifest last, and drop it again"
            )
            raise InputError(msg, hint=hint)
        return str(path)


def parse_manifest(path: Path, raw: bytes) -> Manifest:
    """Parse and validate a manifest's bytes; any problem is a ConfigError naming ``path``."""
    try:
        if path.name.lower().endswith(".json"):
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"not a valid job manifest: {exc}"
        raise ConfigError(msg, source=str(path)) from exc
    if not isinstance(data, dict):
        msg = "a job manifest must be a table/object with an 'images' list"
        raise ConfigError(msg, source=str(path))
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(_describe(error) for error in exc.errors())
        hint = "a manifest has images = [...], and optional chain and overrides"
        msg = f"invalid job manifest:\n{problems}"
        raise ConfigError(msg, hint=hint, source=str(path)) from exc


def _describe(error: Any) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; {suggest(str(error['loc'][-1]), Manifest.model_fields)}"
    return f"{key}: {str(error['msg']).removeprefix('Value error, ')}"


@hotfolder.hookimpl
def hotfolder_register_resolvers(register: Register) -> None:
    for resolver in (DataResolver, ManifestResolver, UrlResolver, PathResolver):
        register(resolver)
