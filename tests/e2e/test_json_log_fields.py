"""``--log-format json`` through the real daemon: every line logged while a job runs carries
the job, file, folder and chain; a step's lines carry the step; a failure carries its hint."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers.corpus import BAD, PHOTOS
from tests.helpers.daemon import Daemon, convert_to_png_config

pytestmark = pytest.mark.e2e


def test_json_log_lines_name_the_job_its_step_and_the_fix(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(convert_to_png_config())
    (tmp_path / "inbox").mkdir()
    with Daemon(tmp_path, args=("--log-format", "json")) as daemon:
        daemon.start()
        for source in (PHOTOS / "hopper.jpg", BAD / "hopper_bad_exif.jpg"):
            subprocess.run(["cp", str(source), str(tmp_path / "inbox")], check=True)
        daemon.wait_states(done=1, failed=1)
        lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    by_message = {line["message"]: line for line in lines}
    done = next(line for m, line in by_message.items() if " done in " in m)
    assert done["file"].endswith("inbox/hopper.jpg") and done["chain"] == "web" and done["job"]
    step = next(line for m, line in by_message.items() if "step 0 (convert) took" in m)
    assert step["step"] == "0:convert" and step["job"] == done["job"]
    failed = next(line for m, line in by_message.items() if "failed (job" in m)
    assert (
        failed["level"] == "ERROR" and failed["hint"] and "hopper_bad_exif.jpg" in failed["message"]
    )
