"""docs/plugins.md keeps up with the code: every hook documented with its exact signature,
nothing documented that does not exist, and the testing helpers it names are real."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import hotfolder.testing
from hotfolder import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
HEADING = re.compile(r"^### (\w+)\s*$", re.MULTILINE)
SIGNATURE = re.compile(r"^def (\w+\(.*\) -> .+):\s*$", re.MULTILINE)


def hooks() -> dict[str, str]:
    """Each hookspec's name and signature as it should read in the docs."""
    found = {}
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith(hookspecs.NAME + "_"):
            continue
        signature = inspect.signature(function)
        params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
        found[name] = f"{name}({params}) -> {signature.return_annotation}"
    return found


def documented() -> dict[str, str | None]:
    """Each hook heading of the "## Hooks" section and the first signature under it."""
    text = DOC.read_text()
    section = text.split("\n## Hooks\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str | None] = {}
    parts = HEADING.split(section)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        match = SIGNATURE.search(body)
        found[heading] = match.group(1) if match else None
    return found


def test_hooks_section_found():
    assert len(documented()) >= 7


@pytest.mark.parametrize("name", sorted(hooks()))
def test_every_hook_is_documented_with_its_exact_signature(name):
    docs = documented()
    assert name in docs, f"docs/plugins.md has no '### {name}' under '## Hooks'"
    assert docs[name] == hooks()[name], (
        f"docs/plugins.md documents {name} as\n  def {docs[name]}:\nbut the hookspec is\n"
        f"  def {hooks()[name]}:"
    )


def test_nothing_is_documented_that_is_not_a_hook():
    extra = set(documented()) - set(hooks())
    assert not extra, f"docs/plugins.md documents hooks that do not exist: {sorted(extra)}"


def test_the_testing_helpers_named_in_the_docs_exist():
    text = DOC.read_text()
    section = text.split("\n## Testing with hotfolder.testing\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `(\w+)\(", section, re.MULTILINE))
    assert named == set(hotfolder.testing.__all__) - {"CHAIN", "HotFolder"}


def test_the_entry_point_group_and_disable_variable_are_the_real_ones():
    from hotfolder.plugins import DISABLE_ENV

    text = DOC.read_text()
    assert f"[project.entry-points.{hookspecs.NAME}]" in text
    assert DISABLE_ENV in text
