"""Sandbox billing: prices from the model list, and the balance they are paid from."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hotfolder_sandbox.billing import (
    InsufficientBalance,
    Ledger,
    background_price,
    edit_price,
    upscale_price,
)
from hotfolder_sandbox.catalog import load_catalog

CATALOG = load_catalog()


def price(
    model: str,
    resolution: str = "1K",
    quality: str | None = None,
    images: int = 1,
    enhance: bool = False,
) -> Decimal:
    return edit_price(
        CATALOG.require(model),
        resolution=resolution,
        quality=quality,
        images=images,
        enhance_prompt=enhance,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("firered-image-edit",), "0.04"),
        (("gpt-image-2-edit", "4K"), "0.84"),  # resolution price
        (("gpt-image-2-edit", "2K", "low"), "0.03"),  # quality price wins
        (("gpt-image-2-edit", "1K", "medium", 3), "0.0984"),  # 0.08 + 2 x 0.0092
        (("grok-imagine-edit",), "0.0323"),  # included is 0: the first image is extra too
        (("flux-2-max-edit", "1K", None, 3), "0.189"),  # 0.12 + 2 x 0.0345
        (("nano-banana-pro-edit", "2K"), "0.23"),
    ],
)
def test_edit_prices_follow_the_model_list(args: tuple[Any, ...], expected: str) -> None:
    assert price(*args) == Decimal(expected)


def test_enhance_prompt_adds_four_cents() -> None:
    assert price("firered-image-edit", enhance=True) == Decimal("0.08")


def test_upscale_and_background_prices() -> None:
    upscaler = CATALOG.require("upscaler")
    assert upscale_price(upscaler, 2) == Decimal("0.02")
    assert upscale_price(upscaler, 3) == Decimal("0.08")
    assert upscale_price(upscaler, 4) == Decimal("0.08")
    assert background_price(CATALOG.require("bria-bg-remover")) == Decimal("0.03")


def test_ledger_pays_from_diem_first_then_usd() -> None:
    ledger = Ledger(usd=1.0, diem=0.05)
    first = ledger.debit(Decimal("0.04"))
    assert (first.currency, first.usd_before, first.diem_before) == (
        "diem",
        Decimal(1),
        Decimal("0.05"),
    )
    second = ledger.debit(Decimal("0.04"))  # 0.01 DIEM left: not enough, USD pays
    assert second.currency == "usd"
    assert ledger.balances() == (Decimal("0.96"), Decimal("0.01"))


def test_ledger_refuses_without_taking_anything_and_refunds() -> None:
    ledger = Ledger(usd=0.03, diem=None)
    with pytest.raises(InsufficientBalance):
        ledger.debit(Decimal("0.04"))
    assert ledger.balances() == (Decimal("0.03"), None)
    debit = ledger.debit(Decimal("0.03"))
    assert ledger.balances()[0] == 0
    ledger.refund(debit)
    assert ledger.balances()[0] == Decimal("0.03")


def test_many_small_charges_do_not_drift() -> None:
    ledger = Ledger(usd=1.0, diem=None)
    for _ in range(100):
        ledger.debit(Decimal("0.0092"))
    assert ledger.balances()[0] == Decimal("0.08")


def test_snapshot_matches_the_billing_balance_shape() -> None:
    ledger = Ledger(usd=0.0, diem=None)
    assert ledger.snapshot(0.0) == {
        "canConsume": False,
        "consumptionCurrency": "USD",
        "balances": {"diem": None, "usd": 0.0},
        "diemEpochAllocation": 0.0,
    }
    ledger.set(usd=2.5)
    ledger.add(usd=1, diem=4)
    snapshot = ledger.snapshot(10.0)
    assert snapshot["canConsume"] is True
    assert snapshot["consumptionCurrency"] == "DIEM"
    assert snapshot["balances"] == {"diem": 4.0, "usd": 3.5}
