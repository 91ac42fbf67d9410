"""Output names through the real command line: ``{srcext}`` keeps apart outputs of inputs that
differ only in their extension."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from tests.helpers.cli import hotfolder
from tests.helpers.corpus import PHOTOS

pytestmark = pytest.mark.e2e


def test_srcext_names_outputs_of_the_same_stem_apart(tmp_path):
    (tmp_path / "hotfolder.toml").write_text(
        '[chains.png]\nsteps = [{ op = "convert", format = "png" }]\n'
        'outputs = [{ sink = "folder", path = "out", name = "{stem}-{srcext}.{ext}" }]\n'
    )
    (tmp_path / "in").mkdir()
    for name in ("hopper.jpg", "hopper.webp", "hopper.tif"):
        shutil.copy(PHOTOS / name, tmp_path / "in" / name)
    run = hotfolder("process", "in", "--chain", "png", cwd=tmp_path)
    assert run.code == 0, run.output
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == ["hopper-jpg.png", "hopper-tif.png", "hopper-webp.png"]
    for name in outputs:
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == "PNG"
