"""hotfolder-notify's parts: its settings through the real config loader, the message a batch
of events makes, and the notifier's digests and folder timers (its thread is real; only the
sending is replaced, except where Apprise sends to a real receiver)."""

from __future__ import annotations

import threading
from typing import Any

import hotfolder_notify
import pytest
from hotfolder_notify import Event, Message, Notifier, NotifySettings, render

import hotfolder
from hotfolder.config import validate_config
from hotfolder.errors import ConfigError, InputError
from hotfolder.job import Job
from hotfolder.pauses import Pause
from hotfolder.plugins import build_registry, make_plugin_manager, plugin_info
from hotfolder.testing import make_runtime
from tests.helpers.daemon import wait_for

CHAINS = {"web": {"outputs": [{"sink": "folder", "path": "out"}]}}
PAUSE = Pause("venice", "balance", "the balance is empty", "top up", since=1_700_000_000.0)


class Collect:
    """Stands in for Apprise: keeps each message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    def __call__(self, message: Message) -> bool:
        with self._lock:
            self.messages.append(message)
        return True

    def titles(self) -> list[str]:
        with self._lock:
            return [m.title for m in self.messages]


class Started:
    """What ``hotfolder_daemon_started`` is handed: just the settings."""

    def __init__(self, **settings: Any) -> None:
        self.settings = NotifySettings(**settings)

    def plugin_settings(self, cls: type[NotifySettings]) -> NotifySettings:
        return self.settings


def started(send: Collect, **settings: Any) -> Notifier:
    notifier = Notifier(send=send)
    notifier.hotfolder_daemon_started(Started(**settings))  # type: ignore[arg-type]
    return notifier


def failed(name: str) -> tuple[Job, InputError]:
    return Job(source=name, chain="web"), InputError(f"{name} is not an image", hint="replace it")


# --- settings ------------------------------------------------------------------------------


def test_the_plugin_is_installed_and_declares_its_settings():
    info = {row["name"]: row for row in plugin_info(make_plugin_manager())}
    assert info["notify"]["distribution"] == "hotfolder-notify"
    assert {"hotfolder_plugin_settings", "hotfolder_paused"} <= set(info["notify"]["hooks"])


def test_settings_are_read_typed_with_secret_references(tmp_path):
    raw = {
        "plugins": {"notify": {"urls": ["json://127.0.0.1:9/x", {"file": "url.txt"}]}},
        "chains": CHAINS,
    }
    settings = make_runtime(raw, hotfolder_notify, base_dir=tmp_path).plugin_settings(
        NotifySettings
    )
    assert settings.urls[0] == "json://127.0.0.1:9/x"
    ref = settings.urls[1]
    assert isinstance(ref, hotfolder.SecretRef)
    assert ref.file == tmp_path / "url.txt"  # relative to the config's folder
    assert settings.events == list(hotfolder_notify.EVENTS) and settings.digest_seconds == 60


def test_mistakes_in_the_table_get_key_paths_and_did_you_mean():
    registry = build_registry(make_plugin_manager())
    raw = {
        "plugins": {
            "notify": {
                "urls": ["nonsense://x", {"envv": "URL"}],
                "events": ["job_faild"],
                "digest_second": 5,
            }
        },
        "chains": CHAINS,
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, registry)
    text = str(caught.value)
    assert "plugins.notify.digest_second: unknown key; did you mean 'digest_seconds'?" in text
    assert "plugins.notify.urls[0]: Apprise has no service for 'nonsense' URLs" in text
    assert 'plugins.notify.urls[1]: a URL by reference is { env = "NAME" }' in text
    assert "plugins.notify.events[0]: must be one of 'job_failed'" in text
    with pytest.raises(ConfigError) as caught:
        validate_config({"plugins": {"notfy": {}}, "chains": CHAINS}, registry)
    assert (
        "plugins.notfy: no plugin named 'notfy' is installed that takes settings; "
        "did you mean 'notify'?" in str(caught.value)
    )


# --- messages ------------------------------------------------------------------------------


def test_a_batch_is_one_message_that_counts_and_lists_its_events():
    events = [Event("job_failed", 0.0, f"job failed: a{n}.png", "replace it") for n in range(30)]
    events.append(Event("paused", 0.0, "venice work paused (balance): empty", "top up"))
    message = render(events, "studio")
    assert message.title == "studio: 30 jobs failed, paid work paused"
    assert message.type == "failure"  # the worst event's
    lines = message.body.splitlines()
    assert len(lines) == 26
    assert lines[0].endswith("job failed: a0.png (fix: replace it)")
    assert lines[-1] == "… and 6 more: 5 jobs failed, paid work paused"
    assert render([Event("resumed", 0.0, "resumed")], "x").type == "success"


# --- the notifier --------------------------------------------------------------------------


def test_events_in_one_window_are_one_message_sent_at_stop_at_the_latest():
    send = Collect()
    notifier = started(send, digest_seconds=600)
    for n in range(50):
        notifier.hotfolder_job_failed(*failed(f"p{n}.png"))
    notifier.hotfolder_paused(PAUSE)
    assert send.titles() == []  # the window is open
    notifier.hotfolder_daemon_stopped()
    assert send.titles() == ["hotfolder: 50 jobs failed, paid work paused"]
    assert notifier.sent == 1


def test_only_the_chosen_events_are_sent_and_only_under_the_daemon():
    send = Collect()
    idle = Notifier(send=send)
    idle.hotfolder_job_failed(*failed("before.png"))  # `hotfolder process`: not started
    notifier = started(send, digest_seconds=0, events=["resumed"])
    notifier.hotfolder_job_failed(*failed("a.png"))
    notifier.hotfolder_paused(PAUSE)
    notifier.hotfolder_resumed(PAUSE)
    wait_for(send.titles, 10, "the resume message")
    notifier.hotfolder_daemon_stopped()
    assert send.titles() == ["hotfolder: paid work resumed"]


def test_a_budget_pause_is_its_own_event():
    send = Collect()
    notifier = started(send, digest_seconds=0, events=["budget_reached"])
    notifier.hotfolder_paused(PAUSE)
    budget = Pause("venice", "budget", "max_usd_per_day is spent", "raise it", since=1.0)
    notifier.hotfolder_paused(budget)
    wait_for(send.titles, 10, "the budget message")
    notifier.hotfolder_daemon_stopped()
    assert send.titles() == ["hotfolder: daily budget reached"]
    assert "max_usd_per_day is spent (fix: raise it)" in send.messages[0].body


def test_a_folder_is_reported_only_once_gone_long_enough(tmp_path):
    send = Collect()
    quick, slow = tmp_path / "quick", tmp_path / "slow"
    notifier = started(send, digest_seconds=0, unreachable_after_seconds=0)
    notifier.hotfolder_folder_unreachable(quick, f"{quick} is not there")
    wait_for(send.titles, 10, "the unreachable message")
    notifier.hotfolder_folder_reachable(quick)
    wait_for(lambda: len(send.titles()) == 2, 10, "the back message")
    notifier.hotfolder_daemon_stopped()

    later = Collect()
    notifier = started(later, digest_seconds=0, unreachable_after_seconds=600)
    notifier.hotfolder_folder_unreachable(slow, f"{slow} is not there")
    notifier.hotfolder_folder_reachable(slow)  # back before it counted: nothing to say
    notifier.hotfolder_daemon_stopped()
    assert send.titles() == ["hotfolder: 1 folder unreachable", "hotfolder: 1 folder back"]
    assert later.titles() == []


def test_apprise_sends_to_a_real_receiver_and_skips_an_unset_reference(receiver, monkeypatch):
    monkeypatch.delenv("HOTFOLDER_NOTIFY_UNSET", raising=False)
    notifier = Notifier()
    settings = {"urls": [{"env": "HOTFOLDER_NOTIFY_UNSET"}, receiver.url], "digest_seconds": 0}
    notifier.hotfolder_daemon_started(Started(**settings))  # type: ignore[arg-type]
    notifier.hotfolder_job_failed(*failed("a.png"))
    wait_for(receiver.received, 10, "the message at the receiver")
    notifier.hotfolder_daemon_stopped()
    [message] = receiver.received()
    assert message["title"] == "hotfolder: 1 job failed" and message["type"] == "failure"
    assert "a.png is not an image (fix: replace it)" in message["message"]


def test_a_receiver_that_is_down_is_a_warning_not_a_crash():
    notifier = Notifier()
    port = _closed_port()
    notifier.hotfolder_daemon_started(  # type: ignore[arg-type]
        Started(urls=[f"json://127.0.0.1:{port}/x"], digest_seconds=0)
    )
    notifier.hotfolder_job_failed(*failed("a.png"))
    wait_for(lambda: notifier.failed, 30, "the failed send")
    notifier.hotfolder_daemon_stopped()
    assert notifier.sent == 0 and notifier.failed == 1


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
