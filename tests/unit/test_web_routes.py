"""The dashboard's routes, through Starlette's TestClient, against a real journal file:
pages, pagination, filters, pictures, retry with and without CSRF, the token, the headers,
and no path from a URL ever reaching the file system."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from hotfolder.daemon import claim
from hotfolder.daemon.journal import JOURNAL_NAME, Journal, NewJob
from hotfolder.redact import register_secret
from hotfolder.web.app import create_app
from hotfolder.web.context import Dashboard
from hotfolder.web.queries import PAGE_SIZE
from hotfolder.web.security import CSRF_COOKIE

TOKEN = "web-token-for-tests-0123456789"
API_KEY = "venice-key-for-tests-abcdefghij"


def _png(path: Path, size: tuple[int, int], color: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


class World:
    """A state dir with a journal: one done job (archived input, a PNG output and a sidecar),
    one failed job (original in the failed place), and ``extra`` queued filler jobs."""

    def __init__(self, root: Path, extra: int = 0) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.folder = root / "inbox"
        self.other = root / "other"
        claim.ensure_places(self.folder, self.folder / ".hotfolder/archive")
        self.journal = Journal(self.state_dir / JOURNAL_NAME)
        archive = _png(self.folder / ".hotfolder/archive/2024-01-01/cat.png", (400, 300))
        output = _png(root / "out/cat.png", (200, 150), "blue")
        sidecar = root / "out/cat.png.json"
        steps = [{"index": 0, "op": "convert", "seconds": 0.1, "request_ids": ["req-1"]}]
        sidecar.write_text(json.dumps({"job": "done1", "steps": steps}))
        self.journal.add([NewJob("done1", str(self.folder), "cat.png", "web")])
        self.journal.update(
            "done1", state="done", place=str(archive), finished=time.time(), cost_usd=0.0,
            outputs=[
                {"sink": "folder", "location": str(output), "bytes": output.stat().st_size},
                {"sink": "sidecar", "location": str(sidecar), "bytes": 10},
            ],
        )  # fmt: skip
        failed_place = _png(self.folder / ".hotfolder/failed/dog.png", (50, 50), "green")
        self.journal.add([NewJob("fail1", str(self.folder), "dog.png", "web")])
        error = {"class": "InputError", "message": "dog.png is broken", "hint": "re-export it"}
        self.journal.update(
            "fail1", state="failed", place=str(failed_place), error=error, finished=time.time()
        )
        self.journal.add(
            [NewJob(f"q{i:05d}", str(self.other), f"filler-{i}.jpg", "web") for i in range(extra)]
        )

    def dashboard(self, **kw: object) -> Dashboard:
        return Dashboard(self.state_dir, None, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, extra=120)


@pytest.fixture
def client(world: World) -> TestClient:
    return TestClient(create_app(world.dashboard()))


def _csrf(client: TestClient) -> str:
    page = client.get("/failed")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    assert client.cookies.get(CSRF_COOKIE) == found.group(1)
    return found.group(1)


# --- pages -------------------------------------------------------------------------------


def test_overview_shows_folders_counts_and_spend(client: TestClient, world: World) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert str(world.folder) in page.text and str(world.other) in page.text
    assert "120 queued" in page.text and "1 failed" in page.text and "1 done" in page.text
    assert "Spend today" in page.text and "not paused" in page.text


def test_overview_shows_what_the_running_daemon_does_not_take_and_why(
    client: TestClient, world: World
) -> None:
    """Ignored and waiting files, an output place that cannot be written, and the fix of each
    last error, as the running daemon journals them (its lock held here, as it would be)."""
    from hotfolder.daemon.fates import meta_names
    from hotfolder.daemon.lock import InstanceLock

    lock = InstanceLock(world.state_dir)
    lock.acquire()
    try:
        ignored, waiting = meta_names(str(world.folder))
        world.journal.set_meta(ignored, {"count": 1, "files": [
            {"name": "old.tga", "reason": "unsupported format", "fix": "add '*.tga' to include"}
        ]})  # fmt: skip
        world.journal.set_meta(waiting, {"count": 1, "files": [
            {"name": "empty.jpg", "reason": "empty", "since": "2026-11-30T18:00:00+00:00"}
        ]})  # fmt: skip
        world.journal.set_meta(
            "held", {str(world.folder): {"reason": "No space left", "since": "18:01"}}
        )
        page = client.get("/").text
    finally:
        lock.release()
    assert "1 file(s) ignored" in page and "old.tga: unsupported format" in page
    assert "add &#39;*.tga&#39; to include" in page
    assert "1 file(s) waiting" in page and "empty.jpg: empty" in page
    assert "an output cannot be written (No space left)" in page
    assert "fix: re-export it" in page


def test_jobs_list_is_paginated_newest_first(client: TestClient) -> None:
    first = client.get("/jobs")
    assert first.status_code == 200
    assert "122 job(s); page 1 of 3" in first.text
    assert first.text.count('<tr class="state-') == PAGE_SIZE
    assert "filler-119.jpg" in first.text and 'rel="next" href="/jobs?page=2"' in first.text
    last = client.get("/jobs", params={"page": 3})
    assert "cat.png" in last.text and "dog.png" in last.text and 'rel="next"' not in last.text
    assert client.get("/jobs", params={"page": "999"}).status_code == 200
    assert client.get("/jobs", params={"page": "-3"}).status_code == 200  # read as page 1


def test_jobs_filters_by_state_folder_and_name(client: TestClient, world: World) -> None:
    failed = client.get("/jobs", params={"state": "failed"})
    assert "1 job(s)" in failed.text and "dog.png" in failed.text
    inbox = client.get("/jobs", params={"folder": str(world.folder)})
    assert "2 job(s)" in inbox.text
    named = client.get("/jobs", params={"q": "filler-11"})
    assert "11 job(s)" in named.text  # filler-11 and filler-110..119
    # LIKE wildcards are taken literally
    assert "0 job(s)" in client.get("/jobs", params={"q": "%"}).text
    assert "122 job(s)" in client.get("/jobs", params={"state": "bogus"}).text


def test_partial_gives_only_the_live_part(client: TestClient) -> None:
    part = client.get("/jobs", params={"partial": "1"})
    assert part.status_code == 200 and "<html" not in part.text and "<table" in part.text
    assert "<html" not in client.get("/", params={"partial": "1"}).text


def test_job_page_shows_before_and_after_with_sizes_steps_and_sidecar(client: TestClient) -> None:
    page = client.get("/jobs/done1")
    assert page.status_code == 200
    assert 'src="/thumbs/done1/input"' in page.text and 'src="/thumbs/done1/output-0"' in page.text
    assert "PNG · 400×300" in page.text and "PNG · 200×150" in page.text
    assert "req-1" in page.text and "Sidecar" in page.text
    for which in ("input", "output-0"):
        thumb = client.get(f"/thumbs/done1/{which}")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
        image = Image.open(io.BytesIO(thumb.content))
        assert max(image.size) <= 320
        again = client.get(
            f"/thumbs/done1/{which}", headers={"if-none-match": thumb.headers["etag"]}
        )
        assert again.status_code == 304


def test_failed_job_page_shows_the_error_and_hint(client: TestClient) -> None:
    page = client.get("/jobs/fail1")
    assert "dog.png is broken" in page.text and "fix: re-export it" in page.text
    assert 'action="/retry"' in page.text
    assert client.get("/thumbs/fail1/input").status_code == 200


def test_unknown_jobs_and_pictures_are_404(client: TestClient) -> None:
    assert client.get("/jobs/nope").status_code == 404
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.get("/thumbs/nope/input").status_code == 404
    for which in ("output-1", "output-9", "output-x", "output--1", "sidecar", "input2", "x"):
        assert client.get(f"/thumbs/done1/{which}").status_code == 404, which


@pytest.mark.parametrize(
    "url",
    [
        "/thumbs/done1/..%2F..%2F..%2Fetc%2Fpasswd",
        "/thumbs/..%2Fstate%2Fjournal.sqlite3/input",
        "/thumbs/done1/%2Fetc%2Fpasswd",
        "/jobs/..%2F..%2Fetc%2Fpasswd",
        "/api/jobs/..%2Fjournal.sqlite3",
        "/static/..%2F..%2Fsettings.py",
        "/static/../templates/base.html",
        "/jobs?folder=/etc&q=../../passwd&state=../x&page=../1",
        "/api/jobs?folder=..%2F..&q=%2Fetc%2Fpasswd",
    ],
)
def test_no_path_from_a_url_reaches_the_file_system(client: TestClient, url: str) -> None:
    reply = client.get(url)
    assert reply.status_code in (200, 404)
    assert "root:" not in reply.text and "WebSection" not in reply.text
    assert "{% extends" not in reply.text
    if reply.status_code == 200 and url.startswith("/api/jobs?"):
        assert reply.json()["total"] == 0


def test_a_picture_is_only_a_file_the_journal_names_and_never_a_link(world: World) -> None:
    secret = _png(world.root / "private/secret.png", (10, 10))
    output = Path(world.journal.get("done1").outputs[0]["location"])  # type: ignore[union-attr]
    output.unlink()
    output.symlink_to(secret)
    client = TestClient(create_app(world.dashboard()))
    assert client.get("/thumbs/done1/output-0").status_code == 404
    assert "symbolic link" in client.get("/jobs/done1").text


# --- retry -------------------------------------------------------------------------------


def test_retry_without_csrf_is_refused(client: TestClient, world: World) -> None:
    _csrf(client)
    assert client.post("/retry", data={"id": "fail1"}).status_code == 403
    assert client.post("/retry", data={"id": "fail1", "csrf": "forged"}).status_code == 403
    assert client.post("/api/retry", json={"id": "fail1"}).status_code == 403
    assert client.get("/retry").status_code == 405
    assert world.journal.get("fail1").state == "failed"  # type: ignore[union-attr]


def test_retry_one_moves_the_original_back_and_queues_it(client: TestClient, world: World) -> None:
    csrf = _csrf(client)
    reply = client.post("/retry", data={"id": "fail1", "csrf": csrf}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/jobs/fail1?queued=1"
    assert world.journal.get("fail1").state == "queued"  # type: ignore[union-attr]
    assert claim.input_path(world.folder, "fail1", "dog.png").is_file()
    assert "Queued again." in client.get(reply.headers["location"]).text
    again = client.post("/retry", data={"id": "fail1", "csrf": csrf})
    assert again.status_code == 409 and "not failed" in again.text
    assert client.post("/retry", data={"id": "nope", "csrf": csrf}).status_code == 404


def test_retry_all_and_the_json_api(client: TestClient, world: World) -> None:
    csrf = _csrf(client)
    reply = client.post("/retry", data={"all": "1", "csrf": csrf}, follow_redirects=False)
    assert reply.headers["location"] == "/failed?queued=1"
    assert world.journal.get("fail1").state == "queued"  # type: ignore[union-attr]
    headers = {"x-csrf-token": csrf}
    assert client.post("/api/retry", json={"id": "fail1"}, headers=headers).status_code == 409
    assert client.post("/api/retry", json={"id": "nope"}, headers=headers).status_code == 404
    assert client.post("/api/retry", json={"bogus": 1}, headers=headers).status_code == 400
    assert client.post("/api/retry", content=b"{", headers=headers).status_code == 400
    assert client.post("/api/retry", json={"all": True}, headers=headers).json() == {"results": []}


def test_a_read_only_viewer_does_not_retry(world: World) -> None:
    client = TestClient(create_app(world.dashboard(readonly=True)))
    csrf = _csrf(client) if 'name="csrf"' in client.get("/failed").text else "x"
    assert "Retry" not in client.get("/failed").text
    client.cookies.set(CSRF_COOKIE, csrf)
    reply = client.post("/api/retry", json={"id": "fail1"}, headers={"x-csrf-token": csrf})
    assert reply.status_code == 403
    assert world.journal.get("fail1").state == "failed"  # type: ignore[union-attr]


# --- JSON API ----------------------------------------------------------------------------


def test_api_status_is_status_json(client: TestClient, world: World) -> None:
    from hotfolder.daemon.status import collect

    data = client.get("/api/status").json()
    assert data == json.loads(json.dumps(collect(world.state_dir, None), default=str))


def test_api_jobs_pages_and_filters(client: TestClient) -> None:
    data = client.get("/api/jobs", params={"page": 2}).json()
    assert (data["page"], data["pages"], data["total"]) == (2, 3, 122)
    assert len(data["jobs"]) == PAGE_SIZE and data["jobs"][0]["name"] == "filler-69.jpg"
    failed = client.get("/api/jobs", params={"state": "failed"}).json()
    assert [j["id"] for j in failed["jobs"]] == ["fail1"]
    assert failed["jobs"][0]["error"]["hint"] == "re-export it"


def test_api_job_has_pictures_and_steps(client: TestClient) -> None:
    data = client.get("/api/jobs/done1").json()
    assert [p["which"] for p in data["pictures"]] == ["input", "output-0"]
    assert data["pictures"][0]["width"] == 400 and data["pictures"][1]["format"] == "PNG"
    assert data["pictures"][1]["thumbnail"] == "/thumbs/done1/output-0"
    assert data["steps"][0]["request_ids"] == ["req-1"]


def test_no_journal_yet_is_a_clear_503(tmp_path: Path) -> None:
    client = TestClient(create_app(Dashboard(tmp_path / "empty")))
    assert client.get("/jobs").status_code == 503
    assert "hotfolder run" in client.get("/api/jobs").json()["error"]


# --- security ----------------------------------------------------------------------------


def test_security_headers_on_every_reply(client: TestClient) -> None:
    for url in ("/", "/jobs", "/jobs/done1", "/api/status", "/thumbs/done1/input", "/nope",
                "/static/live.js"):  # fmt: skip
        headers = client.get(url).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, url
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_pages_have_no_inline_script_or_style(client: TestClient) -> None:
    for url in ("/", "/jobs", "/jobs/done1", "/jobs/fail1", "/failed", "/login"):
        html = client.get(url).text
        assert "<style" not in html and " style=" not in html, url
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html)), url
        assert not re.search(r"\son[a-z]+=", html), url


def test_with_a_token_requests_without_it_get_401(world: World) -> None:
    client = TestClient(create_app(world.dashboard(token=TOKEN)))
    for url in ("/", "/jobs", "/jobs/done1", "/failed", "/api/status", "/api/jobs",
                "/thumbs/done1/input", "/events"):  # fmt: skip
        assert client.get(url).status_code == 401, url
        assert client.get(url, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/retry", json={"all": True}).status_code == 401
    assert client.get("/static/dashboard.css").status_code == 200
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/jobs", headers=bearer).status_code == 200
    # the bearer token stands in for CSRF on the API
    reply = client.post("/api/retry", json={"id": "fail1"}, headers=bearer)
    assert reply.status_code == 200 and reply.json()["results"][0]["queued"] is True


def test_the_login_page_sets_a_session_cookie_that_is_not_the_token(world: World) -> None:
    client = TestClient(create_app(world.dashboard(token=TOKEN)))
    assert client.post("/login", data={"token": "wrong"}).status_code == 401
    reply = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert reply.status_code == 303
    assert TOKEN not in reply.headers.get("set-cookie", "")
    assert client.get("/jobs").status_code == 200
    # a signed-in browser still needs the CSRF token to act
    assert client.post("/retry", data={"id": "fail1"}).status_code == 403


def test_unknown_host_is_refused_on_loopback(world: World) -> None:
    client = TestClient(create_app(world.dashboard(hosts=frozenset({"127.0.0.1"}))))
    assert client.get("/", headers={"host": "evil.example:8484"}).status_code == 421
    assert client.get("/", headers={"host": "127.0.0.1:8484"}).status_code == 200


def test_no_secret_ever_reaches_a_page(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENICE_API_KEY", API_KEY)
    register_secret(API_KEY)
    # even a message that carries the key (it never should) is scrubbed
    world.journal.update("fail1", error={"class": "X", "message": f"key {API_KEY}", "hint": TOKEN})
    register_secret(TOKEN)
    client = TestClient(create_app(world.dashboard(token=TOKEN)))
    bearer = {"authorization": f"Bearer {TOKEN}"}
    client.post("/login", data={"token": TOKEN})
    bodies = [client.get("/login").text, client.post("/login", data={"token": "x"}).text]
    for url in ("/", "/jobs", "/jobs/done1", "/jobs/fail1", "/failed", "/api/status",
                "/api/jobs", "/api/jobs/fail1", "/nope", "/jobs?partial=1"):  # fmt: skip
        bodies.append(client.get(url, headers=bearer).text)
    assert bodies
    for body in bodies:
        assert API_KEY not in body and TOKEN not in body


def test_events_stream_announces_changes(world: World) -> None:
    from hotfolder.web.events import JournalWatch

    watch = JournalWatch(world.state_dir / JOURNAL_NAME)
    try:
        assert watch.changed() == {"queued": 120, "done": 1, "failed": 1}
        assert watch.changed() is None
        world.journal.update("q00001", state="running")
        assert watch.changed() == {"queued": 119, "running": 1, "done": 1, "failed": 1}
    finally:
        watch.close()
