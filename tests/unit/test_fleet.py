"""The fleet's parts below the processes: the message shape, errors across the wire, the
``[executor]`` table, and a watcher's runner and a worker talking through Dramatiq's stub
broker (with a real ``redis-server`` for the worker's records), running a real chain."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO
from PIL import Image

from hotfolder import errors
from hotfolder.errors import ConfigError, HotfolderError
from hotfolder.fleet.dispatch import FleetRunner
from hotfolder.fleet.messages import JobMessage, Outcome, error_from_dict
from hotfolder.fleet.settings import ExecutorSection
from hotfolder.fleet.worker import OUTCOME_FILE, FleetWorker
from hotfolder.job import Job
from hotfolder.testing import make_runtime
from tests.helpers.fleet import RedisServer

CHAIN = {
    "chains": {
        "web": {
            "steps": [{"op": "convert", "format": "png"}],
            "outputs": [{"sink": "folder", "path": "out", "name": "{stem}.{ext}"}],
        }
    }
}


def test_a_job_message_is_plain_json_data_and_maps_paths(tmp_path):
    job = Job(
        source="/srv/share/inbox/.hotfolder/processing/j1.a.jpg",
        chain="web",
        id="j1",
        checkpoint_dir=Path("/srv/share/inbox/.hotfolder/processing/j1/paid"),
        origin="/srv/share/inbox/a.jpg",
        folder="/srv/share/inbox",
        archive="deleted",
    )
    message = JobMessage.of(job, attempt=2, chain_digest="abc", final=False,
                            step_timeout_seconds=30.0, src_sig="1:2:3")  # fmt: skip
    data = json.loads(json.dumps(message.to_dict()))  # survives the wire as it is
    assert set(data) == {
        "job_id", "attempt", "source", "chain", "chain_digest", "checkpoint_dir", "origin",
        "folder", "archive", "seq", "final", "step_timeout_seconds", "src_sig",
    }  # fmt: skip
    assert JobMessage.from_dict(data) == message
    settings = ExecutorSection(path_map={"/srv/share": "/Volumes/share", "/srv": "/x"})
    mapped = message.job(settings.local_path)
    assert mapped.source == "/Volumes/share/inbox/.hotfolder/processing/j1.a.jpg"  # longest
    assert mapped.checkpoint_dir == Path("/Volumes/share/inbox/.hotfolder/processing/j1/paid")
    assert (mapped.id, mapped.chain) == ("j1", "web")
    assert (mapped.origin, mapped.folder) == ("/Volumes/share/inbox/a.jpg", "/Volumes/share/inbox")
    assert mapped.archive == "deleted"


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_crosses_the_wire_as_its_own_class(name):
    cls = getattr(errors, name)
    kwargs = {"status": 402, "code": "X", "request_id": "r1"} if issubclass(
        cls, errors.VeniceError) else {}  # fmt: skip
    original = cls("it went wrong", hint="do this", **kwargs)
    original.step = "1:venice.edit"
    back = error_from_dict(json.loads(json.dumps(original.to_dict())))
    assert type(back) is cls
    assert (back.message, back.hint, back.step) == ("it went wrong", "do this", "1:venice.edit")
    assert (back.retryable, back.holds) == (original.retryable, original.holds)
    if kwargs:
        assert (back.status, back.code, back.request_id) == (402, "X", "r1")


def test_an_unknown_error_class_becomes_an_operation_error():
    back = error_from_dict({"class": "os.system", "message": "m", "hint": None})
    assert type(back) is errors.OperationError and back.message == "m"


def test_a_redis_url_with_a_password_is_not_written_in_the_file(monkeypatch):
    with pytest.raises(ValueError, match="by reference"):
        ExecutorSection(redis_url="redis://:s3cret@host:6379/0")
    with pytest.raises(ValueError, match="redis://"):
        ExecutorSection(redis_url="http://host")
    monkeypatch.setenv("FLEET_REDIS", "redis://:s3cret@host:6379/0")
    section = ExecutorSection.model_validate({"redis_url": {"env": "FLEET_REDIS"}})
    assert section.effective_redis_url() == "redis://:s3cret@host:6379/0"
    monkeypatch.delenv("FLEET_REDIS")
    with pytest.raises(ConfigError, match=r"\$FLEET_REDIS is not set"):
        section.effective_redis_url()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _claimed(tmp_path: Path, name: str = "a.jpg") -> Job:
    processing = tmp_path / "inbox/.hotfolder/processing"
    processing.mkdir(parents=True)
    source = processing / f"j1.{name}"
    Image.new("RGB", (64, 48), "teal").save(source)
    return Job(source=str(source), chain="web", id="j1", checkpoint_dir=processing / "j1/paid",
               origin=str(tmp_path / "inbox" / name))  # fmt: skip


async def _with_fleet(tmp_path, redis_server, body, workers=None):
    """A FleetRunner and a FleetWorker on one stub broker; ``body(runner)`` sends jobs; the
    worker is added to ``workers`` when given."""
    broker = StubBroker(middleware=[AsyncIO()])
    settings = ExecutorSection(kind="dramatiq", redis_url=redis_server.url,
                               namespace=f"t{id(tmp_path)}")  # fmt: skip
    runtime = make_runtime(CHAIN, base_dir=tmp_path)
    worker = FleetWorker(settings, lambda: runtime, broker=broker, client=redis_server.client())
    runner = FleetRunner(settings, broker=broker)
    if workers is not None:
        workers.append(worker)
    await runner.start()
    worker.start()
    try:
        return await asyncio.wait_for(body(runner, runtime), 30)
    finally:
        await asyncio.to_thread(worker.stop, 5)
        await runner.aclose()


def test_a_job_sent_runs_on_a_worker_and_its_outcome_comes_back(tmp_path, redis_server):
    job = _claimed(tmp_path)

    async def body(runner, runtime):
        digest = runtime.config.chain("web").digest
        first = await runner.run(job, attempt=1, final=True, chain_digest=digest,
                                 step_timeout_seconds=None, src_sig="s1")  # fmt: skip
        again = await runner.run(job, attempt=2, final=True, chain_digest=digest,
                                 step_timeout_seconds=None, src_sig="s1")  # fmt: skip
        return first, again

    workers = []
    first, again = asyncio.run(_with_fleet(tmp_path, redis_server, body, workers))
    out = tmp_path / "out" / "a.png"
    with Image.open(out) as image:
        assert (image.format, image.size) == ("PNG", (64, 48))
    assert [o.location for o in first.outputs] == [str(out)]
    # the repeated message was answered from the finished job's record: no second output
    assert again.outputs == first.outputs and sorted(p.name for p in out.parent.iterdir()) == [
        "a.png"
    ]
    record = json.loads((Path(job.checkpoint_dir) / OUTCOME_FILE).read_text())
    assert record["src_sig"] == "s1" and record["outcome"]["state"] == "done"
    assert workers[0].counts == {"done": 1, "failed": 0, "running": 0}  # the repeat: not run


def test_a_worker_with_another_chain_config_refuses_the_job(tmp_path, redis_server):
    job = _claimed(tmp_path)

    async def body(runner, runtime):
        with pytest.raises(HotfolderError) as caught:
            await runner.run(job, attempt=1, final=True, chain_digest="not-the-workers",
                             step_timeout_seconds=None, src_sig="s1")  # fmt: skip
        return caught.value

    error = asyncio.run(_with_fleet(tmp_path, redis_server, body))
    assert isinstance(error, ConfigError) and error.retryable  # another worker may have it
    assert "another config for chain 'web'" in error.message
    assert "hotfolder.toml" in (error.hint or "")
    assert not (tmp_path / "out").exists()  # nothing ran


def test_a_failed_job_reports_its_error_with_the_step(tmp_path, redis_server):
    job = _claimed(tmp_path)
    Path(job.source).write_bytes(b"not an image at all")

    async def body(runner, runtime):
        digest = runtime.config.chain("web").digest
        with pytest.raises(HotfolderError) as caught:
            await runner.run(job, attempt=1, final=True, chain_digest=digest,
                             step_timeout_seconds=None, src_sig="s1")  # fmt: skip
        return caught.value

    error = asyncio.run(_with_fleet(tmp_path, redis_server, body))
    assert isinstance(error, errors.InputError)
    assert "a.jpg" in error.message


def test_an_outcome_round_trips():
    message = JobMessage("j", 1, "/s", "c", "d", "", "/o", "/f", None, 1, True, None)
    outcome = Outcome.failed(message, errors.Unavailable("busy", retry_after=3.0), worker="h:1")
    back = Outcome.from_dict(json.loads(json.dumps(outcome.to_dict())))
    with pytest.raises(errors.Unavailable) as caught:
        back.raise_error()
    assert caught.value.retry_after == 3.0 and caught.value.retryable


def test_a_job_that_stopped_too_many_workers_fails_as_a_poison_message(tmp_path, redis_server):
    job = _claimed(tmp_path)
    namespace = f"t{id(tmp_path)}"
    # three deliveries of attempt 1 ended with their worker (killed mid-job): this is the 4th
    redis_server.client().set(f"{namespace}:deliveries:{job.id}:1", 3)

    async def body(runner, runtime):
        digest = runtime.config.chain("web").digest
        with pytest.raises(HotfolderError) as caught:
            await runner.run(job, attempt=1, final=True, chain_digest=digest,
                             step_timeout_seconds=None, src_sig="s1")  # fmt: skip
        return caught.value

    error = asyncio.run(_with_fleet(tmp_path, redis_server, body))
    assert isinstance(error, errors.OperationError) and not error.retryable
    assert "stopped the worker running it 3 times" in error.message
    assert "hotfolder retry j1" in (error.hint or "")
    assert not (tmp_path / "out").exists()


def _account(redis_server, name: str):
    from hotfolder.fleet.account import RedisAccount

    return RedisAccount(redis_server.client(), f"acct-{name}")


def test_two_processes_share_one_rate_window(redis_server):
    account = _account(redis_server, "rate")
    one, two = account.rate_limiter(3), account.rate_limiter(3)  # two processes, one account

    async def scenario():
        await one.acquire()
        await one.acquire()
        assert not two.would_wait()
        await two.acquire()
        return one.would_wait(), two.would_wait()

    assert asyncio.run(scenario()) == (True, True)  # 3 of 3 used, by either of them
    one.hold(30)  # a 429 seen by one holds the other back too
    fresh = _account(redis_server, "rate-hold")
    fresh.rate_limiter(3).hold(30)
    assert fresh.rate_limiter(3).would_wait()


def test_a_pause_entered_by_one_client_holds_the_other_and_a_probe_lifts_it_for_both(
    redis_server,
):
    from hotfolder.venice.pausing import VenicePause

    account = _account(redis_server, "pause")
    balance = {"canConsume": False, "balances": {"USD": 0.0}}

    async def probe_balance():
        return balance

    a = VenicePause(balance=probe_balance, budget_fits=lambda usd: True,
                    store=account.pause_store())  # fmt: skip
    b = VenicePause(balance=probe_balance, budget_fits=lambda usd: True,
                    store=account.pause_store())  # fmt: skip
    a.enter(errors.BalanceError("no money", hint="top up", status=402), needed_usd=0.03)
    assert b.current is not None and b.current.kind == "balance"
    with pytest.raises(errors.BalanceError, match="no money"):
        b.check(image=True)
    b.check(image=False)  # a balance pause holds back image requests only
    assert asyncio.run(b.probe()) is False  # still no money
    balance.update(canConsume=True, balances={"USD": 5.0})
    assert asyncio.run(b.probe()) is True
    assert a.current is None
    a.check(image=True)


def test_the_days_spend_is_booked_by_every_process(redis_server):
    from hotfolder.venice.cost import SpendLedger

    account = _account(redis_server, "spend")
    one = SpendLedger(None, base_url="x", max_usd_per_day=0.1, store=account.spend_store())
    two = SpendLedger(None, base_url="x", max_usd_per_day=0.1, store=account.spend_store())
    one.settle(one.reserve(0.04), 0.04)
    two.settle(two.reserve(0.04), 0.04)
    assert one.spent_today() == pytest.approx(0.08) == two.spent_today()
    with pytest.raises(errors.BudgetExceeded):
        one.reserve(0.04)
