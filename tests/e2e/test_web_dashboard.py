"""The dashboard in a real headless Chromium (Debian's ``chromium`` driven through
``chromedriver`` by Selenium), served by the real daemon (``hotfolder run --web``): files
dropped into the folder appear on the jobs page without a reload (server-sent events), a
done job shows both thumbnails, a failed one its hint, and retry queues it again. Screenshots
are saved under the test's temp dir and their paths printed. Also: the real CLI refuses to
serve off loopback without ``[web] token`` (exit 2)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import hotfolder
from tests.helpers.corpus import BAD, PHOTOS
from tests.helpers.daemon import FAST_DAEMON, Daemon, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)  # fmt: skip

CONFIG = (
    FAST_DAEMON
    + """
[[folders]]
path = "inbox"
chain = "web"
quiet_seconds = 0.2

[chains.web]
steps = [{ op = "convert", format = "png" }]
outputs = [
  { sink = "folder", path = "out", name = "{stem}.{ext}" },
  { sink = "sidecar" },
]
"""
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hotfolder.toml").write_text(CONFIG)
    (tmp_path / "inbox").mkdir()
    return tmp_path


@pytest.fixture
def browser(tmp_path: Path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"needs Debian's chromium and chromium-driver ({', '.join(missing)} missing: "
                    "make system-tools installs them)")  # fmt: skip
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, tmp_path: Path, name: str) -> None:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def _text(driver) -> str:
    return str(driver.find_element("tag name", "body").text)


def test_dashboard_live_jobs_thumbnails_failure_and_retry(project, browser, tmp_path):
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    with Daemon(project, args=("--web", f"127.0.0.1:{port}")).start() as daemon:
        wait_for(lambda: f"dashboard: {root}" in daemon.log(), 30, "the dashboard to start")
        browser.get(root + "/jobs")
        assert "No jobs match." in _text(browser)
        wait_for(lambda: browser.find_element("id", "live").is_displayed(), 20, "live updates")
        browser.execute_script("window.__notReloaded = true;")

        for photo in ("chelsea.png", "hopper.jpg"):
            subprocess.run(["cp", str(PHOTOS / photo), str(project / "inbox")], check=True)
        subprocess.run(["cp", str(BAD / "hopper_bad_exif.jpg"), str(project / "inbox")], check=True)
        rows = daemon.wait_states(done=2, failed=1)

        def shown() -> bool:
            text = _text(browser)
            return (
                all(n in text for n in ("chelsea.png", "hopper.jpg", "hopper_bad_exif.jpg"))
                and "3 job(s)" in text
                and "failed" in text
                and text.count("done") >= 2
            )

        wait_for(shown, 30, "the three jobs to appear on the page without a reload")
        assert browser.execute_script("return window.__notReloaded === true;")
        _shot(browser, tmp_path, "jobs")

        done = next(r for r in rows if r["state"] == "done" and r["name"] == "chelsea.png")
        browser.get(f"{root}/jobs/{done['id']}")
        images = browser.find_elements("css selector", ".pictures img")
        assert len(images) == 2

        def loaded() -> bool:
            return all(
                browser.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth > 0;", img
                )
                for img in images
            )

        wait_for(loaded, 20, "both thumbnails to load")
        assert _text(browser).count("PNG · 451×300") == 2  # chelsea.png, before and after
        _shot(browser, tmp_path, "job-done")

        failed = next(r for r in rows if r["state"] == "failed")
        browser.get(f"{root}/jobs/{failed['id']}")
        hint = browser.find_element("id", "hint").text
        assert "corrupt_metadata" in hint and hint == f"fix: {failed['error']['hint']}"
        _shot(browser, tmp_path, "job-failed")

        before = daemon.log().count(f"(job {failed['id']})")
        browser.find_element("id", "retry").click()
        wait_for(lambda: "Queued again." in _text(browser), 20, "the retry to be confirmed")
        _shot(browser, tmp_path, "job-retried")
        # the daemon took it again (and it failed again: the file is still broken)
        wait_for(lambda: daemon.log().count(f"(job {failed['id']})") > before, 30, "the rerun")
        daemon.wait_states(done=2, failed=1)
        assert (project / "inbox/.hotfolder/failed/hopper_bad_exif.jpg").exists()

        browser.get(root + "/failed")
        assert "hopper_bad_exif.jpg" in _text(browser)
        _shot(browser, tmp_path, "failed")
        assert daemon.stop() == 0


def test_listening_off_loopback_without_a_token_exits_2(project):
    config, state = str(project / "hotfolder.toml"), str(project / "state")
    args = ("--config", config, "run", "--state-dir", state, "--web", "0.0.0.0:0")
    run = hotfolder(*args, cwd=project, timeout=60)
    assert run.code == 2, run.output
    assert "[web] token" in run.output and "0.0.0.0" in run.output
    assert not (project / "state").exists() or not any((project / "state").iterdir())


def test_the_viewer_serves_a_state_dir_read_only(project):
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    port = _free_port()
    with Daemon(project).start() as daemon:
        subprocess.run(["cp", str(PHOTOS / "chelsea.png"), str(project / "inbox")], check=True)
        daemon.wait_states(done=1)
    env_args = ["--config", str(project / "hotfolder.toml"), "web", "--state-dir",
                str(project / "state"), "--listen", f"127.0.0.1:{port}"]  # fmt: skip
    from tests.helpers.daemon import BIN, base_env

    log = (project / "viewer.log").open("wb")
    proc = subprocess.Popen([str(BIN), *env_args], cwd=project, env=base_env(project),
                            stdout=log, stderr=log)  # fmt: skip
    try:

        def jobs() -> str | None:
            got = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/api/jobs"],
                                 capture_output=True, text=True)  # fmt: skip
            return got.stdout if got.returncode == 0 else None

        assert '"chelsea.png"' in wait_for(jobs, 30, "the viewer to answer")
        page = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/failed"],
                              capture_output=True, text=True).stdout  # fmt: skip
        assert "read-only viewer" in page
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        log.close()
