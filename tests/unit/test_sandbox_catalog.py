"""The sandbox's models.json: prices verbatim from Venice's snapshot, shapes as the spec says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hotfolder_sandbox.catalog import load_catalog
from tests.contract.spec import validate_response

STATIC_MODELS = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "venice" / "static-models.json"
)
SANDBOX_ONLY = {"sandbox-deprecated-edit"}


@pytest.fixture(scope="module")
def snapshot() -> dict[str, dict[str, Any]]:
    return {model["id"]: model for model in json.loads(STATIC_MODELS.read_text())}


def test_every_real_model_matches_the_snapshot(snapshot: dict[str, dict[str, Any]]) -> None:
    catalog = load_catalog()
    real = [model for model in catalog.models if model.id not in SANDBOX_ONLY]
    for model in real:
        source = snapshot[model.id]
        assert (model.type, model.raw["created"]) == (source["type"], source["created"])
        for field in ("name", "privacy", "pricing", "traits"):
            assert model.raw["model_spec"][field] == source["model_spec"][field], (model.id, field)


def test_the_catalog_covers_every_edit_and_upscale_model(
    snapshot: dict[str, dict[str, Any]],
) -> None:
    wanted = {mid for mid, model in snapshot.items() if model["type"] in ("inpaint", "upscale")}
    assert wanted <= {model.id for model in load_catalog().models}


@pytest.mark.parametrize("model_type", ["all", "inpaint", "upscale", "image", "text"])
def test_listings_match_the_spec(model_type: str) -> None:
    body = load_catalog().listing(model_type)
    validate_response("/models", 200, "application/json", body)


def test_constraint_defaults() -> None:
    catalog = load_catalog()
    firered = catalog.require("firered-image-edit")
    assert (firered.max_input_images, firered.resolutions, firered.qualities) == (3, ("1K",), ())
    assert catalog.require("gpt-image-2-edit").max_input_images == 14
    assert catalog.require("luma-uni-1-edit").max_input_images == 1
    assert catalog.require("grok-imagine-image-2-0-edit").qualities == ("low", "medium")
    assert catalog.require("sandbox-deprecated-edit").deprecation is not None
    assert catalog.get("Firered-Image-Edit") is None
