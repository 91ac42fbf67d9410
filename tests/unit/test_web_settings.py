"""``[web]``: the listen address, the loopback-or-token rule, and the table's registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfolder.config import load_config
from hotfolder.errors import ConfigError
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.secrets import SecretRef
from hotfolder.web.server import trusted_hosts
from hotfolder.web.settings import Listen, WebSection, checked_listen, parse_listen


@pytest.mark.parametrize(
    ("value", "host", "port", "loopback"),
    [
        ("127.0.0.1:8484", "127.0.0.1", 8484, True),
        ("localhost:80", "localhost", 80, True),
        ("[::1]:8484", "::1", 8484, True),
        ("0.0.0.0:8484", "0.0.0.0", 8484, False),
        ("192.168.1.5:0", "192.168.1.5", 0, False),
    ],
)
def test_parse_listen(value: str, host: str, port: int, loopback: bool) -> None:
    listen = parse_listen(value)
    assert (listen.host, listen.port, listen.loopback) == (host, port, loopback)


@pytest.mark.parametrize("value", ["8484", "host:", ":80", "host:99999", "host:http", ""])
def test_parse_listen_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(value)


def test_off_loopback_needs_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"\[web\] token") as caught:
        checked_listen("0.0.0.0:8484", WebSection())
    assert caught.value.hint and "HOTFOLDER_WEB_TOKEN" in caught.value.hint
    section = WebSection(token=SecretRef(env="TEST_WEB_TOKEN"))
    monkeypatch.delenv("TEST_WEB_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"\$TEST_WEB_TOKEN is not set"):
        checked_listen("0.0.0.0:8484", section)
    monkeypatch.setenv("TEST_WEB_TOKEN", "s3cret-token-value")
    assert checked_listen("0.0.0.0:8484", section) == (
        Listen("0.0.0.0", 8484),
        "s3cret-token-value",
    )
    assert checked_listen("127.0.0.1:1", WebSection()) == (Listen("127.0.0.1", 1), None)


def test_trusted_hosts() -> None:
    assert trusted_hosts(Listen("0.0.0.0", 1), "token") is None
    hosts = trusted_hosts(Listen("127.0.0.1", 1), None)
    assert hosts is not None and {"localhost", "127.0.0.1", "[::1]"} <= hosts


def test_the_web_table_is_registered_and_checked(tmp_path: Path) -> None:
    registry = build_registry(make_plugin_manager(load_entrypoints=False))
    path = tmp_path / "hotfolder.toml"
    path.write_text('[web]\nlisten = "127.0.0.1:9999"\ntoken = { env = "X_TOKEN" }\n')
    config = load_config(path, registry)
    assert config.section(WebSection).listen == "127.0.0.1:9999"
    path.write_text('[web]\nlisten = "nope"\n')
    with pytest.raises(ConfigError, match=r"web\.listen"):
        load_config(path, registry)
    path.write_text('[web]\ntoken = "inline"\n')
    with pytest.raises(ConfigError, match="by reference"):
        load_config(path, registry)


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("hotfolder.web.settings", "starlette"),
        ("hotfolder.web.settings", "uvicorn"),
        ("hotfolder.web.settings", "jinja2"),
        ("hotfolder.plugins", "hotfolder.web.app"),
        ("hotfolder.daemon.service", "hotfolder.web"),
    ],
)
def test_the_config_and_the_daemon_do_not_load_the_web_app(module: str, absent: str) -> None:
    import subprocess
    import sys

    code = f"import sys, {module}; assert {absent!r} not in sys.modules"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
