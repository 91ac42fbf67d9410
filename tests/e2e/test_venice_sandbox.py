"""The Venice operations end to end: Runtime + Engine in process, the sandbox as a real HTTP
server on loopback (no mock of httpx on this path), the shared corpus as input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hotfolder.config import validate_config
from hotfolder.engine import Engine
from hotfolder.errors import AuthError, HotfolderError, InputError
from hotfolder.job import Job, JobResult
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder.venice import SERVICE, VeniceClient, VeniceSection
from hotfolder_sandbox import SandboxConfig, SandboxHandle, start_sandbox
from tests.helpers.corpus import BAD, PHOTOS

REGISTRY = build_registry(make_plugin_manager(load_entrypoints=False))
PHOTO_FILES = sorted(p for p in PHOTOS.iterdir() if not p.name.startswith("."))
BAD_FILES = sorted(p for p in BAD.iterdir() if not p.name.startswith("."))
#: Fast but faithful: the client's defaults, with the waits shrunk for a test.
FAST = {
    "requests_per_minute": 600,
    "backoff_base_seconds": 0.05,
    "backoff_cap_seconds": 0.5,
}


def chain(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "steps": list(steps),
        "outputs": [{"sink": "folder", "path": "out"}, {"sink": "sidecar"}],
    }


CHAINS = {
    "edit": chain({"op": "venice.edit", "prompt": "golden hour light", "fit": True}),
    "multi": chain(
        {
            "op": "venice.multi-edit",
            "prompt": "blend in the coffee",
            "fit": True,
            "with": [str(PHOTOS / "coffee.png")],
        }
    ),
    "upscale": chain({"op": "venice.upscale", "scale": 2, "fit": True}),
    "cutout": chain({"op": "venice.background-remove", "fit": True}),
}


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxHandle]:
    config = getattr(request, "param", {})
    with start_sandbox(SandboxConfig(requests_per_minute=600, **config)) as handle:
        yield handle


def make_engine(
    tmp_path: Path, handle: SandboxHandle, *, key: str = "sandbox-key", **settings: Any
) -> Engine:
    (tmp_path / "hotfolder.toml").touch()
    raw = {"venice": {"cache_dir": str(tmp_path / "cache"), **FAST, **settings}, "chains": CHAINS}
    config = validate_config(raw, REGISTRY, path=tmp_path / "hotfolder.toml")
    runtime = Runtime(config, make_plugin_manager(load_entrypoints=False), REGISTRY)
    runtime.set_service(
        SERVICE,
        VeniceClient(
            base_url=handle.base_url,
            api_key=key,
            settings=config.section(VeniceSection),
            persist=False,
        ),
    )
    return Engine(runtime)


async def run_jobs(
    engine: Engine, jobs: list[Job], concurrency: int = 4, *, close: bool = True
) -> list[JobResult | HotfolderError]:
    limit = asyncio.Semaphore(concurrency)

    async def one(job: Job) -> JobResult | HotfolderError:
        async with limit:
            try:
                return await engine.run(job)
            except HotfolderError as exc:
                return exc

    try:
        return list(await asyncio.gather(*(one(job) for job in jobs)))
    finally:
        if close:
            await engine.runtime.aclose()


def image_requests(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {k: v for k, v in stats["requests"].items() if k.startswith("/image/")}


def output_of(result: JobResult) -> tuple[Image.Image, dict[str, Any]]:
    image_out, sidecar_out = result.outputs
    image = Image.open(image_out.location)
    image.load()
    return image, json.loads(Path(sidecar_out.location).read_text())


def test_all_four_endpoints_over_the_corpus_photos(tmp_path, sandbox):
    engine = make_engine(tmp_path, sandbox)
    jobs = [Job(source=str(photo), chain=name) for name in CHAINS for photo in PHOTO_FILES]
    results = asyncio.run(run_jobs(engine, jobs))
    failed = [
        (job.source, job.chain, r)
        for job, r in zip(jobs, results, strict=True)
        if not isinstance(r, JobResult)
    ]
    assert not failed
    stats = sandbox.stats()
    assert stats["paid_total"] == len(jobs)
    assert all(set(counts) == {"200"} for counts in image_requests(stats).values())

    for job, result in zip(jobs, results, strict=True):
        assert isinstance(result, JobResult)
        image, sidecar = output_of(result)
        step = result.steps[0]
        assert sidecar["simulated"] is True
        assert step.request_ids and step.request_ids[0].endswith("-SBX")
        assert step.cost_usd is not None and step.cost_usd > 0
        if job.chain in ("edit", "multi"):
            assert max(image.size) == 1024  # the 1K tier
        elif job.chain == "upscale":
            width, height = map(int, step.notes["input_size"].split("x"))
            assert image.size == (width * 2, height * 2)
            with Image.open(job.source) as original:
                if original.width * original.height >= 65_536:
                    assert (width, height) == original.size  # in range: not refitted
        else:
            assert image.mode == "RGBA"
            low, high = image.getchannel("A").getextrema()
            if Path(job.source).name != "16bit.cropped.tif":  # values 291..694 of 65535: black
                assert low < 64 and high == 255, f"{job.source}: alpha {low}..{high}"
    done = [r for r in results if isinstance(r, JobResult)]
    assert sum(r.cost_usd or 0 for r in done) == 0  # nothing real was paid
    assert stats["charged_usd"] == pytest.approx(sum(r.simulated_usd for r in done))


FAULTS = {
    "fault_rates": {500: 0.10, 502: 0.05, 503: 0.05, 429: 0.10},
    "reset_rate": 0.05,
    "seed": 20260822,
    "lockout_window_seconds": 3.0,
    "lockout_duration_seconds": 3.0,
}


@pytest.mark.parametrize("sandbox", [FAULTS], indirect=True)
def test_a_fault_storm_ends_with_every_job_done_and_no_lockout(tmp_path, sandbox):
    # the lockout window is scaled down to 3 s for speed; the breaker's with it
    engine = make_engine(tmp_path, sandbox, max_attempts=10, breaker_window_seconds=3.5)
    jobs = [Job(source=str(PHOTO_FILES[i % len(PHOTO_FILES)]), chain="cutout") for i in range(30)]
    results = asyncio.run(run_jobs(engine, jobs))
    assert [type(r).__name__ for r in results] == ["JobResult"] * 30
    stats = sandbox.stats()
    counts = stats["requests"]["/image/background-remove"]
    failures = sum(n for status, n in counts.items() if status != "200")
    assert failures + stats["connection_resets"] >= 5  # the script really bit
    assert counts["200"] == 30
    assert stats["lockouts_triggered"] == 0


@pytest.mark.parametrize("sandbox", [{"balance_usd": 0.10}], indirect=True)
def test_402_mid_batch_pauses_at_once_and_a_probe_after_the_top_up_resumes(tmp_path, sandbox):
    """The real client against the sandbox's real 402: the calls in flight end in BalanceError
    at once (nobody waits inside a call), nothing more is sent while paused, and after a top-up
    one probe lifts the pause and the rest go through."""
    engine = make_engine(tmp_path, sandbox)
    client = engine.runtime.service(SERVICE, lambda: None)
    jobs = [Job(source=str(PHOTO_FILES[i]), chain="cutout") for i in range(12)]

    async def scenario() -> tuple[list[Any], bool, bool, list[Any]]:
        first = await run_jobs(engine, jobs, close=False)
        still_empty = await client.probe()
        async with httpx.AsyncClient() as admin:
            response = await admin.post(sandbox.admin_url + "/balance", json={"add_usd": 5})
            response.raise_for_status()
        topped_up = await client.probe()
        paused = [
            job
            for job, result in zip(jobs, first, strict=True)
            if not isinstance(result, JobResult)
        ]
        again = [Job(source=job.source, chain="cutout") for job in paused]
        return first, still_empty, topped_up, await run_jobs(engine, again)

    first, still_empty, topped_up, again = asyncio.run(scenario())
    kinds = {type(r).__name__ for r in first}
    assert kinds == {"JobResult", "BalanceError"}
    assert (still_empty, topped_up) == (False, True)
    assert [type(r).__name__ for r in again] == ["JobResult"] * len(again)
    stats = sandbox.stats()
    counts = stats["requests"]["/image/background-remove"]
    assert counts["200"] == 12
    assert 1 <= counts["402"] <= 4  # only those already in flight; none sent while paused
    assert stats["requests"]["/billing/balance"]["200"] == 2  # the two probes, nothing else
    assert stats["lockouts_triggered"] == 0


@pytest.mark.parametrize("sandbox", [{"valid_keys": frozenset({"the-right-key"})}], indirect=True)
def test_401_pauses_venice_work_with_a_clear_message(tmp_path, sandbox):
    engine = make_engine(tmp_path, sandbox, key="a-revoked-key-123")
    jobs = [Job(source=str(photo), chain="edit") for photo in PHOTO_FILES[:3]]
    results = asyncio.run(run_jobs(engine, jobs, concurrency=1))
    assert all(isinstance(r, AuthError) for r in results)
    assert "VENICE_API_KEY" in results[0].hint and "venice.ai/settings/api" in results[0].hint
    assert results[0].status == 401
    assert image_requests(sandbox.stats()) == {"/image/edit": {"401": 1}}  # then no more sending
    assert not any("a-revoked-key-123" in str(r) for r in results)


@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda p: p.name)
def test_no_bad_file_causes_a_request(tmp_path, sandbox, bad):
    engine = make_engine(tmp_path, sandbox)
    jobs = [Job(source=str(bad), chain=name) for name in CHAINS]
    results = asyncio.run(run_jobs(engine, jobs))
    assert all(isinstance(r, InputError) for r in results), results
    assert sandbox.stats()["requests_total"] == 0
