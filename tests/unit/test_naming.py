"""Name templates: only allowed fields, no format-string tricks, nothing leaves the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hotfolder.errors import SinkError
from hotfolder.naming import join_inside, parse_template, sanitize_component

FIELDS: dict[str, type] = {"stem": str, "ext": str, "n": int}


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("../{stem}.{ext}", "'..'"),
        ("a/../../{stem}", "'..'"),
        ("/abs/{stem}", "relative"),
        ("~/{stem}", "relative"),
        ("C:{stem}", "relative"),
        ("a\\{stem}", "relative"),
        ("{stem.__class__}", "allowed fields"),
        ("{stem.__init__.__globals__}", "allowed fields"),
        ("{x[0]}", "allowed fields"),
        ("{stem[0]}", "allowed fields"),
        ("{0}", "allowed fields"),
        ("{}", "allowed fields"),
        ("{secret}", "allowed fields"),
        ("{stem!r}", "conversions"),
        ("{stem!s}", "conversions"),
        ("{stem:>300}", "format spec"),
        ("{n:{n}}", "nested"),
        ("{n:x}", "format spec"),
        ("{n:3d}", "format spec"),
        ("{stem", "malformed"),
        ("a//{stem}", "empty"),
        ("{stem}/", "empty"),
        ("./{stem}", "'.'"),
        ("x\x00{stem}", "control"),
        ("", "empty"),
    ],
)
def test_bad_templates_are_rejected_when_parsed(template: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_template(template, FIELDS)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{stem}.{ext}", "photo.jpg"),
        ("{n:04d}-{stem}.{ext}", "0007-photo.jpg"),
        ("{n}-{stem}", "7-photo"),
        ("out/{n:02d}/{stem}.{ext}", "out/07/photo.jpg"),
        ("{{literal}}-{stem}", "{literal}-photo"),
    ],
)
def test_good_templates_render(template: str, expected: str) -> None:
    rendered = parse_template(template, FIELDS).render(stem="photo", ext="jpg", n=7)
    assert rendered == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("..", "_"),
        (".hidden", "hidden"),
        ("-rf", "rf"),
        ("nul\x00byte\x1b[31m", "nul_byte_[31m"),
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
        ('a<b>c:d"e|f?g*h', "a_b_c_d_e_f_g_h"),
        ("trailing. ", "trailing"),
        ("", "_"),
    ],
)
def test_values_are_sanitised(value: str, expected: str) -> None:
    assert sanitize_component(value) == expected


def test_long_values_are_cut_to_200_bytes_on_a_character_boundary() -> None:
    value = sanitize_component("é" * 300)
    assert len(value.encode()) <= 200
    assert value == "é" * 100


@pytest.mark.parametrize("stem", ["../../etc/passwd", "/etc/passwd", "..", "a/../../b", "x\x00/.."])
def test_hostile_values_stay_inside_the_root(tmp_path: Path, stem: str) -> None:
    root = tmp_path / "out"
    template = parse_template("sub/{stem}.{ext}", FIELDS)
    relative = template.render(stem=stem, ext="jpg", n=1)
    target = join_inside(root, relative)
    assert target.parent == (root / "sub").resolve()
    assert target.resolve().is_relative_to(root.resolve())
    assert "/" not in target.name and "\x00" not in target.name


def test_join_inside_creates_missing_folders(tmp_path: Path) -> None:
    target = join_inside(tmp_path / "out", "a/b/c.jpg")
    assert target == (tmp_path / "out/a/b/c.jpg").resolve()
    assert target.parent.is_dir()


def test_join_inside_refuses_a_symlinked_folder_that_leads_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "sub")
    with pytest.raises(SinkError, match="leave the sink folder"):
        join_inside(root, "sub/photo.jpg")
    with pytest.raises(SinkError, match="leave the sink folder"):
        join_inside(root, "sub/deeper/photo.jpg")
    assert list(outside.iterdir()) == []


def test_join_inside_allows_a_symlinked_folder_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "real").mkdir(parents=True)
    os.symlink(root / "real", root / "alias")
    assert join_inside(root, "alias/photo.jpg").name == "photo.jpg"


@pytest.mark.parametrize("relative", ["../x.jpg", "/etc/x.jpg", "a/../../x.jpg"])
def test_join_inside_refuses_relative_paths_that_escape(tmp_path: Path, relative: str) -> None:
    with pytest.raises(SinkError):
        join_inside(tmp_path / "out", relative)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/in/hopper.JPG", "jpg"),
        ("/in/.hotfolder/processing/20261130T180303-486af429/hopper.webp", "webp"),
        ("https://example.com/a/b/photo.tif?x=1", "tif"),
        ("/in/noext", ""),
        ("data:image/png;base64,iVBORw0KGgo=", ""),
    ],
)
def test_srcext_is_the_inputs_extension(source, expected):
    from hotfolder.naming import source_extension

    assert source_extension(source) == expected


# --- {dir}: the input's subfolder -----------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "folder", "expected"),
    [
        ("{dir}/{stem}.{ext}", "", "shoe.png"),  # empty at the top: no '/' left over
        ("{dir}/{stem}.{ext}", "products", "products/shoe.png"),
        ("{dir}/{stem}.{ext}", "products/summer", "products/summer/shoe.png"),
        ("web/{dir}/{stem}.{ext}", "", "web/shoe.png"),
        ("web/{dir}/{stem}.{ext}", "a/b", "web/a/b/shoe.png"),
        ("{dir}/{chain}/{stem}.{ext}", "a", "a/web/shoe.png"),
    ],
)
def test_dir_renders_as_whole_folders(template: str, folder: str, expected: str) -> None:
    from hotfolder.naming import OUTPUT_FIELDS

    rendered = parse_template(template, OUTPUT_FIELDS).render(
        dir=folder, stem="shoe", ext="png", chain="web"
    )
    assert rendered == expected


@pytest.mark.parametrize("template", ["{dir}", "{dir}{stem}.{ext}", "x{dir}/{stem}", "a/{dir}"])
def test_dir_must_stand_for_whole_folders(template: str) -> None:
    from hotfolder.naming import OUTPUT_FIELDS

    with pytest.raises(ValueError, match="stands for whole folders"):
        parse_template(template, OUTPUT_FIELDS)


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("../..", "_/_"),
        ("/etc", "etc"),
        ("a/./b//c", "a/b/c"),
        ("..hidden/x", "hidden/x"),
        ("con/nul", "_con/_nul"),
        ("a\\..\\b", "a_.._b"),
    ],
)
def test_dir_values_are_sanitised_per_folder_and_stay_inside(
    tmp_path: Path, folder: str, expected: str
) -> None:
    from hotfolder.naming import OUTPUT_FIELDS

    template = parse_template("{dir}/{stem}.{ext}", OUTPUT_FIELDS)
    relative = template.render(dir=folder, stem="shoe", ext="png")
    assert relative == f"{expected}/shoe.png"
    root = tmp_path / "out"
    assert join_inside(root, relative).resolve().is_relative_to(root.resolve())


def test_dir_through_a_symlinked_subfolder_cannot_leave_the_root(tmp_path: Path) -> None:
    from hotfolder.naming import OUTPUT_FIELDS

    root, outside = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "products")
    relative = parse_template("{dir}/{stem}.{ext}", OUTPUT_FIELDS).render(
        dir="products", stem="shoe", ext="png"
    )
    with pytest.raises(SinkError, match="leave the sink folder"):
        join_inside(root, relative)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("origin", "folder", "expected"),
    [
        ("/in/products/summer/a.jpg", "/in", "products/summer"),
        ("/in/a.jpg", "/in", ""),
        ("/elsewhere/a.jpg", "/in", ""),
        (None, "/in", ""),
        ("/in/a.jpg", None, ""),
    ],
)
def test_the_source_folder_is_the_inputs_subfolder(origin, folder, expected) -> None:
    from hotfolder.job import Job
    from hotfolder.naming import source_folder

    job = Job(source="/in/.hotfolder/processing/x/a.jpg", chain="c", origin=origin, folder=folder)
    assert source_folder(job) == expected
