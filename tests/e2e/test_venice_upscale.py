"""``venice.upscale`` is 2x or 4x, end to end: Runtime + Engine in process against the sandbox
on loopback (which, like Venice, lowers a 4x on a large image to stay within 16,777,216
output pixels), and ``hotfolder validate`` for a factor Venice does not take."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hotfolder.config import validate_config
from hotfolder.engine import Engine
from hotfolder.errors import HotfolderError, InputError
from hotfolder.job import Job, JobResult
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder.venice import SERVICE, VeniceClient, VeniceSection
from hotfolder_sandbox import SandboxConfig, SandboxHandle, start_sandbox
from tests.helpers.cli import hotfolder

REGISTRY = build_registry(make_plugin_manager(load_entrypoints=False))
OUTPUT_LIMIT = 16_777_216


def upscale_chain(**step: Any) -> dict[str, Any]:
    return {
        "steps": [{"op": "venice.upscale", **step}],
        "outputs": [{"sink": "folder", "path": "out"}],
    }


def run_upscale(
    tmp_path: Path, sandbox: SandboxHandle, size: tuple[int, int], **step: Any
) -> JobResult | HotfolderError:
    source = tmp_path / "in.png"
    Image.linear_gradient("L").convert("RGB").resize(size).save(source)
    raw = {
        "venice": {"cache_dir": str(tmp_path / "cache"), "requests_per_minute": 600},
        "chains": {"up": upscale_chain(**step)},
    }
    config = validate_config(raw, REGISTRY, path=tmp_path / "hotfolder.toml")
    runtime = Runtime(config, make_plugin_manager(load_entrypoints=False), REGISTRY)
    settings = config.section(VeniceSection)
    client = VeniceClient(base_url=sandbox.base_url, api_key="k", settings=settings, persist=False)
    runtime.set_service(SERVICE, client)

    async def go() -> JobResult | HotfolderError:
        try:
            return await Engine(runtime).run(Job(source=str(source), chain="up"))
        except HotfolderError as exc:
            return exc
        finally:
            await runtime.aclose()

    return asyncio.run(go())


@pytest.fixture
def sandbox() -> Any:
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as handle:
        yield handle


def output_size(result: JobResult) -> tuple[int, int]:
    with Image.open(result.outputs[0].location) as image:
        return image.size


def test_a_4x_of_1100x1000_is_sent_as_4x_and_venice_fits_it_in_16_megapixels(tmp_path, sandbox):
    result = run_upscale(tmp_path, sandbox, (1100, 1000), scale=4)
    assert isinstance(result, JobResult), result
    # sent as 3x it would be 3300x3000; sent as 4x Venice lowers it to sqrt(16,777,216 / 1.1 MP)
    assert output_size(result) == (4295, 3905)
    (step,) = result.steps
    assert step.cost_usd == pytest.approx(0.08)  # the 4x price, as Venice charges it
    assert sandbox.stats()["charged_usd"] == pytest.approx(0.08)
    assert step.notes["scale"] == 4
    assert (step.notes["input_size"], step.notes["size"]) == ("1100x1000", "4295x3905")


def test_a_2x_is_exact_and_priced_as_2x(tmp_path, sandbox):
    result = run_upscale(tmp_path, sandbox, (600, 400))
    assert isinstance(result, JobResult), result
    assert output_size(result) == (1200, 800)
    assert result.steps[0].cost_usd == pytest.approx(0.02)
    assert result.steps[0].notes["scale"] == 2


def test_an_input_too_large_even_for_2x_fails_before_a_request_or_is_fitted(tmp_path, sandbox):
    refused = run_upscale(tmp_path, sandbox, (2100, 2100), scale=4)
    assert isinstance(refused, InputError)
    assert "even a 2x upscale would pass Venice's output limit of 16,777,216" in refused.message
    assert "fit = true" in (refused.hint or "")
    assert sandbox.stats()["requests_total"] == 0

    fitted = run_upscale(tmp_path, sandbox, (2100, 2100), scale=4, fit=True)
    assert isinstance(fitted, JobResult), fitted
    width, height = output_size(fitted)
    assert width * height <= OUTPUT_LIMIT and width == height
    assert width >= 4000  # fitted to the 2x limit (about 2048x2048), not shrunk further
    assert fitted.steps[0].cost_usd == pytest.approx(0.08)


@pytest.mark.e2e
def test_validate_names_both_factors_for_a_scale_of_3(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(
        '[chains.up]\nsteps = [{ op = "venice.upscale", scale = 3 }]\n'
        'outputs = [{ sink = "folder", path = "out" }]\n'
    )
    run = hotfolder("validate", cwd=tmp_path)
    assert run.code == 2, run.output
    assert "chains.up.steps[0].scale: must be 2 or 4" in run.stderr
    assert "(got 3)" in run.stderr


def test_process_with_sandbox_upscales_1100x1000_4x_to_about_16_7_megapixels(tmp_path, sandbox):
    """Through the real command line: ``process --sandbox`` gives 4295x3905; against a sandbox
    whose counters the test reads, the call is charged the 4x price, so it carried scale=4."""
    (tmp_path / "hotfolder.toml").write_text(
        '[chains.up]\nsteps = [{ op = "venice.upscale", scale = 4 }]\n'
        'outputs = [{ sink = "folder", path = "out" }]\n'
    )
    Image.linear_gradient("L").convert("RGB").resize((1100, 1000)).save(tmp_path / "in.png")
    run = hotfolder("process", "in.png", "--chain", "up", "--sandbox", cwd=tmp_path)
    assert run.code == 0, run.output
    with Image.open(tmp_path / "out" / "in.png") as image:
        assert image.size == (4295, 3905)
        assert 16_700_000 < image.width * image.height <= OUTPUT_LIMIT

    (tmp_path / "out" / "in.png").unlink()
    env = {"VENICE_API_KEY": "k", "VENICE_BASE_URL": sandbox.base_url}
    run = hotfolder("process", "in.png", "--chain", "up", cwd=tmp_path, env=env)
    assert run.code == 0, run.output
    stats = sandbox.stats()
    assert stats["paid_total"] == 1
    assert stats["charged_usd"] == pytest.approx(0.08)  # the 4x price: scale=4 was sent
