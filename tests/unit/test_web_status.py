"""The Overview and ``GET /api/status`` against a real journal: the rate limit and the fleet
the running daemon journals (meta ``services`` and ``fleet``), the status computed again only
when the journal (or the daemon, or the config) changed, and a reloaded config shown."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hotfolder.config import load_config
from hotfolder.daemon.lock import InstanceLock
from hotfolder.daemon.status import collect
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.web.app import create_app
from tests.unit.test_web_routes import World

SERVICES = [
    {"service": "venice", "rate": {"limit": 20, "sent": 3, "free_in_seconds": 0}, "shared": False}
]
FLEET = {
    "workers": [
        {"host": "render-1", "pid": 4242, "done": 17, "failed": 2, "running": 1,
         "started": 1_790_000_000.0, "last_seen": 1_790_000_100.0},
        {"host": "render-2", "pid": 77, "done": 5, "failed": 0, "running": 0,
         "started": 1_790_000_000.0, "last_seen": 1_790_000_090.0},
    ],
    "queued": 9,
    "jobs_out": 3,
    "checked": 1_790_000_101.0,
}  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, extra=3)


@pytest.fixture
def running(world: World) -> Iterator[World]:
    """The daemon's lock held, as a running daemon holds it (status reads its meta only then)."""
    lock = InstanceLock(world.state_dir)
    lock.acquire()
    try:
        yield world
    finally:
        lock.release()


def _json(data: object) -> object:
    return json.loads(json.dumps(data, default=str))


def test_rate_limit_and_fleet_are_on_the_overview_and_in_api_status(running: World) -> None:
    running.journal.set_meta("services", SERVICES)
    running.journal.set_meta("fleet", FLEET)
    client = TestClient(create_app(running.dashboard()))
    page = client.get("/").text
    assert "venice</strong>: 3 of 20 image requests in the last minute;" in page
    assert "a slot is free now" in page
    assert "2 worker(s) seen; 9 job(s) queued in Redis, 3 out" in page
    assert 'render-1 <span class="dim">pid 4242</span>: 17 done, 2 failed, 1 running' in page
    assert "render-2" in page and 'id="fleet"' in page
    data = client.get("/api/status").json()
    assert data["services"] == SERVICES and data["fleet"] == FLEET
    assert data == _json(collect(running.state_dir, None))  # hotfolder status --json


def test_a_busy_limit_says_when_the_next_slot_is_free(running: World) -> None:
    busy = [SERVICES[0] | {"rate": {"limit": 20, "sent": 20, "free_in_seconds": 12.5},
                           "shared": True}]  # fmt: skip
    running.journal.set_meta("services", busy)
    page = TestClient(create_app(running.dashboard())).get("/?partial=1").text
    assert "20 of 20 image requests in the last minute (the fleet's, shared);" in page
    assert "the next slot is free in 12.5 s" in page
    assert 'id="fleet"' not in page  # no fleet journaled: no card


def test_no_rate_line_and_no_fleet_while_no_daemon_runs(world: World) -> None:
    world.journal.set_meta("services", SERVICES)
    world.journal.set_meta("fleet", FLEET)
    client = TestClient(create_app(world.dashboard()))
    page = client.get("/").text
    assert "image requests in the last minute" not in page and 'id="fleet"' not in page
    data = client.get("/api/status").json()
    assert data["services"] == [] and data["fleet"] is None


def test_the_status_is_computed_again_only_when_the_journal_changed(
    running: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hotfolder.daemon.status as status_module

    calls: list[float] = []
    real = status_module.collect

    def counting(*args: object, **kw: object) -> dict[str, object]:
        calls.append(time.monotonic())
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(status_module, "collect", counting)
    client = TestClient(create_app(running.dashboard()))
    first = client.get("/api/status").json()
    assert client.get("/api/status").json() == first
    assert client.get("/").status_code == 200
    assert len(calls) == 1  # the journal did not change: the same answer

    running.journal.set_meta("services", SERVICES)
    assert client.get("/api/status").json()["services"] == SERVICES
    running.journal.update("q00001", state="running")
    folder = next(f for f in client.get("/api/status").json()["folders"] if f["counts"]["running"])
    assert [j["id"] for j in folder["in_flight"]] == ["q00001"]
    assert len(calls) == 3
    assert client.get("/api/status").json() == _json(real(running.state_dir, None))
    assert len(calls) == 3


def test_the_status_follows_the_daemon_stopping(world: World) -> None:
    client = TestClient(create_app(world.dashboard()))
    lock = InstanceLock(world.state_dir)
    lock.acquire()
    try:
        assert client.get("/api/status").json()["daemon"]["running"] is True
    finally:
        lock.release()
    assert client.get("/api/status").json()["daemon"]["running"] is False  # no journal change


def test_a_reloaded_config_is_shown(world: World, tmp_path: Path) -> None:
    """The dashboard follows the daemon's reload (SIGHUP): the new folder is listed, and the
    live stream announces the change so an open Overview fetches itself again."""
    from hotfolder.web.context import Dashboard
    from hotfolder.web.events import JournalWatch

    registry = build_registry(make_plugin_manager(load_entrypoints=False))
    chain = '[chains.web]\nsteps = [{ op = "convert", format = "png" }]\n'
    chain += 'outputs = [{ sink = "folder", path = "out" }]\n'
    path = tmp_path / "hotfolder.toml"
    path.write_text(f'[[folders]]\npath = "inbox"\nchain = "web"\n\n{chain}')
    dash = Dashboard(world.state_dir, load_config(path, registry))
    client = TestClient(create_app(dash))
    (tmp_path / "second").mkdir()
    assert str(tmp_path / "second") not in client.get("/").text

    path.write_text(
        f'[[folders]]\npath = "inbox"\nchain = "web"\n\n[[folders]]\npath = "second"\n'
        f'chain = "web"\n\n{chain}'
    )
    dash.reload(load_config(path, registry))
    page = client.get("/").text
    assert str(tmp_path / "inbox") in page and str(tmp_path / "second") in page
    paths = [f["path"] for f in client.get("/api/status").json()["folders"]]
    assert str(tmp_path / "second") in paths

    watch = JournalWatch(dash.journal_path)
    try:
        assert watch.changed() is not None
        assert watch.changed() is None
        assert watch.changed(force=True) is not None  # what the stream does on a reload
    finally:
        watch.close()
