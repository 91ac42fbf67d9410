"""The service files in contrib/: systemd-analyze accepts the unit; the plist is well formed."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_systemd_unit_verifies(tmp_path):
    unit = (CONTRIB / "systemd/hotfolder.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    # verify checks that ExecStart exists: point it at this venv's script.
    here = Path(sys.executable).parent / "hotfolder"
    copy = tmp_path / "hotfolder.service"
    copy.write_text(unit.replace("/opt/hotfolder/.venv/bin/hotfolder", str(here)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in result.stderr.splitlines() if "hotfolder.service" in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_launchd_plist_runs_the_daemon():
    with (CONTRIB / "launchd/ai.hotfolder.plist").open("rb") as f:
        plist = plistlib.load(f)
    assert plist["Label"] == "ai.hotfolder"
    assert plist["ProgramArguments"][-1] == "run"
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ExitTimeOut"] > 30  # longer than the default grace period
