"""Take the README's dashboard screenshots: ``.venv/bin/python docs/screenshots.py``.

Runs the real daemon with ``--sandbox --web`` over a temporary folder, drops three photos from
``../shared/corpus/photos`` and one broken file, and saves the overview and a job's before/after
page from headless Chromium (Debian's ``chromium`` and ``chromedriver``, driven by Selenium)
into ``docs/images/``.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver

HERE = Path(__file__).parent
CORPUS = HERE.parent.parent / "shared" / "corpus"
HOTFOLDER = Path(sys.executable).parent / "hotfolder"
CONFIG = """
[daemon]
rescan_seconds = 1

[[folders]]
path = "inbox"
chain = "cutout"
quiet_seconds = 0.3

[chains.cutout]
steps = [
  { op = "auto-orient" },
  { op = "venice.background-remove", fit = true },
  { op = "resize", width = 800, height = 800, mode = "fit" },
]
outputs = [{ sink = "folder", path = "out" }, { sink = "sidecar" }]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = "timed out"
            raise SystemExit(msg)
        time.sleep(0.2)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="hotfolder-shots-"))
    (root / "hotfolder.toml").write_text(CONFIG)
    (root / "inbox").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "daemon.log").open("wb")
    daemon = subprocess.Popen(
        [str(HOTFOLDER), "--config", str(root / "hotfolder.toml"), "run", "--sandbox",
         "--state-dir", str(root / "state"), "--web", f"127.0.0.1:{port}"],
        cwd=root, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                 "--disable-background-networking", "--no-first-run",
                 f"--user-data-dir={root / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    )
    try:
        wait(lambda: f"dashboard: {url}" in (root / "daemon.log").read_text(errors="replace"))
        for name in ("chelsea.png", "coffee.png", "astronaut.png"):
            if (CORPUS / "photos" / name).exists():
                shutil.copy(CORPUS / "photos" / name, root / "inbox")
        shutil.copy(CORPUS / "bad" / "hopper_bad_exif.jpg", root / "inbox")
        journal = root / "state" / "journal.sqlite3"

        def finished() -> bool:
            try:
                db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
                states = [s for (s,) in db.execute("SELECT state FROM jobs")]
                db.close()
            except sqlite3.Error:
                return False
            return len(states) >= 3 and all(s in ("done", "failed") for s in states)

        wait(finished, 120)
        time.sleep(1)
        images = HERE / "images"
        images.mkdir(exist_ok=True)
        driver.get(url + "/")
        time.sleep(1)
        driver.save_screenshot(str(images / "dashboard-overview.png"))
        db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        query = "SELECT id FROM jobs WHERE state = 'done' ORDER BY seq LIMIT 1"
        (job,) = db.execute(query).fetchone()
        db.close()
        driver.get(f"{url}/jobs/{job}")
        time.sleep(2)
        driver.save_screenshot(str(images / "dashboard-job.png"))
        print(f"saved {images / 'dashboard-overview.png'} and {images / 'dashboard-job.png'}")
    finally:
        driver.quit()
        daemon.terminate()
        daemon.wait(timeout=30)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
