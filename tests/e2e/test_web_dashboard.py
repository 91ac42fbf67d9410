"""The dashboard in a real headless Chromium (Debian's ``chromium`` driven through
``chromedriver`` by Selenium), served by the real daemon (``hotfolder run --web``): files
dropped into the folder appear on the jobs page without a reload (server-sent events), a
done job shows both thumbnails, a failed one its hint, and retry queues it again. Screenshots
are saved under the test's temp dir and their paths printed. Also: the Venice rate line after
a job against the sandbox, a reloaded config (SIGHUP) on the open Overview, every page at a
phone's 390x844 viewport without sideways scrolling, and the real CLI refusing to serve off
loopback without ``[web] token`` (exit 2)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from PIL import Image

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
#: A phone's viewport (CSS pixels), as an iPhone 12 to 15 has it.
PHONE = (390, 844)

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


def _chromium(tmp_path: Path, phone: bool = False):
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
    if phone:  # a phone's viewport, pixel ratio and touch, as DevTools' device mode has them
        metrics = {"width": PHONE[0], "height": PHONE[1], "pixelRatio": 3.0, "touch": True}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def browser(tmp_path: Path):
    driver = _chromium(tmp_path)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def phone(tmp_path: Path):
    driver = _chromium(tmp_path, phone=True)
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
    """The page's text; empty while a navigation replaces the page under it: the body found
    may be the old page's, gone by the time its text is asked for (chromedriver says so as a
    stale element, or, when the new page commits in between, as an inspector error that the
    node "does not belong to the document"), and a page just committed may have no body yet
    (no such element: seen once in a loaded run, after the Retry form's POST)."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )

    try:
        return str(driver.find_element("tag name", "body").text)
    except (StaleElementReferenceException, NoSuchElementException):
        return ""
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc.msg):
            return ""
        raise


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


def test_the_overview_shows_the_venice_rate_limit_live(tmp_path, browser):
    """A Venice job (against the sandbox) leaves the client's rate line on the open Overview,
    without a reload: the daemon journals meta ``services`` and the page follows it."""
    from hotfolder_sandbox import SandboxConfig, start_sandbox
    from tests.helpers.daemon import cutout_config, noise_photos

    (tmp_path / "hotfolder.toml").write_text(cutout_config())
    (tmp_path / "inbox").mkdir()
    staging = tmp_path / "staging"
    noise_photos(staging, 1, prefix="shot", seed=70)
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    with start_sandbox(SandboxConfig(requests_per_minute=600)) as sandbox:
        env = {"VENICE_API_KEY": "test-key", "VENICE_BASE_URL": sandbox.base_url}
        with Daemon(tmp_path, env=env, args=("--web", f"127.0.0.1:{port}")) as daemon:
            daemon.start()
            wait_for(lambda: f"dashboard: {root}" in daemon.log(), 30, "the dashboard to start")
            browser.get(root + "/")
            assert "image requests in the last minute" not in _text(browser)
            wait_for(lambda: browser.find_element("id", "live").is_displayed(), 20, "live")
            browser.execute_script("window.__notReloaded = true;")
            subprocess.run(["cp", str(staging / "shot0.png"), str(tmp_path / "inbox")], check=True)
            daemon.wait_states(done=1)
            line = re.compile(r"venice: (\d+) of (\d+) image requests in the last minute")
            found = wait_for(lambda: line.search(_text(browser)), 30,
                             "the Venice rate line on the open Overview")  # fmt: skip
            assert int(found.group(1)) >= 1 and int(found.group(2)) <= 600
            assert browser.execute_script("return window.__notReloaded === true;")
            _shot(browser, tmp_path, "overview-rate")
            status = json.loads(daemon.cli("status", "--json").stdout)
            assert status["services"][0]["service"] == "venice"
            assert status["services"][0]["rate"]["sent"] >= 1
            assert daemon.stop() == 0
        assert sandbox.stats()["paid_total"] == 1
    with Image.open(next((tmp_path / "out").iterdir())) as image:
        assert image.mode == "RGBA"


def test_a_reloaded_config_reaches_the_open_overview(project, browser, tmp_path):
    """SIGHUP with a second folder added: the Overview, open all along, lists both."""
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    second = project / "second"
    second.mkdir()
    with Daemon(project, args=("--web", f"127.0.0.1:{port}")).start() as daemon:
        wait_for(lambda: f"dashboard: {root}" in daemon.log(), 30, "the dashboard to start")
        browser.get(root + "/")
        wait_for(lambda: browser.find_element("id", "live").is_displayed(), 20, "live updates")
        assert str(project / "inbox") in _text(browser)
        assert str(second) not in _text(browser)
        config = project / "hotfolder.toml"
        config.write_text(config.read_text().replace(
            '[[folders]]\npath = "inbox"',
            '[[folders]]\npath = "second"\nchain = "web"\n\n[[folders]]\npath = "inbox"',
        ))  # fmt: skip
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded: 2 folder(s)" in daemon.log(), 30, "the reload")
        wait_for(lambda: str(second) in _text(browser), 30,
                 "the reloaded config's second folder on the open Overview")  # fmt: skip
        assert str(project / "inbox") in _text(browser)
        _shot(browser, tmp_path, "overview-reloaded")
        # and it is the daemon's folder now: a file dropped there is done
        subprocess.run(["cp", str(PHOTOS / "chelsea.png"), str(second)], check=True)
        daemon.wait_states(done=1)
        assert (project / "out/chelsea.png").exists()
        assert daemon.stop() == 0


PHONE_NAME = "a-very-long-file-name-straight-from-the-camera-export-without-any-spaces-0001.jpg"


def _open(driver, url: str) -> None:
    """Load ``url`` and wait for its first live update (it replaces the live part, and with
    it any element found before)."""
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.body.dataset.liveUpdates;"), 20,
             f"the first live update of {url}")  # fmt: skip


def _fits(driver, page: str) -> None:
    width, inner = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth];"
    )
    assert inner == PHONE[0], f"{page}: the viewport is {inner}px, not a phone's {PHONE[0]}px"
    assert width <= inner, (
        f"{page}: the page is {width}px wide on a {inner}px phone (it scrolls sideways); "
        "fix core/hotfolder/web/static/dashboard.css so that it wraps"
    )


def _usable(driver, element, what: str) -> None:
    """Shown, inside the viewport's width, and the element a tap at its centre reaches."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    assert element.is_displayed(), f"{what} is hidden on a phone"
    left, right, hit = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
        "return [r.left, r.right, at === arguments[0] || arguments[0].contains(at)];",
        element,
    )
    assert left >= 0 and right <= PHONE[0], f"{what} is cut off ({left}..{right}px)"
    assert hit, f"{what} is covered by another element on a phone"


def test_every_page_fits_a_phone_and_its_controls_work(project, phone, tmp_path):
    """Overview, Jobs, a job and Failed at 390x844: nothing scrolls sideways, and the filters
    and retry buttons are shown, reachable and work."""
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    with Daemon(project, args=("--web", f"127.0.0.1:{port}")).start() as daemon:
        wait_for(lambda: f"dashboard: {root}" in daemon.log(), 30, "the dashboard to start")
        subprocess.run(["cp", str(PHOTOS / "chelsea.png"), str(project / "inbox")], check=True)
        bad = project / "inbox" / PHONE_NAME
        subprocess.run(["cp", str(BAD / "hopper_bad_exif.jpg"), str(bad)], check=True)
        rows = daemon.wait_states(done=1, failed=1)
        failed = next(r for r in rows if r["state"] == "failed")

        _open(phone, root + "/")
        assert "1 done" in _text(phone) and "1 failed" in _text(phone)
        _fits(phone, "Overview")
        _shot(phone, tmp_path, "phone-overview")

        _open(phone, root + "/jobs")
        _fits(phone, "Jobs")
        for name in ("folder", "state", "q"):
            _usable(phone, phone.find_element("name", name), f"the jobs filter {name!r}")
        button = phone.find_element("css selector", ".filters button")
        _usable(phone, button, "the Filter button")
        phone.find_element("name", "q").send_keys("long-file")
        button.click()
        wait_for(lambda: "q=long-file" in phone.current_url, 20, "the filtered list")
        assert "1 job(s)" in _text(phone) and "chelsea.png" not in _text(phone)
        _fits(phone, "Jobs, filtered")
        _shot(phone, tmp_path, "phone-jobs")

        phone.get(f"{root}/jobs/{failed['id']}")  # no live part
        _fits(phone, "a failed job")
        _usable(phone, phone.find_element("id", "retry"), "the job's Retry button")
        _shot(phone, tmp_path, "phone-job")

        _open(phone, root + "/failed")
        _fits(phone, "Failed")
        _usable(phone, phone.find_element("id", "retry-all"), "Retry all")
        retry = phone.find_element("css selector", ".failed li form button")
        _usable(phone, retry, "a failed job's Retry button")
        _shot(phone, tmp_path, "phone-failed")
        before = daemon.log().count(f"(job {failed['id']})")
        retry.click()
        wait_for(lambda: "Queued again." in _text(phone), 20, "the retry to be confirmed")
        wait_for(lambda: daemon.log().count(f"(job {failed['id']})") > before, 30, "the rerun")
        daemon.wait_states(done=1, failed=1)
        assert daemon.stop() == 0
