"""The layout holds: no import cycle anywhere, and the cheap modules stay cheap to import.

import-linter (run by ``make test``) holds the layers of docs/architecture.md; this adds what
its contracts cannot say.
"""

from __future__ import annotations

import subprocess
import sys

import grimp
import pytest

PACKAGES = ("hotfolder", "hotfolder_plugins", "hotfolder_sandbox")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_counting_function_and_type_checking_imports() -> None:
    # grimp reads every import statement: inside functions and under TYPE_CHECKING too.
    graph = grimp.build_graph(*PACKAGES)
    assert len(graph.modules) > 50  # the packages were found
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.one", "a.two", "a.three"):
        graph.add_module(module)
    graph.add_import(importer="a.one", imported="a.two")
    graph.add_import(importer="a.two", imported="a.one")
    graph.add_import(importer="a.three", imported="a.one")
    assert _cycles(graph) == [["a.one", "a.two"]]


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("hotfolder.config", "httpx"),
        ("hotfolder.config", "hotfolder.venice"),
        ("hotfolder.config", "hotfolder.daemon"),
        ("hotfolder.daemon.status", "hotfolder.daemon.service"),
        ("hotfolder.daemon.status", "httpx"),
        ("hotfolder_sandbox", "hotfolder"),
    ],
)
def test_importing_a_module_does_not_drag_in_another(module: str, absent: str) -> None:
    code = f"import sys, {module}; assert {absent!r} not in sys.modules, sorted(sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
