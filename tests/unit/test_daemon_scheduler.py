"""The scheduler in-process: pauses (only paid chains wait, a probe of the paused service
resumes them), retries with backoff up to the attempts cap, duplicates skipped by key, and
each file read once.

The paid test step calls a small :class:`~hotfolder.pauses.Pausable` service standing in for
the Venice client (the scheduler is what is tested here; the real client's pause is tested in
test_venice_limiter.py and, end to end, in tests/e2e/test_venice_pauses.py)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import ClassVar

import pytest
from PIL import Image

import hotfolder
from hotfolder.config import validate_config
from hotfolder.daemon import claim
from hotfolder.daemon.folders import plan_folders
from hotfolder.daemon.journal import Journal, NewJob
from hotfolder.daemon.scheduler import Scheduler
from hotfolder.errors import AuthError, BudgetExceeded, Unavailable, VeniceError
from hotfolder.localfiles import STRICT, LocalFile
from hotfolder.pauses import Pause
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder_plugins import resolvers

#: What the paid test step does next: None passes the image through, else it is raised.
NEXT: list[Exception | None] = []
CALLS: list[str] = []


class Pauser:
    """A paid service that pauses on the errors it meets; ``fixed`` lets the next probe pass."""

    def __init__(self) -> None:
        self.pause: Pause | None = None
        self.error: VeniceError | None = None
        self.fixed = False
        self.probes = 0

    def call(self) -> None:
        if self.error is not None:
            raise self.error
        error = NEXT.pop(0) if NEXT else None
        if isinstance(error, AuthError | BudgetExceeded):
            self.pause = Pause("test", "auth", error.message, None, time.time())
            self.error = error
        if error is not None:
            raise error

    async def probe(self) -> bool:
        self.probes += 1
        if self.fixed:
            self.pause = self.error = None
        return self.pause is None


class FakePaid(hotfolder.Operation):
    name = "test.paid"
    paid = True

    async def run(self, context, image):
        CALLS.append(context.job.id)
        context.runtime.service("test.pauser", Pauser).call()
        return image


class WritesOnce(hotfolder.Operation):
    """A writer that still held the file open appends to it while the job runs (once)."""

    name = "test.writes-once"
    written: ClassVar[list[str]] = []

    def run(self, context, image):
        if context.job.id not in self.written:
            self.written.append(context.job.id)
            with open(context.job.source, "ab") as f:
                f.write(b"late bytes")
        return image


class _Plugin:
    @hotfolder.hookimpl
    def hotfolder_register_operations(self, register):
        register(FakePaid)
        register(WritesOnce)


@pytest.fixture
def setup(tmp_path):
    NEXT.clear()
    CALLS.clear()
    registry = build_registry(
        make_plugin_manager(load_entrypoints=False, extra=[(_Plugin(), "test")])
    )
    raw = {
        "daemon": {"max_attempts": 3, "retry_backoff_seconds": 0},
        "folders": [
            {"path": "paid", "chain": "paid"},
            {"path": "local", "chain": "local"},
            {"path": "writes", "chain": "writes"},
        ],
        "chains": {
            "paid": {
                "steps": [{"op": "test.paid"}],
                "outputs": [{"sink": "folder", "path": "out/paid"}],
            },
            "local": {
                "steps": [{"op": "auto-orient"}],
                "outputs": [{"sink": "folder", "path": "out/local"}],
            },
            "writes": {
                "steps": [{"op": "test.writes-once"}],
                "outputs": [{"sink": "folder", "path": "out/writes"}],
            },
        },
    }
    (tmp_path / "paid").mkdir()
    (tmp_path / "local").mkdir()
    (tmp_path / "writes").mkdir()
    config = validate_config(raw, registry, path=tmp_path / "hotfolder.toml")
    plans = {p.chain: p for p in plan_folders(config)}
    journal = Journal(tmp_path / "journal.sqlite3")
    pm = make_plugin_manager(load_entrypoints=False, extra=[(_Plugin(), "test")])
    scheduler_box: list[Scheduler] = []

    def drop(chain: str, name: str, color: str = "teal") -> str:
        plan = plans[chain]
        Image.new("RGB", (40, 30), color).save(plan.root / name)
        claimed = claim.claim(plan.root, name)
        journal.add([NewJob(claimed.id, plan.key, name, chain, str(claimed.sig))])
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


def test_a_pause_holds_paid_chains_only_and_a_probe_resumes(setup):
    _, journal, drop, make, settle = setup

    async def scenario() -> None:
        scheduler = await make()
        first, second = drop("paid", "a.png"), drop("paid", "b.png", "red")
        NEXT.append(AuthError("401 from Venice", status=401))
        await settle()  # both were in flight: the second met the pause the first began
        assert [journal.get(j).state for j in (first, second)] == ["paused", "paused"]
        assert journal.get(first).attempts == 0  # a pause does not use up an attempt
        third, local = drop("paid", "d.png", "blue"), drop("local", "c.png")
        await settle()
        assert journal.get(third).state == "queued"  # waits: its chain has a paid step
        assert journal.get(local).state == "done"  # local-only chains go on
        shown = journal.meta("pause")
        assert shown["reason"] == "401 from Venice" and shown["next_probe"]
        pauser = scheduler.runtime.service("test.pauser", Pauser)

        scheduler.watch.reprobe_seconds = 0  # the re-probe is due, but the key is still bad
        await settle()
        await asyncio.sleep(0.01)
        assert pauser.probes >= 1 and scheduler.pause is not None
        assert journal.get(first).state == "paused"

        pauser.fixed = True  # the key works again: the next probe resumes every paused job
        for _ in range(20):
            await settle()
            await asyncio.sleep(0.01)
        assert scheduler.pause is None and journal.meta("pause") is None
        assert {journal.get(j).state for j in (first, second, third)} == {"done"}
        assert sorted(CALLS[:2]) == sorted([first, second])
        assert CALLS.count(first) == 2  # once into the pause, once after it
        await scheduler.aclose()

    asyncio.run(scenario())


def test_a_reloaded_config_brings_unpaused_services(setup):
    _, journal, drop, make, settle = setup

    async def scenario() -> None:
        scheduler = await make()
        job = drop("paid", "a.png")
        NEXT.append(BudgetExceeded("max_usd_per_day reached"))
        await settle()
        assert scheduler.pause is not None and journal.get(job).state == "paused"
        old = scheduler.runtime
        scheduler.replace(Runtime(old.config, old.pm, old.registry), list(scheduler.plans.values()))
        await settle()
        assert journal.get(job).state == "done"
        await scheduler.aclose()

    asyncio.run(scenario())


def test_a_pause_error_from_a_service_that_cannot_be_probed_is_retried(setup):
    _, journal, drop, make, settle = setup

    class Unprobed(hotfolder.Operation):
        name = "test.unprobed"

    async def scenario() -> None:
        scheduler = await make()
        job = drop("paid", "a.png")
        # raised, but no Pausable service is paused: nobody could ever lift it
        scheduler.runtime.set_service("test.pauser", _Raising())
        await settle()
        row = journal.get(job)
        assert (row.state, row.attempts) == ("failed", 3)
        assert row.error["class"] == "AuthError"
        await scheduler.aclose()

    asyncio.run(scenario())


class _Raising:
    def call(self) -> None:
        raise AuthError("the plugin's own service refused its key")


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

    class Counting(LocalFile):
        @classmethod
        def read(cls, path, policy=STRICT):
            reads.append(path.name)
            return super().read(path, policy)

    monkeypatch.setattr(resolvers, "LocalFile", Counting)

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
    # resolved once, from processing/: hashed for the key as it was read
    assert [name.partition(".")[2] for name in reads] == ["a.png"]


def test_a_job_whose_finishing_raises_is_failed_with_its_original_kept(setup, monkeypatch):
    root, journal, drop, make, settle = setup
    from hotfolder.daemon import scheduler as scheduler_module

    def broken_archive(*args: object) -> None:
        msg = "the archive place is gone mad"
        raise RuntimeError(msg)

    monkeypatch.setattr(scheduler_module.claim, "archive_target", broken_archive)

    async def scenario() -> None:
        scheduler = await make()
        job = drop("local", "c.png")
        await settle()
        row = journal.get(job)
        assert row.state == "failed"  # not left running
        assert "could not be finished" in row.error["message"]
        kept = root / "local/.hotfolder/failed" / job / "c.png"
        assert kept.is_file() and row.place == str(kept)
        assert (kept.parent / "c.png.error.json").is_file()
        await scheduler.aclose()

    asyncio.run(scenario())


def test_twins_in_flight_are_paid_once_and_the_second_is_skipped(setup):
    _, journal, drop, make, settle = setup

    async def scenario() -> None:
        scheduler = await make()
        first, twin = drop("paid", "a.png"), drop("paid", "a-copy.png")  # the same bytes
        await settle()  # both start together; the twin waits for the first one's outcome
        assert len(CALLS) == 1
        rows = {journal.get(j).state: journal.get(j) for j in (first, twin)}
        assert set(rows) == {"done", "skipped"}  # either may win; the other waits for it
        skipped = rows["skipped"]
        assert skipped.attempts <= 1
        assert skipped.error["message"] == f"same bytes and chain as job {rows['done'].id}"
        await scheduler.aclose()

    asyncio.run(scenario())


def test_a_file_changed_while_processed_is_run_again_not_archived(setup):
    _, journal, drop, make, settle = setup

    async def scenario() -> None:
        scheduler = await make()
        job = drop("writes", "a.png")
        for _ in range(30):  # the rerun waits half a second
            await settle()
            if journal.get(job).state == "done":
                break
            await asyncio.sleep(0.1)
        row = journal.get(job)
        assert row.state == "done"
        assert WritesOnce.written == [job]
        assert row.attempts == 1  # the rerun was not charged
        await scheduler.aclose()

    asyncio.run(scenario())
