"""The scheduler in-process: Venice pauses (only paid chains wait, a probe resumes them),
retries with backoff up to the attempts cap, duplicates skipped by key, and each file read
once."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest
from PIL import Image

import hotfolder
from hotfolder.config import validate_config
from hotfolder.daemon import claim
from hotfolder.daemon.folders import plan_folders
from hotfolder.daemon.journal import Journal, NewJob
from hotfolder.daemon.scheduler import Scheduler
from hotfolder.errors import AuthError, BudgetExceeded, Unavailable
from hotfolder.localfiles import read_local
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder_plugins import resolvers

#: What the paid test step does next: None passes the image through, else it is raised.
NEXT: list[Exception | None] = []
CALLS: list[str] = []


class FakePaid(hotfolder.Operation):
    name = "test.paid"
    paid = True

    async def run(self, context, image):
        CALLS.append(context.job.id)
        error = NEXT.pop(0) if NEXT else None
        if error is not None:
            raise error
        return image


class _Plugin:
    @hotfolder.hookimpl
    def hotfolder_register_operations(self, register):
        register(FakePaid)


@pytest.fixture
def setup(tmp_path):
    NEXT.clear()
    CALLS.clear()
    registry = build_registry(
        make_plugin_manager(load_entrypoints=False, extra=[(_Plugin(), "test")])
    )
    raw = {
        "daemon": {"max_attempts": 3, "retry_backoff_seconds": 0},
        "folders": [{"path": "paid", "chain": "paid"}, {"path": "local", "chain": "local"}],
        "chains": {
            "paid": {
                "steps": [{"op": "test.paid"}],
                "outputs": [{"sink": "folder", "path": "out/paid"}],
            },
            "local": {
                "steps": [{"op": "auto-orient"}],
                "outputs": [{"sink": "folder", "path": "out/local"}],
            },
        },
    }
    (tmp_path / "paid").mkdir()
    (tmp_path / "local").mkdir()
    config = validate_config(raw, registry, path=tmp_path / "hotfolder.toml")
    plans = {p.chain: p for p in plan_folders(config)}
    journal = Journal(tmp_path / "journal.sqlite3")
    pm = make_plugin_manager(load_entrypoints=False, extra=[(_Plugin(), "test")])
    scheduler_box: list[Scheduler] = []

    def drop(chain: str, name: str, color: str = "teal") -> str:
        plan = plans[chain]
        Image.new("RGB", (40, 30), color).save(plan.root / name)
        claimed = claim.claim(plan.root, name)
        journal.add([NewJob(claimed.id, plan.key, name, chain)])
        return claimed.id

    async def settle() -> None:
        scheduler = scheduler_box[0]
        for _ in range(100):
            scheduler.dispatch()
            if not scheduler.inflight:
                return
            await asyncio.gather(*(t for t, _ in list(scheduler.inflight.values())))

    async def make() -> Scheduler:
        scheduler = Scheduler(journal, Runtime(config, pm, registry), list(plans.values()))
        scheduler_box.append(scheduler)
        return scheduler

    yield tmp_path, journal, drop, make, settle
    journal.close()


def test_auth_error_pauses_paid_chains_only_and_a_probe_resumes(setup):
    _, journal, drop, make, settle = setup

    async def scenario() -> None:
        scheduler = await make()
        first, second = drop("paid", "a.png"), drop("paid", "b.png", "red")
        NEXT.extend([AuthError("401 from Venice", status=401)] * 2)
        await settle()  # both were in flight: both pause
        assert [journal.get(j).state for j in (first, second)] == ["paused", "paused"]
        assert journal.get(first).attempts == 0  # a pause does not use up an attempt
        third, local = drop("paid", "d.png", "blue"), drop("local", "c.png")
        await settle()
        assert journal.get(third).state == "queued"  # waits: its chain has a paid step
        assert journal.get(local).state == "done"  # local-only chains go on
        assert journal.meta("pause")["kind"] == "auth"
        assert sorted(CALLS) == sorted([first, second])  # once each, in flight together

        scheduler.pause.retry_at = time.time() - 1  # the re-probe is due; the key works again
        await settle()
        assert scheduler.pause is None and journal.meta("pause") is None
        assert {journal.get(j).state for j in (first, second, third)} == {"done"}
        assert CALLS[2] == first  # the probe: one paused job, before any other
        await scheduler.aclose()

    asyncio.run(scenario())


def test_budget_pause_waits_for_the_next_local_day(setup):
    _, journal, drop, make, settle = setup

    async def scenario() -> None:
        scheduler = await make()
        drop("paid", "a.png")
        NEXT.append(BudgetExceeded("max_usd_per_day reached"))
        await settle()
        assert scheduler.pause.kind == "budget"
        tomorrow = time.localtime(scheduler.pause.retry_at)
        assert (tomorrow.tm_hour, tomorrow.tm_min) == (0, 0)
        assert scheduler.pause.retry_at > time.time()
        scheduler.resume("the config was reloaded")
        await settle()
        assert dict(journal.counts().popitem()[1]) == {"done": 1}
        await scheduler.aclose()

    asyncio.run(scenario())


def test_retryable_errors_back_off_then_fail_with_an_error_file(setup):
    root, journal, drop, make, settle = setup

    async def scenario() -> None:
        scheduler = await make()
        job = drop("paid", "a.png")
        NEXT.extend([Unavailable("503", status=503, request_id="R1")] * 3)
        await settle()
        row = journal.get(job)
        assert (row.state, row.attempts) == ("failed", 3)
        assert row.error["status"] == 503 and row.error["request_id"] == "R1"
        assert (root / "paid/.hotfolder/failed/a.png").is_file()
        assert (root / "paid/.hotfolder/failed/a.png.error.json").is_file()
        await scheduler.aclose()

    asyncio.run(scenario())


def test_same_bytes_through_the_same_chain_are_skipped(setup):
    root, journal, drop, make, settle = setup

    async def scenario() -> None:
        scheduler = await make()
        first = drop("local", "a.png")
        await settle()
        again = drop("local", "again.png")  # same pixels, same encoder: same bytes
        await settle()
        assert journal.get(first).state == "done"
        assert journal.get(again).state == "skipped"
        assert journal.get(again).key == journal.get(first).key
        assert sorted(p.name for p in (root / "out/local").iterdir()) == ["a.png"]
        await scheduler.aclose()

    asyncio.run(scenario())


def test_a_job_reads_its_file_once(setup, monkeypatch):
    root, journal, drop, make, settle = setup
    reads = []

    def counting(path, policy):
        reads.append(path.name)
        return read_local(path, policy)

    monkeypatch.setattr(resolvers, "read_local", counting)

    async def scenario() -> None:
        scheduler = await make()
        job = drop("local", "a.png")
        await settle()
        row = journal.get(job)
        assert row.state == "done"
        (archived,) = (root / "local/.hotfolder/archive").rglob("a.png")
        assert row.key.split(":")[0] == hashlib.sha256(archived.read_bytes()).hexdigest()
        await scheduler.aclose()

    asyncio.run(scenario())
    assert reads == ["a.png"]  # resolved once: hashed for the key, then run from memory
