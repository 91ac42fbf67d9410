"""Cost estimates from the model list's prices, the daily budget, and the cached model list."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hotfolder.artifact import Artifact
from hotfolder.config import validate_config
from hotfolder.engine import Engine
from hotfolder.errors import BudgetExceeded, Unavailable
from hotfolder.job import Job
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder.venice import (
    BackgroundRemoveRequest,
    EditRequest,
    MultiEditRequest,
    UpscaleRequest,
    VeniceClient,
    VeniceSection,
)
from hotfolder.venice.catalog import Catalog, ModelInfo
from hotfolder.venice.cost import SpendLedger, edit_usd, request_usd, upscale_usd
from hotfolder_sandbox.catalog import load_catalog

BASE = "https://api.venice.test/api/v1"
REGISTRY = build_registry(make_plugin_manager(load_entrypoints=False))


def model(model_id: str, kind: str = "inpaint") -> ModelInfo:
    raw = next(m for m in load_catalog().listing(kind)["data"] if m["id"] == model_id)
    return ModelInfo.from_api(raw)


@pytest.mark.parametrize(
    ("model_id", "kwargs", "usd"),
    [
        ("firered-image-edit", {}, 0.04),
        ("firered-image-edit", {"enhance_prompt": True}, 0.08),
        ("gpt-image-2-edit", {}, 0.34),  # 1K at the default quality (high)
        ("gpt-image-2-edit", {"resolution": "4K", "quality": "medium"}, 0.22),
        (
            "gpt-image-2-edit",
            {"resolution": "2K", "quality": "low", "images": 3},
            0.03 + 2 * 0.0092,
        ),
        ("nano-banana-pro-edit", {"resolution": "2K"}, 0.23),
        ("grok-imagine-edit", {"images": 1}, 0.03 + 0.0023),  # included: 0
        ("flux-2-max-edit", {"images": 2}, 0.12 + 0.0345),
    ],
)
def test_edit_prices_follow_the_tiers(model_id, kwargs, usd):
    assert edit_usd(model(model_id), **kwargs) == pytest.approx(usd)


def test_upscale_prices_by_scale():
    upscaler = model("upscaler", "upscale")
    assert upscale_usd(upscaler, 2) == 0.02
    assert upscale_usd(upscaler, 4) == 0.08


def test_a_request_is_priced_by_the_model_it_names():
    gpt = model("gpt-image-2-edit")
    upscaler = model("upscaler", "upscale")
    assert request_usd(EditRequest(prompt="p", resolution="4K", quality="medium"), gpt) == 0.22
    multi = MultiEditRequest(prompt="p", model="gpt-image-2-edit", quality="low")
    assert request_usd(multi, gpt, images=3) == pytest.approx(0.03 + 2 * 0.0092)
    assert request_usd(UpscaleRequest(), upscaler) == 0.02  # Venice's default: 2x
    assert request_usd(UpscaleRequest(scale=4), upscaler) == 0.08
    assert request_usd(BackgroundRemoveRequest(), None) == 0.03
    assert request_usd(EditRequest(prompt="p"), None) is None  # a model without a price


def dry_run_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "venice": {"cache_dir": str(tmp_path)},
        "chains": {
            "all": {
                "steps": [
                    {
                        "op": "venice.edit",
                        "prompt": "p",
                        "model": "gpt-image-2-edit",
                        "resolution": "4K",
                    },
                    {
                        "op": "venice.multi-edit",
                        "prompt": "p",
                        "model": "flux-2-max-edit",
                        "with": ["a.png"],
                    },
                    {"op": "venice.upscale", "scale": 4},
                    {"op": "venice.background-remove"},
                ],
                "outputs": [{"sink": "folder", "path": str(tmp_path / "out")}],
            }
        },
    }


def test_dry_run_estimates_need_no_key_and_no_network(tmp_path, monkeypatch):
    monkeypatch.delenv("VENICE_API_KEY", raising=False)
    config = validate_config(dry_run_config(tmp_path), REGISTRY)
    runtime = Runtime(config, make_plugin_manager(load_entrypoints=False), REGISTRY, dry_run=True)
    plan = Engine(runtime).plan(Job(source="x.png", chain="all"))
    assert [s.paid for s in plan] == [True] * 4
    assert [s.estimate_usd for s in plan] == pytest.approx([0.84, 0.12 + 0.0345, 0.08, 0.03])


class Counter:
    def __init__(self, data: list[dict[str, Any]] | None = None, fail: bool = False) -> None:
        self.calls = 0
        self.data = data or [
            {
                "id": "m1",
                "type": "inpaint",
                "model_spec": {
                    "name": "M1",
                    "pricing": {"inpaint": {"usd": 0.5}},
                    "constraints": {
                        "aspectRatios": ["1:1"],
                        "promptCharacterLimit": 10,
                        "combineImages": False,
                    },
                },
            }
        ]
        self.fail = fail

    async def __call__(self, kind: str) -> list[dict[str, Any]]:
        self.calls += 1
        if self.fail:
            msg = "down"
            raise Unavailable(msg)
        return self.data


def test_the_model_list_is_cached_on_disk_until_it_expires(tmp_path):
    fetch = Counter()
    first = Catalog(fetch, cache_dir=tmp_path, base_url=BASE, ttl_seconds=3600)
    listing = asyncio.run(first.models("inpaint"))
    assert listing.source == "live" and fetch.calls == 1
    c = listing.models["m1"].constraints
    assert (c.prompt_limit, c.max_input_images, c.aspect_ratios, c.resolutions) == (
        10,
        1,
        ("1:1",),
        ("1K",),
    )

    second = Catalog(fetch, cache_dir=tmp_path, base_url=BASE, ttl_seconds=3600)
    assert asyncio.run(second.models("inpaint")).source == "cache"
    assert fetch.calls == 1
    other_root = Catalog(
        fetch, cache_dir=tmp_path, base_url="http://elsewhere/api/v1", ttl_seconds=3600
    )
    asyncio.run(other_root.models("inpaint"))
    assert fetch.calls == 2  # one cache per API root

    assert len(list((tmp_path / "venice").glob("models-*-inpaint.json"))) == 2
    expired = Catalog(fetch, cache_dir=tmp_path, base_url=BASE, ttl_seconds=0)
    assert asyncio.run(expired.models("inpaint")).source == "live"
    assert fetch.calls == 3


def test_when_the_list_cannot_be_had_a_stale_cache_then_the_snapshot_serve(tmp_path):
    asyncio.run(
        Catalog(Counter(), cache_dir=tmp_path, base_url=BASE, ttl_seconds=0).models("inpaint")
    )
    stale = asyncio.run(
        Catalog(Counter(fail=True), cache_dir=tmp_path, base_url=BASE, ttl_seconds=0).models(
            "inpaint"
        )
    )
    assert stale.source == "stale cache" and "m1" in stale.models

    fallback = Catalog(
        Counter(fail=True), cache_dir=tmp_path / "empty", base_url=BASE, ttl_seconds=0
    )
    listing = asyncio.run(fallback.models("inpaint"))
    assert listing.source == "snapshot"
    firered = listing.models["firered-image-edit"]
    assert firered.pricing["inpaint"]["usd"] == 0.04
    assert firered.constraints.prompt_limit == 32768  # the spec's limit
    assert firered.constraints.aspect_ratios is None  # any of the spec's enum
    unknown = asyncio.run(fallback.model("brand-new-edit"))
    assert unknown.id == "brand-new-edit"  # not refused on a guess


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_daily_budget_pauses_before_a_request_is_sent(tmp_path):
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=load_catalog().listing(request.url.params["type"]))
        sent.append(request.url.path)
        return httpx.Response(200, content=png(), headers={"content-type": "image/png"})

    settings = VeniceSection(cache_dir=tmp_path, max_usd_per_day=0.20)

    async def spend() -> list[Any]:
        async with VeniceClient(
            base_url=BASE,
            api_key="sk-budget-key",
            settings=settings,
            transport=httpx.MockTransport(handler),
        ) as client:
            image = Artifact.from_bytes(png(), name="in.png")
            results = []
            for _ in range(4):
                try:  # the client prices each 4x upscale at the upscaler's $0.08
                    results.append(await client.upscale(image, UpscaleRequest(scale=4)))
                except BudgetExceeded as exc:
                    results.append(exc)
            return results

    results = asyncio.run(spend())
    assert [type(r).__name__ for r in results] == [
        "ImageResult",
        "ImageResult",
        "BudgetExceeded",
        "BudgetExceeded",
    ]
    assert len(sent) == 2
    assert [r.cost_usd for r in results[:2]] == [0.08, 0.08]
    assert "max_usd_per_day" in str(results[2]) and "tomorrow" in results[2].hint
    ledger = SpendLedger(tmp_path, base_url=BASE, max_usd_per_day=0.20)
    assert ledger.spent_today() == pytest.approx(0.16)  # persisted for other processes and restarts
    with pytest.raises(BudgetExceeded):
        ledger.reserve(0.08)


def test_failed_requests_are_not_booked(tmp_path):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "bad"})

    settings = VeniceSection(cache_dir=tmp_path, max_usd_per_day=1.0)

    async def go() -> None:
        async with VeniceClient(
            base_url=BASE,
            api_key="sk-budget-key",
            settings=settings,
            transport=httpx.MockTransport(handler),
        ) as client:
            with pytest.raises(Exception, match="400"):
                image = Artifact.from_bytes(png(), name="in.png")
                await client.background_remove(image, BackgroundRemoveRequest())

    asyncio.run(go())
    assert SpendLedger(tmp_path, base_url=BASE, max_usd_per_day=1.0).spent_today() == 0
    assert SpendLedger(tmp_path, base_url=BASE, max_usd_per_day=1.0).reserve(1.0) == 1.0


def test_ledger_keeps_a_week(tmp_path, monkeypatch):
    ledger = SpendLedger(tmp_path, base_url=BASE, max_usd_per_day=None)
    assert ledger.path is not None
    ledger.path.parent.mkdir(parents=True)
    old = {f"2020-01-{d:02d}": 1.0 for d in range(1, 20)}
    ledger.path.write_text(json.dumps(old))
    ledger.settle(0.0, 0.25)
    days = json.loads(ledger.path.read_text())
    assert len(days) == 7 and days[time.strftime("%Y-%m-%d")] == 0.25
    assert os.stat(ledger.path).st_mode & 0o777 == 0o644


def test_jobs_asking_for_the_model_list_at_once_share_one_fetch(tmp_path):
    import asyncio

    from hotfolder.venice.catalog import Catalog

    fetches: list[str] = []

    async def fetch(type: str) -> list[dict]:
        fetches.append(type)
        await asyncio.sleep(0.01)
        return [{"id": "firered-image-edit", "type": "inpaint", "model_spec": {"name": "FireRed"}}]

    catalog = Catalog(fetch, cache_dir=None, base_url="http://127.0.0.1:1/api/v1", ttl_seconds=60)

    async def many():
        return await asyncio.gather(*(catalog.models("inpaint") for _ in range(8)))

    lists = asyncio.run(many())
    assert fetches == ["inpaint"]
    assert all("firered-image-edit" in listing.models for listing in lists)
