"""FolderPlan.rel compares strings for the normalised paths events and scans give; its answer
must be pathlib's for every path, normalised or not. The prompt-file path the intake spells out
must be :func:`hotfolder.prompts.companion`'s."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfolder.daemon.folders import plan_folder
from hotfolder.daemon.intake import _prompt_of
from hotfolder.daemon.settings import FolderSection
from hotfolder.prompts import companion

PATHS = [
    "", "inbox", "a.jpg", "x/a.jpg", "sub/b.png", "sub/deeper/c.png", ".hotfolder",
    ".hotfolder/processing/j/a.jpg", "out", "out/a.jpg", "outx/a.jpg", "a.jpg/", "./a.jpg",
    "sub//b.png", "sub/./b.png", "sub/../a.jpg", "é.jpg",
]  # fmt: skip


def _pathlib_rel(plan, path: Path) -> str | None:  # type: ignore[no-untyped-def]
    """What FolderPlan.rel answered before it compared strings."""
    if not path.is_relative_to(plan.root):
        return None
    if any(path == ex or path.is_relative_to(ex) for ex in plan.excluded):
        return None
    rel = path.relative_to(plan.root).as_posix()
    if rel == "." or (not plan.section.recursive and "/" in rel):
        return None
    return rel


@pytest.mark.parametrize("recursive", [False, True])
def test_rel_is_pathlibs_answer_for_every_path(tmp_path: Path, recursive: bool) -> None:
    root = tmp_path / "inbox"
    plan = plan_folder(FolderSection(path=root, chain="web", recursive=recursive))
    plan.excluded = (*plan.excluded, plan.root / "out")
    texts = [str(root) + ("/" + p if p else "") for p in PATHS]
    texts += [str(tmp_path), str(tmp_path / "inboxes" / "a.jpg"), "a.jpg", "/", str(root) + "//"]
    for text in texts:
        expected = _pathlib_rel(plan, Path(text))
        assert plan.rel(text) == expected, f"rel({text!r}): {plan.rel(text)!r}, not {expected!r}"
        assert plan.rel(Path(text)) == expected


@pytest.mark.parametrize(
    "name", ["a.jpg", "a", ".a", "a.", "a.b.c", "a..jpg", ".a.jpg", "IMG.JPG", "é.png"]
)
def test_the_prompt_file_path_is_companions(name: str) -> None:
    for path in (f"/in/{name}", f"/in/sub/{name}", f"/in//{name}", name):
        assert _prompt_of(path) == str(companion(Path(path))), path
