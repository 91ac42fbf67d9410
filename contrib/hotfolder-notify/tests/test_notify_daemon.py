"""hotfolder-notify through the real daemon (``hotfolder run`` as a subprocess), the Venice
sandbox as a real HTTP server that answers 402 until it is topped up, and a real receiver
behind Apprise's ``json://`` target. Each wait is for a condition (a message received, a
journal state), never for a time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotfolder.testing import HotFolder, hot_folder, make_image, sandbox
from tests.helpers.daemon import Daemon, wait_for

pytestmark = pytest.mark.e2e

FAST = {"rescan_seconds": 1, "grace_seconds": 10, "max_attempts": 1, "reprobe_seconds": 1}
URL_ENV = "HOTFOLDER_NOTIFY_TEST_URL"


def setup(root: Path, notify: dict[str, Any], steps: list[dict[str, Any]]) -> HotFolder:
    folder = hot_folder(root)
    folder.write_config(
        steps,
        folder={"quiet_seconds": 0.2},
        daemon=FAST,
        venice={"requests_per_minute": 10_000},
        plugins={"notify": notify},
    )
    return folder


def titled(receiver: Any, words: str, count: int = 1) -> list[dict[str, Any]]:
    """Wait until ``count`` messages whose title has ``words`` have arrived; all messages."""

    def arrived() -> list[dict[str, Any]] | None:
        messages = receiver.received()
        return messages if sum(words in m["title"] for m in messages) >= count else None

    try:
        result: list[dict[str, Any]] = wait_for(arrived, 60, f"a message titled {words!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; received: {receiver.received()}") from None
    return result


def set_balance(venice: Any, **body: float) -> None:
    httpx.post(venice.admin_url + "/balance", json=body, timeout=10).raise_for_status()


def test_a_failure_a_402_pause_and_its_resume_send_one_message_each(tmp_path, receiver):
    notify = {"urls": [receiver.url], "digest_seconds": 1}
    folder = setup(tmp_path, notify, [{"op": "venice.upscale", "scale": 2}])
    with sandbox() as venice:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": venice.base_url}
        with Daemon(tmp_path, env=env) as daemon:
            daemon.start()
            folder.drop("broken.png", b"this is not an image")
            [failed] = titled(receiver, "1 job failed")

            set_balance(venice, usd=0)  # every image request is now a 402
            folder.drop("photo.png", make_image((300, 260)))
            paused = titled(receiver, "paid work paused")[-1]
            assert daemon.states()["paused"] == 1
            refused = venice.stats()["paid_total"]

            set_balance(venice, add_usd=5)
            resumed = titled(receiver, "paid work resumed")[-1]
            daemon.wait_states(done=1, failed=1)
            assert daemon.stop() == 0
        stats = venice.stats()
    messages = receiver.received()
    assert [m["title"] for m in messages] == [
        "hotfolder: 1 job failed",
        "hotfolder: paid work paused",
        "hotfolder: paid work resumed",
    ]
    assert "job failed: " in failed["message"] and "broken.png" in failed["message"]
    assert failed["type"] == "failure"
    assert "venice work paused (balance)" in paused["message"] and "fix:" in paused["message"]
    assert paused["type"] == "warning"
    assert "venice work resumed after a pause (balance)" in resumed["message"]
    assert resumed["type"] == "success"
    assert refused == 0 and stats["paid_total"] == 1  # paid once, after the top-up
    assert "notify: sending to json://127.0.0.1" in daemon.log()


def test_fifty_failures_in_one_digest_window_are_one_message(tmp_path, receiver):
    """The URL comes by reference (a SecretRef); the window outlasts the batch, and stopping
    the daemon sends what it gathered."""
    notify = {"urls": [{"env": URL_ENV}], "digest_seconds": 600}
    folder = setup(tmp_path, notify, [{"op": "resize", "width": 32}])
    with Daemon(tmp_path, env={URL_ENV: receiver.url}) as daemon:
        daemon.start()
        for n in range(50):
            folder.drop(f"broken{n:02d}.png", b"not an image either")
        daemon.wait_states(failed=50, timeout=120)
        assert receiver.received() == []  # still gathering
        assert daemon.stop() == 0
    [message] = receiver.received()
    assert message["title"] == "hotfolder: 50 jobs failed"
    lines = message["message"].splitlines()
    assert len(lines) == 26 and lines[-1] == "… and 25 more: 25 jobs failed"
    assert sum("job failed: " in line for line in lines) == 25
    assert receiver.url.split("//")[1] not in daemon.log()  # the URL by reference is not shown


def test_a_folder_gone_for_long_enough_is_reported_and_so_is_its_return(tmp_path, receiver):
    notify = {"urls": [receiver.url], "digest_seconds": 0, "unreachable_after_seconds": 1}
    folder = setup(tmp_path, notify, [{"op": "resize", "width": 32}])
    away = tmp_path / "moved-away"
    with Daemon(tmp_path) as daemon:
        daemon.start()
        os.rename(folder.inbox, away)
        gone = titled(receiver, "1 folder unreachable")[-1]
        os.rename(away, folder.inbox)
        back = titled(receiver, "1 folder back")[-1]
        folder.drop("after.png")
        daemon.wait_states(done=1)
        assert daemon.stop() == 0
    assert f"{folder.inbox} is not there" in gone["message"] and gone["type"] == "failure"
    assert f"folder back: {folder.inbox}" in back["message"]
    assert len(receiver.received()) == 2


def test_a_fleet_notifies_from_its_watcher(tmp_path, receiver):
    """With ``[executor] kind = "dramatiq"`` the chain runs on a worker, and the watcher, where
    the job is owned, sends the notifications: a job a worker failed (Venice refused it), and
    a 402 a worker met, paused for the whole fleet, and resumed."""
    from tests.helpers.fleet import RedisServer, Worker

    with RedisServer(tmp_path / "redis") as redis, sandbox() as venice:
        folder = hot_folder(tmp_path)
        folder.write_config(
            [{"op": "venice.upscale", "scale": 2}],
            folder={"quiet_seconds": 0.2},
            daemon=FAST,
            venice={"requests_per_minute": 10_000},
            executor={"kind": "dramatiq", "redis_url": redis.url, "heartbeat_seconds": 2},
            plugins={"notify": {"urls": [receiver.url], "digest_seconds": 1}},
        )
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": venice.base_url}
        with Daemon(tmp_path, env=env) as daemon, Worker(tmp_path, "w", env=env) as worker:
            daemon.start()
            worker.start()
            faults = {"fault_rates": {"400": 1.0}}
            httpx.patch(venice.admin_url + "/config", json=faults, timeout=10).raise_for_status()
            folder.drop("refused.png", make_image((300, 260)))
            [failed] = titled(receiver, "1 job failed")
            httpx.patch(venice.admin_url + "/config", json={"fault_rates": {}}, timeout=10)

            set_balance(venice, usd=0)
            folder.drop("photo.png", make_image((310, 270)))
            titled(receiver, "paid work paused")
            set_balance(venice, add_usd=5)
            titled(receiver, "paid work resumed")
            daemon.wait_states(done=1, failed=1)
            worker_log = worker.log()
    assert [m["title"] for m in receiver.received()] == [
        "hotfolder: 1 job failed",
        "hotfolder: paid work paused",
        "hotfolder: paid work resumed",
    ]
    assert "refused.png" in failed["message"]
    assert "refused.png" in worker_log and "photo.png" in worker_log  # the worker ran both
