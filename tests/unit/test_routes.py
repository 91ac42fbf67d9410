"""Routes inside a folder: the first route whose glob matches a file's path picks its chain,
the folder's own chain is the fallback; unknown chains are config errors with key paths, and
routes that can never be reached are warned about when the config loads."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from loguru import logger

from hotfolder.config import validate_config
from hotfolder.daemon.folders import folder_problems, plan_folders
from hotfolder.daemon.routes import Route, Router, unreachable_routes
from hotfolder.daemon.settings import FolderSection
from hotfolder.errors import ConfigError
from hotfolder.plugins import build_registry, make_plugin_manager


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(load_entrypoints=False))


@pytest.fixture
def warnings():
    """The loguru warnings logged while the test runs."""
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level=logging.WARNING)
    yield seen
    logger.remove(sink)


def _router(*routes: tuple[str, str], fallback: str | None = None, **kw) -> Router:
    return Router(tuple(Route(match=m, chain=c) for m, c in routes), fallback, **kw)


def _raw(folder: dict, chains=("web", "cutout", "bg")) -> dict:
    return {
        "folders": [{"path": "inbox", **folder}],
        "chains": {
            name: {"steps": [{"op": "auto-orient"}], "outputs": [{"sink": "folder", "path": "out"}]}
            for name in chains
        },
    }


def _problems(raw: dict, registry) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(raw, registry, path=Path("/etc/hf/test.toml"))
    return str(info.value)


# --- matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "chain"),
    [
        ("products/shoe.jpg", "cutout"),
        ("products/deep/er/shoe.jpg", "cutout"),
        ("products/sky_bg.png", "cutout"),  # the first match wins
        ("sky_bg.png", "bg"),  # no '/' in the glob: the name, at any depth
        ("other/sky_bg.png", "bg"),
        ("shoe.jpg", "web"),  # the fallback
        ("other/products/shoe.jpg", "web"),  # a glob with '/' starts at the folder's top
        ("PRODUCTS/Shoe.JPG", "cutout"),  # case-insensitive by default
        ("Sky_BG.PNG", "bg"),
    ],
)
def test_the_first_matching_route_picks_the_chain(rel: str, chain: str) -> None:
    router = _router(("products/**", "cutout"), ("*_bg.png", "bg"), fallback="web")
    assert router.chain_for(rel) == chain


def test_without_a_fallback_an_unmatched_file_has_no_chain() -> None:
    router = _router(("products/*.jpg", "cutout"))
    assert router.chain_for("products/a.jpg") == "cutout"
    assert router.chain_for("products/sub/a.jpg") is None  # '*' stays in its folder
    assert router.chain_for("a.jpg") is None


def test_case_sensitive_folders_tell_case_apart() -> None:
    router = _router(("*_bg.png", "bg"), fallback="web", case_sensitive=True)
    assert router.chain_for("sky_bg.png") == "bg"
    assert router.chain_for("sky_BG.png") == "web"


def test_a_plan_routes_by_the_path_relative_to_its_folder(tmp_path, registry) -> None:
    raw = _raw(
        {"recursive": True, "routes": [{"match": "products/**", "chain": "cutout"}]},
        chains=("cutout",),
    )
    config = validate_config(raw, registry, path=tmp_path / "hotfolder.toml")
    (plan,) = plan_folders(config)
    assert plan.chain is None
    assert plan.chain_for("products/a.jpg") == "cutout"
    assert plan.chain_for("a.jpg") is None
    assert plan.section.chain_names == ("cutout",)


# --- validation ------------------------------------------------------------------------------


def test_unknown_chains_in_routes_are_errors_with_key_paths(registry) -> None:
    raw = _raw(
        {
            "chain": "webb",
            "routes": [
                {"match": "products/**", "chain": "cutout"},
                {"match": "*_bg.png", "chain": "bgg"},
            ],
        }
    )
    text = _problems(raw, registry)
    assert "folders[0].routes[1].chain: no chain named 'bgg' (did you mean 'bg'?)" in text
    assert "folders[0].chain: no chain named 'webb' (did you mean 'web'?)" in text
    assert "routes[0]" not in text


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ({"match": "!products/**", "chain": "web"}, "folders[0].routes[0].match"),
        ({"match": "#comment", "chain": "web"}, "is not a glob that matches files"),
        ({"match": "/", "chain": "web"}, "is not a glob that matches files"),
        ({"match": "products\\shoes", "chain": "web"}, "use '/' between folders"),
        ({"match": "", "chain": "web"}, "folders[0].routes[0].match"),
        ({"match": "*.jpg"}, "folders[0].routes[0].chain: required key is missing"),
        ({"match": "*.jpg", "chain": "web", "chian": "x"}, "folders[0].routes[0].chian"),
    ],
)
def test_bad_routes_are_errors_with_key_paths(registry, route: dict, expected: str) -> None:
    text = _problems(_raw({"chain": "web", "routes": [route]}), registry)
    assert expected.lower() in text.lower()


def test_a_folder_with_neither_chain_nor_routes_is_an_error(registry) -> None:
    text = _problems(_raw({}), registry)
    assert "folders[0]" in text and "give it chain = NAME, or routes" in text


def test_an_escaped_glob_character_is_a_good_match() -> None:
    assert Route(match="\\#1.jpg", chain="web").match == "\\#1.jpg"


# --- unreachable routes ----------------------------------------------------------------------


def test_unreachable_routes_are_named_with_the_route_that_hides_them() -> None:
    routes = [
        Route(match="*_bg.png", chain="bg"),
        Route(match="*_BG.png", chain="cutout"),  # the same glob, case folded
        Route(match="**", chain="cutout"),
        Route(match="products/**", chain="web"),
    ]
    found = unreachable_routes(routes, fallback="web", recursive=True)
    assert found == [
        "routes[1] (match = '*_BG.png') is never reached: routes[0] has the same match; remove one",
        "routes[3] (match = 'products/**') is never reached: routes[2] (match = '**') takes "
        "every file first; move it before that route",
        "chain 'web' is never used: routes[2] (match = '**') takes every file; remove one of them",
    ]


def test_subfolder_routes_of_a_folder_that_is_not_recursive_are_unreachable() -> None:
    routes = [Route(match="products/**", chain="c"), Route(match="**/*_bg.png", chain="b")]
    (warning,) = unreachable_routes(routes, recursive=False)
    assert warning.startswith("routes[0] (match = 'products/**') is never reached")
    assert "set recursive = true" in warning
    assert unreachable_routes(routes, recursive=True) == []


def test_unreachable_routes_are_warned_about_when_the_config_loads(registry, warnings) -> None:
    raw = _raw({"chain": "web", "routes": [{"match": "products/**", "chain": "cutout"}]})
    validate_config(raw, registry, path=Path("/etc/hf/test.toml"))
    assert any(
        "[[folders]] path = '/etc/hf/inbox': routes[0] (match = 'products/**') is never "
        "reached" in w
        for w in warnings
    ), warnings


def test_every_chain_of_a_routed_folder_is_checked_for_writing_into_it(tmp_path, registry):
    raw = _raw(
        {"recursive": True, "chain": "web", "routes": [{"match": "a/**", "chain": "cutout"}]}
    )
    raw["chains"]["cutout"]["outputs"] = [{"sink": "folder", "path": "inbox"}]
    config = validate_config(raw, registry, path=tmp_path / "hotfolder.toml")
    problems = folder_problems(config)
    assert any("chain 'cutout' writes its outputs into the watched folder" in p for p in problems)


def test_the_outputs_of_every_routed_chain_are_never_watched(tmp_path, registry):
    raw = _raw(
        {"recursive": True, "chain": "web", "routes": [{"match": "a/**", "chain": "cutout"}]}
    )
    raw["chains"]["cutout"]["outputs"] = [{"sink": "folder", "path": "inbox/cut"}]
    config = validate_config(raw, registry, path=tmp_path / "hotfolder.toml")
    (plan,) = plan_folders(config)
    assert (tmp_path / "inbox" / "cut") in plan.excluded


def test_section_defaults_keep_old_configs_valid() -> None:
    section = FolderSection(path=Path("/x"), chain="web")
    assert section.routes == [] and section.chain_names == ("web",)
    assert section.prompt_wait_seconds == 60.0
