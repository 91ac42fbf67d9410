"""Overlapping folders: the most specific folder owns its files; a folder listed twice, or an
output, archive or failed place inside another folder's watched tree, is a config problem that
`validate` and `run` report together with every other one."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfolder.config import validate_config
from hotfolder.daemon.folders import folder_problems, plan_folders
from hotfolder.daemon.watcher import scan
from hotfolder.errors import ConfigError
from hotfolder.plugins import build_registry, make_plugin_manager


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(load_entrypoints=False))


def _raw(folders: list[dict], outputs: dict[str, str] | None = None) -> dict:
    outputs = outputs or {"web": "out/web", "web2": "out/web2"}
    return {
        "folders": folders,
        "chains": {
            name: {"steps": [{"op": "auto-orient"}], "outputs": [{"sink": "folder", "path": out}]}
            for name, out in outputs.items()
        },
    }


def _config(tmp_path: Path, registry, raw: dict):
    return validate_config(raw, registry, path=tmp_path / "hotfolder.toml")


def test_a_nested_folder_owns_its_files_and_the_outer_one_skips_its_tree(tmp_path, registry):
    for rel in ["a.jpg", "sub/b.jpg", "products/c.jpg", "products/deep/d.jpg"]:
        (tmp_path / "inbox" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "inbox" / rel).write_bytes(b"x")
    config = _config(
        tmp_path,
        registry,
        _raw(
            [
                {"path": "inbox", "chain": "web", "recursive": True},
                {"path": "inbox/products", "chain": "web2", "recursive": True},
            ]
        ),
    )
    outer, inner = plan_folders(config)
    products = tmp_path / "inbox" / "products"
    assert products.resolve() in outer.excluded
    assert sorted(scan(outer)) == ["a.jpg", "sub/b.jpg"]
    assert sorted(scan(inner)) == ["c.jpg", "deep/d.jpg"]
    assert outer.rel(products / "c.jpg") is None
    assert inner.rel(products / "c.jpg") == "c.jpg"
    assert folder_problems(config) == []


def test_the_same_folder_twice_is_a_problem(tmp_path, registry):
    folders = [{"path": "inbox", "chain": "web"}, {"path": "./inbox/", "chain": "web2"}]
    config = _config(tmp_path, registry, _raw(folders))
    [problem] = folder_problems(config)
    assert problem.startswith("folders[1]:") and "listed twice" in problem
    with pytest.raises(ConfigError, match="listed twice"):
        plan_folders(config)


def test_an_output_or_archive_inside_another_folders_tree_is_a_problem(tmp_path, registry):
    raw = _raw(
        [
            {"path": "inbox", "chain": "web", "recursive": True},
            # archived into the recursive inbox's tree: inbox would take them again
            {"path": "drop", "chain": "web2", "archive": "inbox/archived"},
        ],
        # web2 writes into the recursive inbox's tree too
        {"web": "out/web", "web2": "inbox/results"},
    )
    problems = folder_problems(_config(tmp_path, registry, raw))
    assert len(problems) == 2, problems
    assert all(p.startswith("folders[1]:") and "inside folders[0]" in p for p in problems)
    assert any("output folder" in p and "results" in p for p in problems)
    assert any("archive folder" in p and "archived" in p for p in problems)


def test_a_subfolder_of_a_flat_folder_is_not_in_its_tree(tmp_path, registry):
    raw = _raw(
        [{"path": "inbox", "chain": "web"}, {"path": "drop", "chain": "web2"}],
        {"web": "out/web", "web2": "inbox/results"},
    )
    assert folder_problems(_config(tmp_path, registry, raw)) == []


def test_every_section_and_folder_problem_is_reported_in_one_run(tmp_path, registry):
    raw = _raw([{"path": "inbox", "chain": "web"}, {"path": "inbox", "chain": "web"}])
    raw["venice"] = {"requests_per_minute": "lots"}
    raw["daemon"] = {"concurrency": 0}
    raw["chains"]["web"]["steps"] = [{"op": "resize", "widht": 10}]
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, registry, path=tmp_path / "hotfolder.toml", checks=[folder_problems])
    message = str(caught.value)
    for expected in (
        "venice.requests_per_minute",
        "daemon.concurrency",
        "chains.web.steps[0].widht",
        "folders[1]: ",
    ):
        assert expected in message, message
