"""A folder's routes on the dashboard's Overview: the real daemon serving it (``hotfolder run
--web``), fetched by a real ``curl``. Each folder's heading lists its routes in order, then its
fallback chain ("else chain ..."); a folder with routes only lists them, one without routes
shows its chain alone. ``/api/status`` carries the same routes, as ``hotfolder status --json``
does, and the files dropped show that these are the routes the daemon applies: each went
through its route's chain, and a file that matches no route of a folder without a chain is
listed as ignored for that reason."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.corpus import PHOTOS
from tests.helpers.daemon import FAST_DAEMON, Daemon, wait_for

pytestmark = pytest.mark.e2e

CONFIG = (
    FAST_DAEMON
    + """
[[folders]]
path = "inbox"
recursive = true
quiet_seconds = 0.2
chain = "web"
routes = [
  { match = "products/**", chain = "cutout" },
  { match = "*_bg.png", chain = "bg" },
]

[[folders]]
path = "second"
quiet_seconds = 0.2
routes = [{ match = "*.png", chain = "bg" }]

[[folders]]
path = "plain"
quiet_seconds = 0.2
chain = "web"

[chains.web]
steps = [{ op = "convert", format = "jpeg" }]
outputs = [{ sink = "folder", path = "out/web" }]

[chains.cutout]
steps = [{ op = "convert", format = "png" }]
outputs = [{ sink = "folder", path = "out/cutout" }]

[chains.bg]
steps = [{ op = "resize", width = 100 }]
outputs = [{ sink = "folder", path = "out/bg" }]
"""
)
INBOX_ROUTES = [
    {"match": "products/**", "chain": "cutout"},
    {"match": "*_bg.png", "chain": "bg"},
]
SECOND_ROUTES = [{"match": "*.png", "chain": "bg"}]


class Headings(HTMLParser):
    """Each ``<h3>`` of the page: its own text (the folder's path) and its spans' texts."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[str]]] = []
        self._depth = 0  # 1 inside an h3, 2 inside one of its spans

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h3":
            self.found.append(("", []))
            self._depth = 1
        elif tag == "span" and self._depth == 1:
            self.found[-1][1].append("")
            self._depth = 2

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._depth == 2:
            self._depth = 1
        elif tag == "h3":
            self._depth = 0

    def handle_data(self, data: str) -> None:
        if self._depth == 1:
            path, spans = self.found[-1]
            self.found[-1] = (path + data, spans)
        elif self._depth == 2:
            self.found[-1][1][-1] += data


def headings(page: str) -> dict[str, list[str]]:
    """The Overview's folder headings: folder path -> the texts after it."""
    parser = Headings()
    parser.feed(page)
    return {path.strip(): [" ".join(s.split()) for s in spans] for path, spans in parser.found}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def curl(url: str) -> str | None:
    got = subprocess.run(["curl", "-sf", url], capture_output=True, text=True, timeout=30)
    return got.stdout if got.returncode == 0 else None


def _drop(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", str(source), str(target)], check=True)


def test_the_overview_and_api_status_show_each_folders_routes(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("needs curl (apt-get install curl)")
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    for name in ("inbox", "second", "plain"):
        (tmp_path / name).mkdir()
    inbox, second, plain = (str(tmp_path / n) for n in ("inbox", "second", "plain"))
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    with Daemon(tmp_path, args=("--web", f"127.0.0.1:{port}")).start() as daemon:
        wait_for(lambda: f"dashboard: {root}" in daemon.log(), 30, "the dashboard to start")
        # all different: identical bytes through the same chain would be skipped as twins
        _drop(PHOTOS / "chelsea.png", tmp_path / "inbox/products/shoe.png")  # -> cutout
        _drop(PHOTOS / "coffee.png", tmp_path / "inbox/sky_bg.png")  # -> bg
        _drop(PHOTOS / "hopper.jpg", tmp_path / "inbox/other.jpg")  # -> web, the fallback
        _drop(PHOTOS / "astronaut.png", tmp_path / "second/leaf.png")  # -> bg
        _drop(PHOTOS / "flower.jpg", tmp_path / "second/note.jpg")  # no route, no chain
        rows = daemon.wait_states(done=4)

        def ignored_shown() -> str | None:
            page = curl(root + "/")
            return page if page and "1 file(s) ignored" in page else None

        page = wait_for(ignored_shown, 30, "the Overview to list second/note.jpg as ignored")
        api = curl(root + "/api/status")
        cli = daemon.cli("status", "--json")
        assert daemon.stop() == 0

    # the routes the daemon applied: each file through its route's chain
    assert {r["name"]: r["chain"] for r in rows} == {
        "products/shoe.png": "cutout",
        "sky_bg.png": "bg",
        "other.jpg": "web",
        "leaf.png": "bg",
    }
    assert "note.jpg: matches no route" in page

    # the Overview: each folder's heading, as _overview.html renders it
    shown = headings(page)
    assert shown[inbox] == ["products/** → cutout", "*_bg.png → bg", "else chain web"], shown
    assert shown[second] == ["*.png → bg"], shown
    assert shown[plain] == ["chain web"], shown

    # /api/status carries them, as `hotfolder status --json` does
    assert api is not None, f"{root}/api/status did not answer 200"
    status: dict[str, Any] = json.loads(api)
    by_path = {f["path"]: f for f in status["folders"]}
    assert set(by_path) == {inbox, second, plain}
    assert (by_path[inbox]["routes"], by_path[inbox]["chain"]) == (INBOX_ROUTES, "web")
    assert (by_path[second]["routes"], by_path[second]["chain"]) == (SECOND_ROUTES, None)
    assert (by_path[plain]["routes"], by_path[plain]["chain"]) == ([], "web")
    assert cli.returncode == 0, cli.stderr
    from_cli = {f["path"]: f["routes"] for f in json.loads(cli.stdout)["folders"]}
    assert from_cli == {path: f["routes"] for path, f in by_path.items()}
