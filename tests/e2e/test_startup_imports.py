"""What ``hotfolder run`` (until it logs "watching") and ``hotfolder process`` (on an empty
folder) import: none of the heavy optional libraries that only some chains or settings need.

Each would put tens of milliseconds back on every start (boto3 alone about 0.1 s; httpx about
0.06 s, as it pulls in rich and pygments for its own command line): benchmark 6 in
docs/benchmarks.md times launch to "watching". The processes run with
``PYTHONPROFILEIMPORTTIME=1`` (``python -X importtime``), whose report says which module first
imported each one, so a failure names the import chain and the file to change.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.cli import hotfolder
from tests.helpers.daemon import Daemon, convert_to_png_config

pytestmark = pytest.mark.e2e

#: Imported on first use only: by a chain, a setting or a command that needs them.
HEAVY = (
    "boto3",  # the s3 sink and resolver (hotfolder-s3)
    "botocore",
    "s3transfer",
    "httpx",  # URL inputs, webhooks, the Venice client
    "tenacity",  # the Venice client's and the webhook's retries
    "prometheus_client",  # the Prometheus exporter (hotfolder-prometheus)
    "pathspec",  # [[folders]] routes
    "rich",  # progress bars and log lines on a terminal
    "pygments",
    "starlette",  # the dashboard
    "uvicorn",
    "jinja2",
    "dramatiq",  # [executor] kind = "dramatiq"
    "redis",
    # Recursive and polled folders: on Linux a flat folder has the lean inotify watch.
    *(("watchdog",) if sys.platform == "linux" else ()),
)

#: The installed contrib plugins whose heavy libraries are listed above: each must still be
#: loaded at start, or the test would prove nothing about it.
CONTRIB = {
    "hotfolder-s3": "hotfolder_s3",
    "hotfolder-prometheus": "hotfolder_prometheus",
    "hotfolder-webhook": "hotfolder_webhook",
}

_LINE = re.compile(r"import time:\s+\d+ \|\s+\d+ \|( *)(\S+)$")


@dataclass(frozen=True)
class Imported:
    """One module in the import-time report: its name and who imported it first."""

    name: str
    chain: tuple[str, ...]  # the importer first ... the module


def imports(report: list[str]) -> dict[str, Imported]:
    """The modules in ``report`` (python -X importtime lines; others are skipped), each with
    its import chain. The report lists a module after those it imported, indented one step
    (two spaces) less, so a line's importer is the next line with less indentation."""
    entries = [(len(m[1]) // 2, m[2]) for m in map(_LINE.match, report) if m]
    found: dict[str, Imported] = {}
    for i, (depth, name) in enumerate(entries):
        chain, want = [name], depth - 1
        for later_depth, later_name in entries[i + 1 :]:
            if want < 0:
                break
            if later_depth == want:
                chain.insert(0, later_name)
                want -= 1
        found.setdefault(name, Imported(name, tuple(chain)))
    return found


#: The repository: the modules a failure can blame are the ones under it.
ROOT = Path(__file__).resolve().parents[2]


def _ours(module: str) -> str | None:
    """``module``'s file relative to the repository, None for a module from elsewhere."""
    spec = importlib.util.find_spec(module)
    origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
    if origin is None or not origin.is_relative_to(ROOT) or ".venv" in origin.parts:
        return None
    return str(origin.relative_to(ROOT))


def heavy_problems(found: dict[str, Imported], command: str) -> list[str]:
    """One line per heavy library in ``found`` (not those another one brought along): who
    dragged it in, and the fix."""
    problems = []
    for name in HEAVY:
        if name not in found:
            continue
        chain = found[name].chain
        if any(m.split(".")[0] in HEAVY for m in chain[:-1]):
            continue  # botocore, through boto3: the line about boto3 names the culprit
        # The nearest importer of this repository's own code.
        culprit = next(((m, f) for m in reversed(chain) if (f := _ours(m))), None)
        if culprit is None:
            # importtime leaves out modules loaded by importlib.import_module, as plugins are:
            # a library imported at the top of a plugin's own module shows as a top-level one.
            who = (
                "a plugin module itself (loaded through importlib, which the report leaves "
                "out: see `hotfolder plugins` for the modules) imports it at the top"
            )
        else:
            who = f"{culprit[0]} ({culprit[1]}) imports it at the top"
        problems.append(
            f"{command} imported {name} at start: {' -> '.join(chain)}. {who}; import it "
            "inside the function that first needs it (types under `if TYPE_CHECKING:`), so "
            "that start-up does not pay for it"
        )
    return problems


def contrib_problems(found: dict[str, Imported], command: str) -> list[str]:
    problems = []
    for dist, module in CONTRIB.items():
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        # A plugin's own module is loaded by importlib and left out of the report (see
        # heavy_problems); the modules it imports are in it.
        if not any(m == module or m.startswith(module + ".") for m in found):
            problems.append(
                f"{command} did not load the installed plugin {module} ({dist}) at start, so "
                "this test cannot tell whether it imports its heavy libraries lazily; check its "
                "entry point (hotfolder plugins) and HOTFOLDER_DISABLE_PLUGINS"
            )
    return problems


def test_the_imports_parser_names_the_chain():
    report = [
        "import time: self [us] | cumulative | imported package",
        "import time:        10 |         10 |       httpx._api",
        "import time:        10 |         20 |     httpx",
        "import time:        10 |         30 |   hotfolder.netsafe",
        "import time:        10 |         40 | hotfolder_plugins.resolvers",
        "2026-12-01T05:31:39.736+0000 INFO    watching /inbox",
    ]
    found = imports(report)
    assert found["httpx"].chain == ("hotfolder_plugins.resolvers", "hotfolder.netsafe", "httpx")
    assert found["httpx._api"].chain[0] == "hotfolder_plugins.resolvers"
    (problem,) = heavy_problems(found, "hotfolder run")
    assert "hotfolder_plugins.resolvers -> hotfolder.netsafe -> httpx" in problem
    assert "hotfolder.netsafe (core/hotfolder/netsafe.py) imports it" in problem
    # A library a plugin module imports itself: its line has no importer.
    (alone,) = heavy_problems(imports([report[0], "import time: 1 | 1 | boto3"]), "run")
    assert "run imported boto3 at start: boto3. a plugin module itself" in alone


def test_hotfolder_run_starts_watching_without_the_heavy_libraries(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(convert_to_png_config())
    (tmp_path / "inbox").mkdir()
    with Daemon(tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"}) as daemon:
        daemon.start()
        log = daemon.log().splitlines()
    watching = next((i for i, line in enumerate(log) if re.search(r"INFO\s+watching ", line)), None)
    assert watching is not None, f"no INFO 'watching' line in {daemon.log_path}"
    found = imports(log[:watching])
    assert "hotfolder.daemon.service" in found, (
        f"no import-time report before 'watching' in {daemon.log_path}: the daemon ran without "
        f"PYTHONPROFILEIMPORTTIME=1; its log starts:\n{chr(10).join(log[:20])}"
    )
    problems = contrib_problems(found, "hotfolder run") + heavy_problems(found, "hotfolder run")
    assert not problems, "\n".join(problems)


def test_hotfolder_process_on_an_empty_folder_imports_none_of_them(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(convert_to_png_config())
    (tmp_path / "empty").mkdir()
    run = hotfolder(
        "--config", "hotfolder.toml", "process", "empty", "--chain", "web",
        cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"},
    )  # fmt: skip
    assert run.code == 0, f"hotfolder process on an empty folder failed:\n{run.stderr[-3000:]}"
    assert "nothing to process in empty" in run.stderr, run.stderr[-3000:]
    found = imports(run.stderr.splitlines())
    problems = contrib_problems(found, "hotfolder process") + heavy_problems(
        found, "hotfolder process"
    )
    assert not problems, "\n".join(problems)
