"""The template's own tests: the operation registers, runs in a real chain and tones the image
with the tones of ``[plugins.template]``."""

from __future__ import annotations

import hotfolder_template
from PIL import Image

import hotfolder
from hotfolder.testing import hot_folder, make_image, run_chain

GRAY = (128, 128, 128)


def test_sepia_in_a_chain_makes_a_gray_image_warm(tmp_path):
    folder = hot_folder(tmp_path)
    photo = folder.drop("gray.png", make_image(color=GRAY))
    result = run_chain(
        photo, [{"op": "template.sepia"}], plugins=[hotfolder_template], out_dir=folder.outbox
    )
    [output] = result.outputs
    with Image.open(output.location) as out:
        r, g, b = out.convert("RGB").getpixel((50, 40))
        assert out.size == (64, 48)
    assert r > g > b


def test_strength_zero_keeps_the_pixels():
    image = Image.new("RGB", (8, 8), (10, 200, 30))
    artifact = hotfolder.Artifact.from_image(image, name="x.png", format="PNG")
    sepia = hotfolder_template.Sepia(hotfolder_template.Sepia.Params(strength=0.0))
    assert sepia.run(None, artifact).image.getpixel((0, 0)) == (10, 200, 30)


def test_the_tones_come_from_the_plugins_own_settings(tmp_path):
    folder = hot_folder(tmp_path)
    photo = folder.drop("gray.png", make_image(color=GRAY))
    config = '[plugins.template]\ndark = "#000040"\nlight = "#8080ff"\n'
    result = run_chain(
        photo, [{"op": "template.sepia"}], config=config, plugins=[hotfolder_template]
    )
    with Image.open(result.outputs[0].location) as out:
        r, g, b = out.convert("RGB").getpixel((50, 40))
    assert b > r and b > g  # blue tones, not sepia
