"""The README's systemd set-up, run as written (taken from the README, not copied here) into a
throwaway root standing in for /, and checked against the unit: every path the unit names
exists with the owner and mode it needs, the installed program runs and accepts the installed
config, the config's folders lie where the unit lets the daemon write, and ``systemd-analyze
verify`` accepts the unit inside that root. The install makes a venv and pip-installs this
checkout into it (about 20 s with a warm pip cache)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
UNIT = REPO / "contrib" / "systemd" / "hotfolder.service"
#: README commands that need a running systemd (or the running service): not run here.
NEEDS_SYSTEMD = ("systemctl", "journalctl", "sudoedit", "sudo -u hotfolder")


def _readme_commands() -> list[str]:
    """The shell lines of the README's systemd section (comments cut off)."""
    text = README.read_text()
    section = text.split("### systemd (Linux)", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README.md: the systemd section has no ```sh block"
    lines = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _unit() -> dict[str, list[str]]:
    """The unit's ``[Service]`` and ``[Unit]`` settings: key -> values (in order)."""
    settings: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith("#") and section in ("[Service]", "[Unit]"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def _passwd(root: Path, name: str, file: str) -> list[str]:
    for line in (root / "etc" / file).read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    raise AssertionError(f"{root}/etc/{file}: no entry {name!r}; the install must create it")


def _in(root: Path, path: str) -> Path:
    return root / PurePosixPath(path).relative_to("/")


def _install(root: Path, commands: list[str], where: str) -> Path:
    """Run the install lines of ``commands`` (from ``where``) into ``root``."""
    if os.geteuid() != 0:
        pytest.skip("the install makes a system user and chowns folders: it needs root")
    if shutil.which("systemd-sysusers") is None:
        pytest.skip("systemd-sysusers is missing: apt-get install systemd (make system-tools)")
    installs = [c for c in commands if "contrib/systemd/install.sh" in c]
    others = [c for c in commands if c not in installs]
    assert installs, f"{where}: the systemd block runs no install script: {commands}"
    unrun = [c for c in others if not any(w in c for w in NEEDS_SYSTEMD)]
    assert not unrun, f"{where}: commands this test does not know how to check: {unrun}"
    for command in installs:
        argv = shlex.split(command)
        argv = argv[1:] if argv[0] == "sudo" else argv
        run = subprocess.run(
            [*argv, "--root", str(root)], cwd=REPO, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, f"{command} --root {root} failed:\n{run.stdout}{run.stderr}"
    return root


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    return _install(tmp_path_factory.mktemp("root"), _readme_commands(), "README.md")


@pytest.fixture(scope="module")
def installed_worker(tmp_path_factory) -> Path:
    """A fleet worker's machine, as docs/scale-out.md's systemd block makes it."""
    text = (REPO / "docs" / "scale-out.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text.split("- systemd:", 1)[1], re.S)
    assert block, "docs/scale-out.md: the systemd bullet has no ```sh block"
    lines = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]
    return _install(tmp_path_factory.mktemp("worker-root"), commands, "docs/scale-out.md")


def test_a_worker_install_has_the_fleet_extra_and_the_worker_unit_only(installed_worker):
    root = installed_worker
    units = sorted(p.name for p in (root / "etc/systemd/system").iterdir())
    assert units == ["hotfolder-worker.service"]
    python = root / "opt/hotfolder/.venv/bin/python"
    imported = subprocess.run([str(python), "-c", "import dramatiq, redis"], capture_output=True,
                              text=True)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    program = root / "opt/hotfolder/.venv/bin/hotfolder"
    config = root / "etc/hotfolder/hotfolder.toml"
    # the installed config is a local one: the worker says there is no work for it (exit 2)
    run = subprocess.run([str(program), "--config", str(config), "worker"], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "[executor]" in run.stderr, run.stderr


def test_every_path_the_unit_names_is_made_with_the_right_owner(installed):
    root, unit = installed, _unit()
    user = _passwd(root, unit["User"][0], "passwd")
    group = _passwd(root, unit["Group"][0], "group")
    uid, gid, home = int(user[2]), int(group[2]), user[5]

    exec_start = shlex.split(unit["ExecStart"][0])
    program = _in(root, exec_start[0])
    assert program.is_file() and os.access(program, os.X_OK), f"ExecStart: {program} is missing"
    version = subprocess.run([str(program), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "hotfolder" in version.stdout, version.stderr

    config = _in(root, exec_start[exec_start.index("--config") + 1])
    mode = config.stat()
    assert mode.st_gid == gid and stat.S_IMODE(mode.st_mode) == 0o640, (config, mode)
    assert stat.S_IMODE(config.parent.stat().st_mode) & 0o050 == 0o050  # the group can enter
    checked = subprocess.run(
        [str(program), "--config", str(config), "validate"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    state = exec_start[exec_start.index("--state-dir") + 1]
    assert state == f"/var/lib/{unit['StateDirectory'][0]}" == home, (state, home)
    assert _in(root, state).stat().st_uid == uid

    writable = [p for value in unit["ReadWritePaths"] for p in value.split()]
    for path in writable:
        where = _in(root, path)
        assert where.is_dir() and where.stat().st_uid == uid, f"ReadWritePaths: {where}"
    for value in unit["EnvironmentFile"]:
        env = _in(root, value.lstrip("-"))
        mode = env.stat()
        assert mode.st_uid == 0 and stat.S_IMODE(mode.st_mode) == 0o600, (env, mode)
    for value in unit.get("WorkingDirectory", []):
        assert _in(root, value).is_dir(), value
    for value in unit.get("Documentation", []):
        if value.startswith("file://"):
            assert _in(root, value.removeprefix("file://")).is_file(), value

    # The config's folders and outputs are where the unit lets the daemon write.
    settings = tomllib.loads(config.read_text())
    places = [f["path"] for f in settings["folders"]] + [
        o["path"] for chain in settings["chains"].values() for o in chain["outputs"] if "path" in o
    ]
    for place in places:
        assert any(PurePosixPath(place).is_relative_to(p) for p in writable), place
        assert _in(root, place).is_dir() and _in(root, place).stat().st_uid == uid, place


@pytest.mark.parametrize("unit", ["hotfolder.service", "hotfolder-worker.service"])
def test_systemd_analyze_verifies_the_installed_unit_inside_the_root(request, unit):
    """The daemon's unit as the install put it, and a fleet worker's as the install with
    ``--worker`` (docs/scale-out.md) put it."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is missing: apt-get install systemd (make system-tools)")
    # The root has what the install made; verify also needs systemd's own units and the
    # ExecReload program, which a real system has: take them from this machine.
    worker = unit == "hotfolder-worker.service"
    root = request.getfixturevalue("installed_worker" if worker else "installed")
    for link, target in (("bin", "usr/bin"), ("lib", "usr/lib")):
        if not (root / link).exists():
            (root / link).symlink_to(target)
    units = root / "usr/lib/systemd/system"
    if not units.exists():
        shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    for program in ("kill",):
        if not (root / "usr/bin" / program).exists():
            shutil.copy2(f"/usr/bin/{program}", root / "usr/bin" / program)
    assert (root / "etc/systemd/system" / unit).is_file(), f"the install made no {unit}"
    run = subprocess.run(
        [
            "systemd-analyze", "verify", "--man=no", f"--root={root}",
            f"/etc/systemd/system/{unit}",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    problems = [line for line in run.stderr.splitlines() if unit in line]
    assert run.returncode == 0 and not problems, run.stderr
