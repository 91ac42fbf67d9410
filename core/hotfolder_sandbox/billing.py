"""What a request costs, from the model list's pricing, and the balance it is paid from.

Prices follow ``CONTRACT.md`` §9: an edit costs the model's quality price for the resolution,
else its resolution price, else its base ``inpaint`` price; plus ``(n - included) x
additional`` for input images; plus $0.04 when ``enhance_prompt`` is on. Upscales cost the
``2x`` or ``4x`` price, background removal its model's ``generation`` price.

The ledger debits DIEM first when the DIEM balance covers the whole charge, else USD, and
refuses with 402 when neither does. Money is ``Decimal``: no float drift across many calls.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from hotfolder_sandbox.catalog import Model

__all__ = [
    "Debit",
    "InsufficientBalance",
    "Ledger",
    "background_price",
    "edit_price",
    "upscale_price",
]

ENHANCE_PROMPT_USD = Decimal("0.04")
_PLACES = Decimal("0.00000001")


def _usd(entry: Mapping[str, Any]) -> Decimal:
    return Decimal(str(entry["usd"])).quantize(_PLACES)


def edit_price(
    model: Model, *, resolution: str, quality: str | None, images: int, enhance_prompt: bool
) -> Decimal:
    """The charge for one edit or multi-edit with ``images`` inputs."""
    pricing = model.pricing
    tier_qualities = pricing.get("quality", {}).get(resolution, {})
    if quality is not None and quality in tier_qualities:
        price = _usd(tier_qualities[quality])
    elif resolution in pricing.get("resolutions", {}):
        price = _usd(pricing["resolutions"][resolution])
    else:
        price = _usd(pricing["inpaint"])
    inputs = pricing.get("inputImages")
    if inputs is not None:
        extra = max(0, images - int(inputs["included"]))
        price += extra * _usd(inputs["additional"])
    if enhance_prompt:
        price += ENHANCE_PROMPT_USD
    return price


def upscale_price(model: Model, scale: float) -> Decimal:
    """The ``2x`` price up to a factor of 2, the ``4x`` price above."""
    return _usd(model.pricing["upscale"]["2x" if scale <= 2 else "4x"])


def background_price(model: Model) -> Decimal:
    return _usd(model.pricing["generation"])


class InsufficientBalance(Exception):
    """Neither balance covers the charge."""


@dataclass(frozen=True)
class Debit:
    """Money taken for one request, and the balances just before it was taken."""

    currency: Literal["usd", "diem"]
    amount: Decimal
    usd_before: Decimal
    diem_before: Decimal | None


class Ledger:
    """The account's USD and DIEM balances. Thread-safe."""

    def __init__(self, usd: float, diem: float | None) -> None:
        self._lock = threading.Lock()
        self._usd = Decimal(str(usd)).quantize(_PLACES)
        self._diem = None if diem is None else Decimal(str(diem)).quantize(_PLACES)

    def balances(self) -> tuple[Decimal, Decimal | None]:
        with self._lock:
            return self._usd, self._diem

    def debit(self, amount: Decimal) -> Debit:
        """Take ``amount``; raise :class:`InsufficientBalance` and take nothing if too low."""
        with self._lock:
            usd, diem = self._usd, self._diem
            if diem is not None and diem >= amount:
                self._diem = diem - amount
                return Debit("diem", amount, usd, diem)
            if usd >= amount:
                self._usd = usd - amount
                return Debit("usd", amount, usd, diem)
        msg = f"balance USD {usd} / DIEM {diem} is below the charge {amount}"
        raise InsufficientBalance(msg)

    def refund(self, debit: Debit) -> None:
        """Give back a debit whose request failed after all."""
        with self._lock:
            if debit.currency == "diem" and self._diem is not None:
                self._diem += debit.amount
            else:
                self._usd += debit.amount

    def set(self, *, usd: float | None = None, diem: float | None = None) -> None:
        with self._lock:
            if usd is not None:
                self._usd = Decimal(str(usd)).quantize(_PLACES)
            if diem is not None:
                self._diem = Decimal(str(diem)).quantize(_PLACES)

    def add(self, *, usd: float = 0.0, diem: float = 0.0) -> None:
        with self._lock:
            self._usd += Decimal(str(usd)).quantize(_PLACES)
            if diem:
                self._diem = (self._diem or Decimal(0)) + Decimal(str(diem)).quantize(_PLACES)

    def snapshot(self, epoch_allocation: float) -> dict[str, Any]:
        """The ``GET /billing/balance`` body."""
        usd, diem = self.balances()
        diem_value = None if diem is None else float(diem)
        return {
            "canConsume": usd > 0 or bool(diem and diem > 0),
            "consumptionCurrency": "DIEM" if diem else "USD",
            "balances": {"diem": diem_value, "usd": float(usd)},
            "diemEpochAllocation": epoch_allocation,
        }
