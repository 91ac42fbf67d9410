"""Running the real ``hotfolder`` command as a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HOTFOLDER = Path(sys.executable).parent / "hotfolder"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def hotfolder(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240
) -> Run:
    """Run ``hotfolder ARGS`` in ``cwd`` with a clean, predictable environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTFOLDER_", "VENICE_"))}
    full_env.update(
        {"XDG_CONFIG_HOME": str(cwd / ".xdg-config"), "XDG_CACHE_HOME": str(cwd / ".xdg-cache")}
    )
    full_env.update(env or {})
    proc = subprocess.run(
        [str(HOTFOLDER), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)
