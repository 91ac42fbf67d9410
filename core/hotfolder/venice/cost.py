"""What a Venice call costs, and the daily spend that ``[venice] max_usd_per_day`` caps.

Prices come from the model list's ``pricing`` (see :mod:`hotfolder.venice.catalog`):

* edit and multi-edit: the quality price for the resolution tier if the model has quality
  tiers, else the resolution price, else the flat ``inpaint`` price; plus each input image
  beyond ``inputImages.included`` at ``inputImages.additional``; plus $0.04 when
  ``enhance_prompt`` rewrites the prompt;
* upscale: the ``2x`` or the ``4x`` price, as asked (a 4x that Venice reduces to fit its
  output limit costs the 4x price);
* background removal: a fixed $0.03 (not in the model list; Venice's pricing page).

:func:`request_usd` prices a request (:mod:`hotfolder.venice.requests`); the client prices
every call with it, and ``--dry-run`` estimates with it from the cached model list.

The ledger is a small JSON file per API root in the cache folder, re-read before each check
so that several hotfolder processes on one machine see each other's spend; a fleet keeps it in
a shared store instead (:mod:`hotfolder.venice.sharing`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loguru import logger

from hotfolder.errors import BudgetExceeded
from hotfolder.fsutil import atomic_write
from hotfolder.venice.catalog import ModelInfo
from hotfolder.venice.requests import (
    BackgroundRemoveRequest,
    ImageRequest,
    UpscaleRequest,
    UpscaleScale,
)
from hotfolder.venice.sharing import SpendStore

BACKGROUND_REMOVE_USD = 0.03
ENHANCE_PROMPT_USD = 0.04
DEFAULT_RESOLUTION = "1K"


def _usd(tier: Any) -> float | None:
    if isinstance(tier, Mapping) and isinstance(tier.get("usd"), int | float):
        return float(tier["usd"])
    return None


def edit_usd(
    model: ModelInfo,
    *,
    images: int = 1,
    resolution: str | None = None,
    quality: str | None = None,
    enhance_prompt: bool = False,
) -> float | None:
    """The price of one edit or multi-edit with ``images`` inputs; None if not listed."""
    pricing = model.pricing
    tier = resolution or model.constraints.default_resolution or DEFAULT_RESOLUTION
    quality = quality or model.constraints.default_quality
    base = None
    if quality:
        base = _usd((pricing.get("quality") or {}).get(tier, {}).get(quality))
    if base is None:
        base = _usd((pricing.get("resolutions") or {}).get(tier))
    if base is None:
        base = _usd(pricing.get("inpaint"))
    if base is None:
        return None
    extra = pricing.get("inputImages") or {}
    included = int(extra.get("included", 1))
    base += max(0, images - included) * (_usd(extra.get("additional")) or 0.0)
    if enhance_prompt:
        base += ENHANCE_PROMPT_USD
    return round(base, 6)


def upscale_usd(model: ModelInfo | None, scale: UpscaleScale) -> float | None:
    """The price of one upscale at ``scale`` (2 or 4); None if not listed."""
    if model is None:
        return None
    tiers = model.pricing.get("upscale") or {}
    return _usd(tiers.get(f"{scale}x"))


def request_usd(request: ImageRequest, model: ModelInfo | None, *, images: int = 1) -> float | None:
    """The price of ``request`` with ``images`` inputs by ``model``'s prices (the model the
    request names, None when it is not known); None when the price is not known."""
    if isinstance(request, BackgroundRemoveRequest):
        return BACKGROUND_REMOVE_USD
    if isinstance(request, UpscaleRequest):
        return upscale_usd(model, request.factor)
    if model is None:
        return None
    return edit_usd(
        model,
        images=images,
        resolution=request.resolution,
        quality=request.quality,
        enhance_prompt=bool(request.enhance_prompt),
    )


def api_cache_file(cache_dir: Path | None, kind: str, base_url: str) -> Path | None:
    """``<cache>/venice/<kind>-<digest of the API root>.json``: what the client keeps per API
    root (the spend ledger, the breaker's failures); None when kept in memory."""
    if cache_dir is None:
        return None
    digest = hashlib.sha256(base_url.encode()).hexdigest()[:12]
    return cache_dir / "venice" / f"{kind}-{digest}.json"


class SpendLedger:
    """Today's Venice spend (local calendar day), checked before every paid request."""

    def __init__(
        self,
        folder: Path | None,
        *,
        base_url: str,
        max_usd_per_day: float | None,
        clock: Callable[[], float] = time.time,
        store: SpendStore | None = None,
    ) -> None:
        """``folder`` None keeps the ledger in memory only (a sandbox on loopback); ``clock``
        tells the day (``time.time`` but for tests); ``store`` keeps it where several
        processes share it (a fleet's Redis), instead of the folder."""
        self._clock = clock
        self._store = store
        self.path = api_cache_file(folder, "spend", base_url)
        self.max_usd_per_day = max_usd_per_day
        self._reserved = 0.0
        self._memory: dict[str, float] = {}

    def spent_today(self) -> float:
        return float(self._read().get(self._today(), 0.0))

    def fits(self, usd: float) -> bool:
        """Whether ``usd`` more fits today's budget, with what is in flight."""
        if self.max_usd_per_day is None:
            return True
        return self.spent_today() + self._reserved + usd <= self.max_usd_per_day + 1e-9

    def reserve(self, usd: float | None) -> float:
        """Hold ``usd`` of today's budget for a request about to be sent; BudgetExceeded when
        it would go over ``max_usd_per_day``. Returns what was held (0 for unknown cost)."""
        usd = usd or 0.0
        if self.max_usd_per_day is None:
            return usd
        spent = self.spent_today()
        if not self.fits(usd):
            msg = (
                f"the Venice budget for today is used up: ${spent:.2f} spent"
                + (f" and ${self._reserved:.2f} in flight" if self._reserved else "")
                + f", ${usd:.2f} more would pass [venice] max_usd_per_day = "
                f"{self.max_usd_per_day:g}"
            )
            raise BudgetExceeded(
                msg,
                hint="Venice work resumes tomorrow; raise max_usd_per_day in the config "
                "to go on today",
            )
        self._reserved += usd
        return usd

    def settle(self, reserved: float, actual: float | None) -> None:
        """The request ended: release what was held and book what it cost (None: nothing)."""
        self._reserved = max(0.0, self._reserved - reserved)
        if not actual:
            return
        if self._store is not None:
            self._store.add(self._today(), actual)
            return
        days = self._read()
        today = self._today()
        days[today] = round(float(days.get(today, 0.0)) + actual, 6)
        keep = dict(sorted(days.items())[-7:])
        if self.path is None:
            self._memory = keep
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(keep).encode())
        except OSError as exc:
            logger.warning("cannot record Venice spend in {}: {}", self.path, exc)

    def _read(self) -> dict[str, float]:
        if self._store is not None:
            return self._store.read()
        if self.path is None:
            return dict(self._memory)
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("ignoring the unreadable spend ledger {}: {}", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _today(self) -> str:
        return dt.date.fromtimestamp(self._clock()).isoformat()
