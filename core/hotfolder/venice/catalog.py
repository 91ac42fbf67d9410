"""The model list: constraints and prices of Venice's edit and upscale models.

``GET /models?type=inpaint`` (and ``type=upscale``) is fetched once per expiry and kept on disk
under the cache folder, one file per API root, so the sandbox and the real API never mix.
When no list can be had, a stale file is used; failing that, the prices of a bundled
snapshot and the spec's own limits (any of the spec's aspect ratios, 32,768 prompt
characters, 3 input images) apply, so pre-flight checks and estimates still work offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from hotfolder.errors import ConfigError, HotfolderError
from hotfolder.fsutil import atomic_write
from hotfolder.registry import suggest
from hotfolder.waits import waiting

ModelType = Literal["inpaint", "upscale"]

#: The spec's own limits (EditImageRequest / MultiEditImageRequest).
SPEC_ASPECT_RATIOS = ("auto", "1:1", "3:2", "16:9", "21:9", "9:16", "2:3", "3:4", "4:5")
SPEC_PROMPT_LIMIT = 32768
SPEC_QUALITIES = ("low", "medium", "high")
#: ``maxInputImages`` when a model does not say (1 when it cannot combine images).
DEFAULT_MAX_INPUT_IMAGES = 3
DEFAULT_EDIT_MODEL = "firered-image-edit"
UPSCALE_MODEL = "upscaler"

Source = Literal["live", "cache", "stale cache", "snapshot"]


@dataclass(frozen=True)
class Constraints:
    """What an edit model accepts; ``None`` means "not restricted by the model list" (the
    list had no constraints, or could not be had); an empty ``qualities`` means none."""

    aspect_ratios: tuple[str, ...] | None = None
    prompt_limit: int = SPEC_PROMPT_LIMIT
    combine_images: bool = True
    max_input_images: int = DEFAULT_MAX_INPUT_IMAGES
    single_image_aspect_ratio: bool = True
    resolutions: tuple[str, ...] | None = None
    default_resolution: str | None = None
    qualities: tuple[str, ...] | None = None
    default_quality: str | None = None

    @classmethod
    def from_spec(cls, raw: Mapping[str, Any] | None) -> Constraints:
        """From ``model_spec.constraints`` (inpaint shape); the spec's limits when absent."""
        if not raw or "promptCharacterLimit" not in raw:
            return cls()
        combine = bool(raw.get("combineImages", True))
        ratios = raw.get("aspectRatios")
        resolutions = raw.get("resolutions")
        qualities = raw.get("qualities")
        return cls(
            aspect_ratios=tuple(str(r) for r in ratios) if ratios else None,
            prompt_limit=int(raw.get("promptCharacterLimit") or SPEC_PROMPT_LIMIT),
            combine_images=combine,
            max_input_images=int(
                raw.get("maxInputImages") or (DEFAULT_MAX_INPUT_IMAGES if combine else 1)
            ),
            single_image_aspect_ratio=bool(raw.get("singleImageAspectRatio", True)),
            # a model without resolution or quality choices offers its default tier only
            resolutions=tuple(resolutions or (raw.get("defaultResolution") or "1K",)),
            default_resolution=raw.get("defaultResolution"),
            qualities=tuple(qualities or ()),
            default_quality=raw.get("defaultQuality"),
        )

    def describe(self) -> str:
        """One line for ``hotfolder models``."""
        parts = [f"prompt<={self.prompt_limit}", f"images<={self.max_input_images}"]
        if self.aspect_ratios and set(self.aspect_ratios) != set(SPEC_ASPECT_RATIOS):
            parts.append("aspect " + "/".join(self.aspect_ratios))
        if self.resolutions:
            parts.append("res " + "/".join(self.resolutions))
        if self.qualities:
            parts.append("quality " + "/".join(self.qualities))
        if not self.combine_images:
            parts.append("single image only")
        return ", ".join(parts)


@dataclass(frozen=True)
class ModelInfo:
    """One model from the list, with what hotfolder needs of it."""

    id: str
    type: str
    name: str
    constraints: Constraints = field(default_factory=Constraints)
    #: ``model_spec.pricing`` as Venice gives it (USD and DIEM per tier).
    pricing: Mapping[str, Any] = field(default_factory=dict)
    deprecation: Mapping[str, Any] | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ModelInfo:
        spec = raw.get("model_spec") or {}
        return cls(
            id=str(raw["id"]),
            type=str(raw.get("type", "")),
            name=str(spec.get("name") or raw["id"]),
            constraints=Constraints.from_spec(spec.get("constraints")),
            pricing=spec.get("pricing") or {},
            deprecation=spec.get("deprecation"),
        )


@dataclass(frozen=True)
class ModelList:
    """The models of one type and where the list came from."""

    type: str
    models: dict[str, ModelInfo]
    source: Source
    fetched_at: float | None = None


Fetch = Callable[[str], Awaitable[list[dict[str, Any]]]]


class Catalog:
    """The model lists of one API root: memory, then disk, then the API, then fallbacks."""

    def __init__(
        self, fetch: Fetch, *, cache_dir: Path | None, base_url: str, ttl_seconds: float
    ) -> None:
        """``cache_dir`` None keeps the lists in memory only."""
        self._fetch = fetch
        self._ttl_seconds = ttl_seconds
        digest = hashlib.sha256(base_url.encode()).hexdigest()[:12]
        self._folder = cache_dir / "venice" if cache_dir is not None else None
        self._stem = f"models-{digest}"
        self._lists: dict[str, ModelList] = {}
        self._fetching: dict[str, asyncio.Lock] = {}

    def _path(self, type: str) -> Path | None:
        return self._folder / f"{self._stem}-{type}.json" if self._folder else None

    async def models(self, type: ModelType, *, refresh: bool = False) -> ModelList:
        """The list of ``type``: fresh from memory or disk, else fetched, else a fallback.
        Jobs asking at once share one fetch."""
        current = self._lists.get(type)
        if not refresh and current and current.source in ("live", "cache"):
            return current
        lock = self._fetching.setdefault(type, asyncio.Lock())
        if lock.locked():  # another job is fetching it: a wait, not this step's work
            with waiting("the Venice model list"):
                await lock.acquire()
        else:
            await lock.acquire()
        try:
            current = self._lists.get(type)
            if not refresh and current and current.source in ("live", "cache"):
                return current
            return await self._load(type, refresh)
        finally:
            lock.release()

    async def _load(self, type: ModelType, refresh: bool) -> ModelList:
        disk = None if refresh else self._read(type)
        if disk is not None and disk.source == "cache":
            self._lists[type] = disk
            return disk
        try:
            data = await self._fetch(type)
        except HotfolderError as exc:
            fallback = disk or self._read(type) or _snapshot(type)
            logger.warning(
                "cannot fetch the Venice {} model list ({}); using the {}",
                type,
                exc,
                fallback.source,
            )
            self._lists[type] = fallback
            return fallback
        fetched = ModelList(type, _index(data), "live", time.time())
        self._write(type, data, fetched.fetched_at or 0.0)
        self._lists[type] = fetched
        return fetched

    async def model(self, model_id: str, type: ModelType = "inpaint") -> ModelInfo:
        """The model ``model_id``; a ConfigError when a real list does not have it."""
        listing = await self.models(type)
        found = listing.models.get(model_id)
        if found is not None:
            return found
        if listing.source == "snapshot":
            return ModelInfo(id=model_id, type=type, name=model_id)
        msg = f"Venice has no {type} model {model_id!r} (model ids are case-sensitive)"
        raise ConfigError(msg, hint=suggest(model_id, listing.models) + "; see 'hotfolder models'")

    def cached(self, type: ModelType) -> ModelList:
        """The list from memory, disk (even stale) or the bundled snapshot, without any
        request."""
        return self._lists.get(type) or self._read(type) or _snapshot(type)

    def cached_model(self, model_id: str, type: ModelType = "inpaint") -> ModelInfo | None:
        """The model from memory, disk (even stale) or the snapshot, without any request;
        for estimates, which must not wait on the network."""
        return self.cached(type).models.get(model_id)

    def _read(self, type: str) -> ModelList | None:
        path = self._path(type)
        if path is None:
            return None
        try:
            saved = json.loads(path.read_text())
            fetched_at = float(saved["fetched_at"])
            models = _index(saved["data"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring the unreadable model cache {}: {}", path, exc)
            return None
        fresh = time.time() - fetched_at < self._ttl_seconds
        return ModelList(type, models, "cache" if fresh else "stale cache", fetched_at)

    def _write(self, type: str, data: list[dict[str, Any]], fetched_at: float) -> None:
        path = self._path(type)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"fetched_at": fetched_at, "type": type, "data": data}
            atomic_write(path, json.dumps(payload).encode())
        except OSError as exc:
            logger.warning("cannot cache the Venice model list in {}: {}", self._folder, exc)


def _index(data: list[dict[str, Any]]) -> dict[str, ModelInfo]:
    models = {}
    for raw in data:
        try:
            info = ModelInfo.from_api(raw)
        except (KeyError, TypeError, ValueError):
            continue
        models[info.id] = info
    return models


def _snapshot(type: str) -> ModelList:
    text = resources.files("hotfolder.venice").joinpath("models_snapshot.json").read_text()
    data = [m for m in json.loads(text)["data"] if m["type"] == type]
    return ModelList(type, _index(data), "snapshot")
