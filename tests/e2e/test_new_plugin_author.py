"""A new plugin author follows the quick start of docs/plugins.md to the letter, from a fresh
clone: make the venv, copy the template, rename it, add the operation the docs show, install
it, run its tests, list it.

Nothing is copied from the docs into this test: the shell commands and the code come out of
the page's marked examples (``<!-- example: NAME -->``) and run in a copy of the repository's
files (what a clone has), with a clean environment (no venv activated, no ``HOTFOLDER_*``).
The commands run as written, ``make venv`` and ``pip install`` included, so this needs PyPI
(or pip's cache); the count of tests the page promises is checked against what ran.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"


def example(name: str) -> str:
    """The fenced block right after ``<!-- example: NAME -->`` in docs/plugins.md."""
    match = re.search(rf"<!-- example: {name} -->\n```\w*\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    assert match, f"docs/plugins.md has no example block marked {name!r}"
    return match.group(1) + "\n"


def clone_files(into: Path) -> None:
    """The repository's files as a clone has them (tracked, and new ones not ignored), without
    .venv or anything else git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if name.startswith("hotfolder-blur/"):
            continue  # a reader's own run of the quick start in this checkout
        if source.is_file():  # a tracked file deleted in this checkout is not copied
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a new shell: no venv activated, no pytest or hotfolder variables."""
    venv = os.environ.get("VIRTUAL_ENV")
    path = [
        p for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and not (venv and p.startswith(venv)) and not p.startswith(str(ROOT))
    ]  # fmt: skip
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "HOTFOLDER_", "VENICE_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update({"PATH": os.pathsep.join(path), "XDG_CONFIG_HOME": str(home / ".config")})
    return env


def bash(script: str, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the quick start failed at:\n{script}\n---\n{output[-4000:]}"
    return output


@pytest.mark.skipif(not shutil.which("make") or not shutil.which("git"), reason="needs make, git")
def test_the_quick_start_works_to_the_letter_from_a_clone(tmp_path):
    clone = tmp_path / "clone"
    clone_files(clone)
    env = clean_env(tmp_path)

    bash(example("rename"), clone, env)  # make venv, copy, rename
    assert (clone / ".venv" / "bin" / "hotfolder").is_file(), "make venv made no venv"
    plugin = clone / "hotfolder-blur"
    module = plugin / "hotfolder_blur" / "__init__.py"
    assert 'blur = "hotfolder_blur"' in (plugin / "pyproject.toml").read_text()

    register = example("register")
    existing = register.replace("    register(Blur)\n", "")
    source = module.read_text()
    assert existing in source, "the docs say this hook is already in the template"
    module.write_text(source.replace(existing, register) + "\n\n" + example("operation"))
    (plugin / "tests" / "test_blur.py").write_text(example("test"))

    install = example("install")
    output = bash(install, plugin, env)

    promised = re.search(r"# (\d+) passed", install)
    assert promised, "the install example says how many tests pass"
    assert re.search(rf"\b{promised.group(1)} passed\b", output), output[-3000:]
    listed = re.search(
        r"│ blur\s+│ hotfolder-blur 0\.1\.0\s+│ operations: blur\.gaussian, blur\.sepia\s+│", output
    )
    assert listed, f"hotfolder plugins does not list blur as the page says:\n{output[-3000:]}"
    assert "│ template " not in output  # renamed everywhere
