"""A new plugin author follows docs/plugins.md, and only it: copy the template, rename it, add
the operation the docs show, install it, and its tests pass and ``hotfolder plugins`` lists it.

The shell commands and code come out of the docs' marked examples, so the docs cannot drift
from what works. The install goes into a throwaway venv layered over the project's (a ``.pth``
that adds the project's site-packages), so it is quick and leaves the project venv alone. It
is a plain install, not the docs' ``pip install -e .``: hatchling's editable build needs the
``editables`` package, which an offline build without isolation cannot fetch.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
TEMPLATE = ROOT / "contrib" / "plugin-template"


def example(name: str) -> str:
    """The fenced block right after ``<!-- example: NAME -->`` in docs/plugins.md."""
    match = re.search(rf"<!-- example: {name} -->\n```\w*\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    assert match, f"docs/plugins.md has no example block marked {name!r}"
    return match.group(1) + "\n"


def layered_venv(path: Path) -> Path:
    """A venv whose own site-packages comes first, then the project venv's; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    parent = sysconfig.get_path("purelib")
    (Path(own) / "_project_venv.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_copy_rename_add_an_operation_install_test_and_list(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HOTFOLDER_"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / ".config")
    # Other installed plugins are someone else's business here.
    others = {ep.name for ep in importlib.metadata.entry_points(group="hotfolder")}
    env["HOTFOLDER_DISABLE_PLUGINS"] = ",".join(sorted(others - {"blur"}))

    rename = example("rename").replace("contrib/plugin-template", str(TEMPLATE))
    run("bash", "-euo", "pipefail", "-c", rename, cwd=tmp_path, env=env)
    plugin = tmp_path / "hotfolder-blur"
    module = plugin / "hotfolder_blur" / "__init__.py"
    assert 'blur = "hotfolder_blur"' in (plugin / "pyproject.toml").read_text()

    register = example("register")
    existing = register.replace("    register(Blur)\n", "")
    source = module.read_text()
    assert existing in source, "the docs say this hook is already in the template"
    module.write_text(source.replace(existing, register) + "\n\n" + example("operation"))
    (plugin / "tests" / "test_blur.py").write_text(example("test"))

    python = layered_venv(tmp_path / "venv")
    pip = (str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation")
    run(*pip, ".", cwd=plugin, env=env)

    tests = run(str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin, env=env)
    assert "3 passed" in tests.stdout, tests.stdout

    listed = run(str(python), "-m", "hotfolder", "plugins", "--json", cwd=plugin, env=env)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["blur"]["distribution"] == "hotfolder-blur"
    assert rows["blur"]["operations"] == ["blur.gaussian", "blur.sepia"]
    assert "template" not in rows
